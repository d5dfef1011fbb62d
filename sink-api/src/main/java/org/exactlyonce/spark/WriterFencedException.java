package org.exactlyonce.spark;

/**
 * A newer driver started the same pipeline id and took a newer writer epoch; this driver's commits
 * are refused so that two instances never interleave their output. Fatal for this driver: stop it.
 * The newer instance goes on from the stored offsets.
 */
public class WriterFencedException extends ExactlyOnceException {
  private static final long serialVersionUID = 1L;

  public WriterFencedException(String message) {
    super(message);
  }
}
