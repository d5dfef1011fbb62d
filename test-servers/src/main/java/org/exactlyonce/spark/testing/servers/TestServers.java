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
 * <p>Where servers already run (a Testcontainers container, a local install), point the tests at
 * them with environment variables (or system properties of the same name in lower case with dots,
 * e.g. {@code eos.test.kafka.bootstrap}): {@code EOS_TEST_KAFKA_BOOTSTRAP}; {@code
 * EOS_TEST_POSTGRES_HOST}, {@code EOS_TEST_POSTGRES_PORT}, {@code EOS_TEST_POSTGRES_USER}, {@code
 * EOS_TEST_POSTGRES_PASSWORD}; {@code EOS_TEST_CASSANDRA_HOST}, {@code EOS_TEST_CASSANDRA_PORT},
 * {@code EOS_TEST_CASSANDRA_DC}. Tests that kill or restart a server need the embedded ones.
 *
 * <p>Server files go under {@code target/test-servers} of the working directory (Cassandra's data
 * under /dev/shm when it exists, which keeps its batch commit-log sync fast).
 */
public final class TestServers {
  private static PostgresServer postgres;
  private static KafkaBroker kafka;
  private static CassandraServer cassandra;
  private static PostgresServer postgresTls;
  private static CassandraServer cassandraAuth;
  private static TlsMaterial tls;

  static {
    Runtime.getRuntime().addShutdownHook(new Thread(TestServers::closeAll, "test-servers-close"));
  }

  private TestServers() {}

  /** The shared PostgreSQL server. */
  public static synchronized PostgresServer postgres() {
    if (postgres == null) {
      String host = setting("EOS_TEST_POSTGRES_HOST", null);
      postgres =
          host == null
              ? PostgresServer.start(newDir("postgres", false))
              : PostgresServer.external(
                  host,
                  Integer.parseInt(setting("EOS_TEST_POSTGRES_PORT", "5432")),
                  setting("EOS_TEST_POSTGRES_USER", "postgres"),
                  setting("EOS_TEST_POSTGRES_PASSWORD", ""));
    }
    return postgres;
  }

  /**
   * A PostgreSQL server that accepts TLS connections only, with the material of {@link #tls()}
   * (embedded only: a second server, started on first use).
   */
  public static synchronized PostgresServer postgresRequiringTls() {
    if (postgresTls == null) {
      postgresTls = PostgresServer.startRequiringTls(newDir("postgres-tls", false), tls());
    }
    return postgresTls;
  }

  /**
   * A Cassandra node that authenticates every client (embedded only: a second node, started on
   * first use).
   */
  public static synchronized CassandraServer cassandraRequiringPasswords() {
    if (cassandraAuth == null) {
      cassandraAuth =
          CassandraServer.startRequiringPasswords(newDir("cassandra-auth", true), tls());
    }
    return cassandraAuth;
  }

  /** The self-signed certificate the TLS-enabled servers use (made once per JVM). */
  public static synchronized TlsMaterial tls() {
    if (tls == null) {
      tls = TlsMaterial.in(newDir("tls", false));
    }
    return tls;
  }

  /** The shared Kafka broker. */
  public static synchronized KafkaBroker kafka() {
    if (kafka == null) {
      String bootstrap = setting("EOS_TEST_KAFKA_BOOTSTRAP", null);
      kafka =
          bootstrap == null
              ? KafkaBroker.start(newDir("kafka", false), tls())
              : KafkaBroker.external(bootstrap);
    }
    return kafka;
  }

  /** The shared Cassandra node. */
  public static synchronized CassandraServer cassandra() {
    if (cassandra == null) {
      String host = setting("EOS_TEST_CASSANDRA_HOST", null);
      cassandra =
          host == null
              ? CassandraServer.start(newDir("cassandra", true), tls())
              : CassandraServer.external(
                  host,
                  Integer.parseInt(setting("EOS_TEST_CASSANDRA_PORT", "9042")),
                  setting("EOS_TEST_CASSANDRA_DC", "datacenter1"));
    }
    return cassandra;
  }

  /** A system property (lower case, dots) or else an environment variable, or else the default. */
  static String setting(String envName, String defaultValue) {
    String prop = System.getProperty(envName.toLowerCase(java.util.Locale.ROOT).replace('_', '.'));
    if (prop != null && !prop.isBlank()) {
      return prop;
    }
    String env = System.getenv(envName);
    return env != null && !env.isBlank() ? env : defaultValue;
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
    for (AutoCloseable c :
        new AutoCloseable[] {kafka, cassandra, postgres, postgresTls, cassandraAuth}) {
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
