package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One server of each kind per JVM, started on first use and always torn down when the JVM exits
 * (also when a test fails). Tests share them and isolate themselves with fresh databases, topics,
 * keyspaces and pipeline ids.
 *
 * <p>Server files go under {@code target/test-servers} of the working directory (Cassandra's data
 * under /dev/shm when it exists, which keeps its batch commit-log sync fast).
 */
public final class TestServers {
  private static PostgresServer postgres;
  private static KafkaBroker kafka;
  private static CassandraServer cassandra;

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(TestServers::closeAll, "test-servers-close"));
  }

  private TestServers() {}

  /** The shared PostgreSQL server. */
  public static synchronized PostgresServer postgres() {
    if (postgres == null) {
      postgres = PostgresServer.start(newDir("postgres", false));
    }
    return postgres;
  }

  /** The shared Kafka broker. */
  public static synchronized KafkaBroker kafka() {
    if (kafka == null) {
      kafka = KafkaBroker.start(newDir("kafka", false));
    }
    return kafka;
  }

  /** The shared Cassandra node. */
  public static synchronized CassandraServer cassandra() {
    if (cassandra == null) {
      cassandra = CassandraServer.start(newDir("cassandra", true));
    }
    return cassandra;
  }

  /** A new, empty folder for a server's files. */
  public static Path newDir(String name, boolean preferMemory) {
    try {
      Path shm = Path.of("/dev/shm");
      Path base =
          preferMemory && Files.isDirectory(shm) && Files.isWritable(shm)
              ? shm.resolve("exactly-once-test-servers")
              : Path.of("target", "test-servers").toAbsolutePath();
      Files.createDirectories(base);
      return Files.createTempDirectory(base, name + "-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static synchronized void closeAll() {
    for (AutoCloseable c : new AutoCloseable[] {kafka, cassandra, postgres}) {
      if (c != null) {
        try {
          c.close();
        } catch (Exception e) {
          // Shutting down: nothing left to report to.
        }
      }
    }
  }
}
