package org.exactlyonce.spark;

/**
 * The sink or stream configuration is wrong; the message names the setting and the fix. Thrown
 * before the stream starts, so nothing was written. Fatal: fix the configuration and start again.
 */
public class SinkConfigurationException extends ExactlyOnceException {
  private static final long serialVersionUID = 1L;

  public SinkConfigurationException(String message) {
    super(message);
  }

  public SinkConfigurationException(String message, Throwable cause) {
    super(message, cause);
  }
}
