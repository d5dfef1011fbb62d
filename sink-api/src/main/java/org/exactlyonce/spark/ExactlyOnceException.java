package org.exactlyonce.spark;

/**
 * Root of the library's exceptions. Unchecked. The subclasses say what the caller must do:
 *
 * <ul>
 *   <li>{@link SinkConfigurationException}: fix the configuration; nothing was written.
 *   <li>{@link WriterFencedException}: another instance took over the pipeline id; stop this one.
 *   <li>{@link OffsetMismatchException}: stored offsets and the stream disagree (a gap or a
 *       regression); an operator must look before the pipeline can go on.
 *   <li>{@link BackendUnavailableException}: a backend that was reachable stayed unreachable longer
 *       than the sink waits; retriable: restart the job when it is back, it resumes from the stored
 *       offsets.
 *   <li>{@link PipelineStoppedException}: an earlier batch failed (its cause; a failure of one of
 *       the types above is rethrown as itself); restart the job, it resumes from the stored
 *       offsets.
 * </ul>
 */
public class ExactlyOnceException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ExactlyOnceException(String message) {
    super(message);
  }

  public ExactlyOnceException(String message, Throwable cause) {
    super(message, cause);
  }
}
