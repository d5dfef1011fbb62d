package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Reads the class path of a server recorded at build time by its *-classpath module. */
final class ServerClasspath {
  private ServerClasspath() {}

  static String read(String resource) {
    try (InputStream in = ServerClasspath.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException(
            "resource "
                + resource
                + " is missing: build the test-servers/*-classpath modules first (mvn verify from"
                + " the repository root does)");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
