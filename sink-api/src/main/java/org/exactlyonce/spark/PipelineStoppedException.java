package org.exactlyonce.spark;

/**
 * A batch of this pipeline failed earlier, so no later batch may write or advance any offset.
 * Restart the job: it resumes from the stored offsets. The cause is the first failure.
 */
public class PipelineStoppedException extends ExactlyOnceException {
  private static final long serialVersionUID = 1L;

  public PipelineStoppedException(String message, Throwable cause) {
    super(message, cause);
  }
}
