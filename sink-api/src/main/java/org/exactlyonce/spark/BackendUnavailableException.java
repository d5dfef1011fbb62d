package org.exactlyonce.spark;

/**
 * A backend (database, cluster) that was reachable could not be reached again within the time the
 * sink waits for it. Retriable: nothing past the stored offsets was committed, so restarting the
 * job once the backend is back resumes exactly once from the stored offsets. Not a configuration
 * error: the same settings worked before the outage.
 */
public class BackendUnavailableException extends ExactlyOnceException {
  private static final long serialVersionUID = 1L;

  public BackendUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
