package org.exactlyonce.spark.spi;

import org.exactlyonce.spark.SinkConfigurationException;

/** Secrets read where a connection is opened, so that they never travel with tasks. */
public final class Secrets {
  private Secrets() {}

  /**
   * The value of environment variable {@code name} on this host.
   *
   * @param what what the secret is, for the message (for example "the database password")
   * @throws SinkConfigurationException if it is not set, saying how to set it on executors
   */
  public static String fromEnv(String name, String what) {
    String value = System.getenv(name);
    if (value == null) {
      throw new SinkConfigurationException(
          "environment variable "
              + name
              + " ("
              + what
              + ", see passwordFromEnv) is not set on this host; set it on the driver and on every"
              + " executor (spark.executorEnv."
              + name
              + ")");
    }
    return value;
  }
}
