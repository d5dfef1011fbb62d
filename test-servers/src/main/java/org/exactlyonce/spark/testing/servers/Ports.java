package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;

/** Loopback ports. */
public final class Ports {
  private Ports() {}

  /** A port that is free on 127.0.0.1 right now. */
  public static int free() {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * {@code n} free ports, all different: each is held open until all are chosen, because {@link
   * #free()} called twice may return the same port (seen: a broker's listener and controller on one
   * port, which Kafka refuses).
   */
  public static int[] free(int n) {
    ServerSocket[] held = new ServerSocket[n];
    try {
      int[] ports = new int[n];
      for (int i = 0; i < n; i++) {
        held[i] = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        ports[i] = held[i].getLocalPort();
      }
      return ports;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      for (ServerSocket s : held) {
        if (s != null) {
          try {
            s.close();
          } catch (IOException ignored) {
            // closing a probe socket: nothing to do
          }
        }
      }
    }
  }

  /** Whether something accepts TCP connections on 127.0.0.1:{@code port}. */
  public static boolean accepts(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 500);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** Waits until nothing listens on {@code port} any more. */
  public static void awaitClosed(int port, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (accepts(port)) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("port " + port + " still open after " + timeout);
      }
      sleep(100);
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }
}
