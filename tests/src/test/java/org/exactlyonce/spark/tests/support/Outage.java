package org.exactlyonce.spark.tests.support;

import static org.awaitility.Awaitility.await;

import java.time.Duration;
import org.exactlyonce.spark.testing.servers.Ports;

/** A server kept down for a while after a kill, as a crash looks to its clients. */
public final class Outage {
  private Outage() {}

  /**
   * Returns once nothing has accepted connections on {@code port} for {@code length}: the server
   * just killed is down, and stays down that long before the test restarts it. Fails if something
   * keeps answering on the port (the kill did not take) within a generous deadline.
   */
  public static void lasting(Duration length, int port) {
    await("nothing listens on port " + port + " for " + length)
        .during(length)
        .atMost(length.plus(Duration.ofSeconds(60)))
        .until(() -> !Ports.accepts(port));
  }

  /** The port of a {@code host:port} address. */
  public static int portOf(String hostPort) {
    return Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1));
  }
}
