package org.exactlyonce.spark.cassandra.internal;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.CqlSessionBuilder;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One session per distinct {@link CassandraSettings} per JVM (driver or executor), reused across
 * tasks and batches, with its prepared statements. A session is expensive: opening one per task
 * would cost more than the writes.
 */
public final class Sessions {
  private static final Logger LOG = LoggerFactory.getLogger(Sessions.class);
  private static final Map<CassandraSettings, CqlSession> SESSIONS = new ConcurrentHashMap<>();
  private static final Map<String, PreparedStatement> PREPARED = new ConcurrentHashMap<>();

  static {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> SESSIONS.values().forEach(CqlSession::close), "cassandra-sessions-close"));
  }

  private Sessions() {}

  /** This JVM's session for {@code settings}. */
  public static CqlSession get(CassandraSettings settings) {
    CqlSession s = SESSIONS.computeIfAbsent(settings, Sessions::open);
    if (s.isClosed()) {
      SESSIONS.remove(settings, s);
      return get(settings);
    }
    return s;
  }

  /**
   * Drops this JVM's session for {@code settings}; the next {@link #get} opens a new one. For a
   * session whose control connection did not come back after the node restarted (seen with a
   * one-node cluster: DDL then waits for a schema agreement it cannot check).
   */
  public static void replace(CassandraSettings settings) {
    CqlSession old = SESSIONS.remove(settings);
    if (old != null) {
      PREPARED.keySet().removeIf(k -> k.startsWith(System.identityHashCode(old) + ":"));
      old.closeAsync();
    }
  }

  /** {@code cql} prepared once per session. */
  public static PreparedStatement prepare(CassandraSettings settings, String cql) {
    return PREPARED.computeIfAbsent(
        System.identityHashCode(get(settings)) + ":" + cql, k -> get(settings).prepare(cql));
  }

  private static javax.net.ssl.SSLContext sslContext(CassandraSettings settings) {
    try {
      if (settings.trustStore() == null) {
        return javax.net.ssl.SSLContext.getDefault();
      }
      // PKCS12 or JKS: Java 17's default key store type reads both.
      java.security.KeyStore trust = java.security.KeyStore.getInstance("PKCS12");
      char[] pw =
          settings.trustStorePassword() == null
              ? null
              : settings.trustStorePassword().toCharArray();
      try (java.io.InputStream in =
          java.nio.file.Files.newInputStream(java.nio.file.Path.of(settings.trustStore()))) {
        trust.load(in, pw);
      }
      javax.net.ssl.TrustManagerFactory tmf =
          javax.net.ssl.TrustManagerFactory.getInstance(
              javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
      context.init(null, tmf.getTrustManagers(), null);
      return context;
    } catch (Exception e) {
      // The message names the file, never the password.
      throw new SinkConfigurationException(
          "cannot read the Cassandra trust store "
              + settings.trustStore()
              + " ("
              + e.getClass().getSimpleName()
              + "): check the path, its type (PKCS12 or JKS) and its password",
          e);
    }
  }

  private static CqlSession open(CassandraSettings settings) {
    DriverConfigLoader config =
        DriverConfigLoader.programmaticBuilder()
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, settings.requestTimeout())
            .withString(DefaultDriverOption.REQUEST_CONSISTENCY, settings.writeConsistency())
            .withString(
                DefaultDriverOption.REQUEST_SERIAL_CONSISTENCY, settings.serialConsistency())
            .withDuration(
                DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT, settings.requestTimeout())
            .withDuration(DefaultDriverOption.CONTROL_CONNECTION_TIMEOUT, settings.requestTimeout())
            .withDuration(
                DefaultDriverOption.METADATA_SCHEMA_REQUEST_TIMEOUT, settings.requestTimeout())
            .build();
    CqlSessionBuilder b =
        CqlSession.builder()
            .withConfigLoader(config)
            .withLocalDatacenter(settings.localDatacenter());
    for (String hp : settings.contactPoints()) {
      int colon = hp.lastIndexOf(':');
      b.addContactPoint(
          InetSocketAddress.createUnresolved(
              hp.substring(0, colon), Integer.parseInt(hp.substring(colon + 1))));
    }
    if (settings.usesTls()) {
      // Host names are verified against the nodes' certificates, as a browser would.
      b.withSslEngineFactory(
          new com.datastax.oss.driver.api.core.ssl.ProgrammaticSslEngineFactory(
              sslContext(settings), null, true));
    }
    String password = settings.resolvePassword();
    if (settings.user() != null) {
      b.withAuthCredentials(settings.user(), password == null ? "" : password);
    }
    try {
      CqlSession session = b.build();
      LOG.info("Cassandra session opened with {}", settings);
      return session;
    } catch (RuntimeException e) {
      String message = String.valueOf(e.getMessage());
      String fix =
          message.contains("uthentication")
              ? "Check the user and the password (CassandraSettings.user, passwordFromEnv)"
              : message.contains("SSL") || message.contains("certificate")
                  ? "Check the TLS settings: the trust store must hold the CA of the nodes'"
                      + " certificates, whose names must match the contact points"
                  : "Check the contact points, the data center name and that the nodes are up";
      throw new SinkConfigurationException(
          "cannot connect to Cassandra with " + settings + ": " + message + ". " + fix, e);
    }
  }
}
