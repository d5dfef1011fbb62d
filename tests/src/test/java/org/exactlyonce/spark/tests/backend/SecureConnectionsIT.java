package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.datastax.oss.driver.api.core.CqlSession;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.testing.servers.TlsMaterial;
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Secure connections pass through unchanged: PostgreSQL that accepts TLS only, with a password
 * (pgjdbc {@code sslmode=verify-full}); Kafka over SASL_SSL for both the stream and the sink;
 * Cassandra over TLS with host-name verification, and Cassandra requiring passwords. Each writes
 * every record once, each refuses the insecure or wrong variant with an error that names the
 * problem, and no password appears in any {@code toString()} or error.
 */
class SecureConnectionsIT {
  private static final int RECORDS = 300;
  private static StreamHarness harness;
  private static List<String> ids;

  @BeforeAll
  static void input() {
    harness = new StreamHarness("secure", 2);
    ids = new ArrayList<>();
    List<String[]> kv = new ArrayList<>();
    for (int i = 0; i < RECORDS; i++) {
      ids.add("s" + i);
      kv.add(new String[] {"s" + i, "s" + i});
    }
    harness.send(kv);
  }

  @AfterAll
  static void close() {
    harness.close();
  }

  /** Every message of {@code t} and of its causes. */
  private static String messages(Throwable t) {
    StringBuilder all = new StringBuilder();
    for (Throwable c = t; c != null; c = c.getCause()) {
      all.append(c).append(" | ");
    }
    return all.toString();
  }

  /** A sink writing each record's value to column {@code id} of table {@code out}. */
  private static JdbcSink<String> pgSink(String pipeline, JdbcSettings settings) {
    return JdbcSink.<String>transactional(pipeline)
        .connection(settings)
        .table("out")
        .columns("id")
        .values(List::of)
        .build();
  }

  private static CassandraSink<String> cassandraSink(
      String pipeline, CassandraSettings settings, String table) {
    return CassandraSink.<String>idempotent(pipeline)
        .connection(settings)
        .table(table)
        .columns("id")
        .values(List::of)
        .timestampFromSourceOffset()
        .build();
  }

  /** Starting a stream on {@code sink} fails; returns every message of the failure's chain. */
  private static String refusal(ExactlyOnceSink sink) {
    Throwable thrown = catchThrowable(() -> start(sink, harness.kafkaParams()));
    assertThat(thrown).as("starting on " + sink).isNotNull();
    return messages(thrown);
  }

  private static void start(ExactlyOnceSink sink, Map<String, Object> params) {
    JavaStreamingContext ssc = new JavaStreamingContext(harness.sc, Durations.seconds(1));
    try {
      ExactlyOnce.directStream(ssc, params, List.of(harness.topic), sink);
    } finally {
      ssc.stop(false, true);
    }
  }

  // ---- PostgreSQL -----------------------------------------------------------------------------

  @Test
  void postgresRequiringTlsAndAPasswordGetsEveryRecordOnce() throws Exception {
    PostgresServer pg = TestServers.postgresRequiringTls();
    String url = pg.createDatabase();
    String db = url.substring(url.lastIndexOf('/') + 1);
    try (Connection c = DriverManager.getConnection(pg.jdbcUrl("postgres"), pg.user(), "");
        Statement s = c.createStatement()) {
      s.execute("ALTER DATABASE " + db + " OWNER TO " + PostgresServer.TLS_USER);
    }
    JdbcSettings settings =
        JdbcSettings.url(url)
            .user(PostgresServer.TLS_USER)
            .password(PostgresServer.TLS_PASSWORD)
            .property("sslmode", "verify-full")
            .property("sslrootcert", TestServers.tls().certificatePem().toString());
    try (Connection c = DriverManager.getConnection(settings.url(), settings.toProperties());
        Statement s = c.createStatement()) {
      s.execute("CREATE TABLE out (id text NOT NULL)");
    }
    JdbcSink<String> sink = pgSink("secure-pg", settings);
    assertThat(sink.toString() + settings).doesNotContain(PostgresServer.TLS_PASSWORD);

    Throwable failure =
        harness.run(
            sink,
            st -> ExactlyOnce.foreachRDD(st, r -> List.of(r.value()), sink),
            () -> count(settings, "SELECT count(*) FROM out") >= RECORDS);
    assertThat(failure).isNull();
    List<String> rows = new ArrayList<>();
    try (Connection c = DriverManager.getConnection(settings.url(), settings.toProperties());
        ResultSet rs = c.createStatement().executeQuery("SELECT id FROM out")) {
      while (rs.next()) {
        rows.add(rs.getString(1));
      }
      // The sink's own pooled connections are still open: all of them are encrypted.
      try (ResultSet ssl =
          c.createStatement()
              .executeQuery(
                  "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s"
                      + " JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database()")) {
        ssl.next();
        assertThat(ssl.getLong(1)).isEqualTo(ssl.getLong(2)).isGreaterThan(1);
      }
    }
    assertThat(rows).containsExactlyInAnyOrderElementsOf(ids);

    // Without TLS the server refuses, and says why; without the right password too. Neither
    // error shows a password.
    JdbcSettings plain =
        JdbcSettings.url(url)
            .user(PostgresServer.TLS_USER)
            .password(PostgresServer.TLS_PASSWORD)
            .property("sslmode", "disable");
    assertThat(refusal(pgSink("secure-pg-plain", plain)))
        .contains("no encryption")
        .doesNotContain(PostgresServer.TLS_PASSWORD);
    String wrong = "not-the-password-42";
    assertThat(refusal(pgSink("secure-pg-wrong", settings.password(wrong))))
        .contains("password authentication failed")
        .doesNotContain(wrong);
  }

  private static long count(JdbcSettings settings, String sql) throws Exception {
    try (Connection c = DriverManager.getConnection(settings.url(), settings.toProperties());
        ResultSet rs = c.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  // ---- Kafka ----------------------------------------------------------------------------------

  @Test
  void kafkaOverSaslSslReadsAndWritesEveryRecordOnce() throws Exception {
    KafkaBroker kafka = harness.kafka;
    String out = "secure-out-" + System.nanoTime();
    kafka.createTopic(out, 2);
    Map<String, String> secure = kafka.secureClientProperties(KafkaBroker.SECURE_PASSWORD);
    KafkaSink.Builder<String, KafkaSink<String>> builder =
        KafkaSink.<String>transactional("secure-kafka")
            .bootstrapServers(kafka.secureBootstrapServers())
            .topic(out)
            .value(ToBytes.utf8(v -> v));
    secure.forEach(builder::clientProperty);
    KafkaSink<String> sink = builder.build();
    assertThat(sink.toString()).doesNotContain(KafkaBroker.SECURE_PASSWORD);

    // The stream reads over the secure listener too.
    Map<String, Object> params = harness.kafkaParams();
    params.put("bootstrap.servers", kafka.secureBootstrapServers());
    params.putAll(secure);
    Throwable failure =
        harness.<String, String>run(
            params,
            sink,
            st -> ExactlyOnce.foreachRDD(st, r -> List.of(r.value()), sink),
            () -> KafkaOutput.committed(kafka, out).size() >= RECORDS);
    assertThat(failure).isNull();
    assertThat(KafkaOutput.committed(kafka, out).stream().map(r -> r.value()).toList())
        .containsExactlyInAnyOrderElementsOf(ids);

    String wrong = "not-the-password-42";
    KafkaSink.Builder<String, KafkaSink<String>> bad =
        KafkaSink.<String>transactional("secure-kafka-wrong")
            .bootstrapServers(kafka.secureBootstrapServers())
            .topic(out)
            .value(ToBytes.utf8(v -> v))
            .apiTimeout(java.time.Duration.ofSeconds(10));
    kafka.secureClientProperties(wrong).forEach(bad::clientProperty);
    assertThatThrownBy(() -> start(bad.build(), harness.kafkaParams()))
        .satisfies(
            e ->
                assertThat(messages(e))
                    .containsIgnoringCase("authentication")
                    .doesNotContain(wrong));
  }

  // ---- Cassandra ------------------------------------------------------------------------------

  @Test
  void cassandraOverTlsGetsEveryRecordOnce() throws Exception {
    CassandraServer cassandra = TestServers.cassandra();
    String table = "secure_ks.out_" + System.nanoTime();
    // One plain session for setup and reads: the progress probe runs every 200 ms, and a new
    // session each time (connections, a control connection, the schema) slowed the stream down.
    try (CqlSession plain = CassandraTestSupport.session(cassandra)) {
      plain.execute(
          "CREATE KEYSPACE IF NOT EXISTS secure_ks WITH replication ="
              + " {'class': 'SimpleStrategy', 'replication_factor': 1}");
      plain.execute("CREATE TABLE " + table + " (id text PRIMARY KEY)");
      // The node takes TLS and plain connections on one port; only the sink's use TLS.
      long before = encryptedClients(plain);
      CassandraSettings settings =
          CassandraSettings.contactPoints(
                  cassandra.localDatacenter(), cassandra.host() + ":" + cassandra.nativePort())
              .tls(TestServers.tls().trustStore().toString(), TlsMaterial.STORE_PASSWORD);
      assertThat(settings.toString()).doesNotContain(TlsMaterial.STORE_PASSWORD).contains("tls=");
      CassandraSink<String> sink = cassandraSink("secure-cassandra", settings, table);
      Throwable failure =
          harness.run(
              sink,
              st -> ExactlyOnce.foreachRDD(st, r -> List.of(r.value()), sink),
              () -> plain.execute("SELECT id FROM " + table).all().size() >= RECORDS);
      assertThat(failure).isNull();
      assertThat(plain.execute("SELECT id FROM " + table).all().stream().map(r -> r.getString(0)))
          .containsExactlyInAnyOrderElementsOf(ids);
      assertThat(encryptedClients(plain)).as("TLS connections to the node").isGreaterThan(before);

      // The JDK's default trust store does not trust the test certificate: the handshake fails.
      CassandraSettings defaultTrust =
          CassandraSettings.contactPoints(
                  cassandra.localDatacenter(), cassandra.host() + ":" + cassandra.nativePort())
              .tls();
      assertThat(refusal(cassandraSink("secure-cassandra-untrusted", defaultTrust, table)))
          .contains("cannot connect to Cassandra");
      assertThatThrownBy(
              () ->
                  CassandraSettings.contactPoints("dc1", "127.0.0.1:9042")
                      .tls("/no/such/truststore.p12", "x"))
          .hasMessageContaining("no readable trust store at '/no/such/truststore.p12'");
    }
  }

  @Test
  void cassandraRequiringPasswordsGetsEveryRecordOnceAndNeverShowsThePassword() throws Exception {
    CassandraServer cassandra = TestServers.cassandraRequiringPasswords();
    String password = "app-cassandra-secret";
    String table = "auth_ks.out_" + System.nanoTime();
    try (CqlSession admin =
        CassandraTestSupport.session(
            cassandra, CassandraServer.SUPERUSER, CassandraServer.SUPERUSER_PASSWORD)) {
      admin.execute(
          "CREATE ROLE IF NOT EXISTS app WITH PASSWORD = '" + password + "' AND LOGIN = true");
      admin.execute(
          "CREATE KEYSPACE IF NOT EXISTS auth_ks WITH replication ="
              + " {'class': 'SimpleStrategy', 'replication_factor': 1}");
      admin.execute("CREATE TABLE " + table + " (id text PRIMARY KEY)");
      String point = cassandra.host() + ":" + cassandra.nativePort();
      CassandraSettings settings =
          CassandraSettings.contactPoints(cassandra.localDatacenter(), point)
              .user("app")
              .password(password);
      CassandraSink<String> sink = cassandraSink("auth-cassandra", settings, table);
      assertThat(settings + " " + sink).doesNotContain(password);
      Throwable failure =
          harness.run(
              sink,
              st -> ExactlyOnce.foreachRDD(st, r -> List.of(r.value()), sink),
              () -> admin.execute("SELECT id FROM " + table).all().size() >= RECORDS);
      assertThat(failure).isNull();
      assertThat(admin.execute("SELECT id FROM " + table).all().stream().map(r -> r.getString(0)))
          .containsExactlyInAnyOrderElementsOf(ids);

      // A wrong password, and no credentials at all: refused, saying why, never showing it.
      String wrong = "not-the-password-42";
      for (CassandraSettings bad :
          List.of(
              CassandraSettings.contactPoints(cassandra.localDatacenter(), point)
                  .user("app")
                  .password(wrong),
              CassandraSettings.contactPoints(cassandra.localDatacenter(), point))) {
        assertThat(refusal(cassandraSink("auth-cassandra-refused", bad, table)))
            .contains("cannot connect to Cassandra")
            .containsIgnoringCase("authentication")
            .contains("Check the user and the password")
            .doesNotContain(wrong);
      }
    }
  }

  private static long encryptedClients(CqlSession session) {
    return session.execute("SELECT ssl_enabled FROM system_views.clients").all().stream()
        .filter(r -> r.getBoolean(0))
        .count();
  }
}
