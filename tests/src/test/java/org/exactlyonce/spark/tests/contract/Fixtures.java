package org.exactlyonce.spark.tests.contract;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.Row;
import java.net.InetSocketAddress;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcIdempotentSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.SourcePositionDeduplicator;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import scala.Tuple2;

/** The sinks of every backend and strategy, each writing one output per input id. */
final class Fixtures {
  private Fixtures() {}

  // ------------------------------------------------------------------------------ PostgreSQL

  /** A fresh database with one output table. */
  abstract static class Jdbc implements SinkUnderTest {
    final JdbcSettings settings;
    final String url;

    Jdbc(String ddl) {
      PostgresServer pg = TestServers.postgres();
      url = pg.createDatabase();
      settings = JdbcSettings.url(url).user(pg.user()).password(pg.password());
      try (Connection c = connect();
          Statement s = c.createStatement()) {
        s.execute(ddl);
      } catch (SQLException e) {
        throw new IllegalStateException(ddl, e);
      }
    }

    Connection connect() throws SQLException {
      return DriverManager.getConnection(url, settings.toProperties());
    }

    @Override
    public void moveOffsetByHand(String pipeline, TopicPartition tp, long offset) {
      try (Connection c = connect();
          var s =
              c.prepareStatement(
                  "UPDATE eos_offsets SET until_offset = ? WHERE pipeline_id = ? AND topic = ?"
                      + " AND kafka_partition = ?")) {
        s.setLong(1, offset);
        s.setString(2, pipeline);
        s.setString(3, tp.topic());
        s.setInt(4, tp.partition());
        if (s.executeUpdate() != 1) {
          throw new IllegalStateException("no offset row for " + pipeline + " " + tp);
        }
      } catch (SQLException e) {
        throw new IllegalStateException(e);
      }
    }

    /** {@code query} returns (id, count) rows. */
    Map<String, Long> countsOf(String query) {
      Map<String, Long> out = new HashMap<>();
      try (Connection c = connect();
          ResultSet rs = c.createStatement().executeQuery(query)) {
        while (rs.next()) {
          out.put(rs.getString(1), rs.getLong(2));
        }
      } catch (SQLException e) {
        throw new IllegalStateException(query, e);
      }
      return out;
    }
  }

  /** Strategy T: rows without a unique key, so a second write shows as a second row. */
  static final class JdbcTransactional extends Jdbc {
    JdbcTransactional() {
      super("CREATE TABLE out (id text NOT NULL)");
    }

    @Override
    public String name() {
      return "JDBC transactional";
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      return JdbcSink.<String>transactional(pipeline)
          .connection(settings)
          .table("out")
          .columns("id")
          .values(List::of)
          .build();
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      ExactlyOnce.foreachRDD(
          stream, r -> List.of(r.value()), (org.exactlyonce.spark.jdbc.JdbcSink<String>) sink);
    }

    @Override
    public Map<String, Long> counts() {
      return countsOf("SELECT id, count(*) FROM out GROUP BY id");
    }
  }

  /** Strategy T-batch: a total per id after a shuffle, added to on every batch. */
  static final class JdbcPerBatch extends Jdbc {
    private final boolean staged;

    JdbcPerBatch(boolean staged) {
      super("CREATE TABLE totals (id text PRIMARY KEY, total bigint NOT NULL)");
      this.staged = staged;
    }

    @Override
    public String name() {
      return staged ? "JDBC per-batch staged" : "JDBC per-batch collected";
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      JdbcBatchSink.Builder<Tuple2<String, Long>> b =
          JdbcSink.<Tuple2<String, Long>>perBatch(pipeline)
              .connection(settings)
              .table("totals")
              .columns("id", "total")
              .values(t -> List.of(t._1(), t._2()))
              .upsertOn("id")
              .accumulating("total");
      return (staged ? b.staged() : b).build();
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      ExactlyOnce.foreachBatch(
          stream,
          rdd -> rdd.mapToPair(r -> new Tuple2<>(r.value(), 1L)).reduceByKey(Long::sum).map(t -> t),
          (JdbcBatchSink<Tuple2<String, Long>>) sink);
    }

    @Override
    public Map<String, Long> counts() {
      return countsOf("SELECT id, total FROM totals");
    }
  }

  /** Strategy I: upserts keyed by the source position. */
  static final class JdbcIdempotent extends Jdbc {
    JdbcIdempotent() {
      super(
          "CREATE TABLE events (id text NOT NULL, src_topic text, src_partition int,"
              + " src_offset bigint, src_index int,"
              + " UNIQUE (src_topic, src_partition, src_offset, src_index))");
    }

    @Override
    public String name() {
      return "JDBC idempotent";
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      return JdbcSink.<String>idempotent(pipeline)
          .connection(settings)
          .table("events")
          .columns("id")
          .values(List::of)
          .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
          .build();
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      ExactlyOnce.foreachRDD(stream, r -> List.of(r.value()), (JdbcIdempotentSink<String>) sink);
    }

    @Override
    public Map<String, Long> counts() {
      return countsOf("SELECT id, count(*) FROM events GROUP BY id");
    }
  }

  // ------------------------------------------------------------------------------ Cassandra

  private static final AtomicInteger KEYSPACES = new AtomicInteger();

  /** A fresh keyspace; test-side requests wait as long as a loaded 2-core machine needs. */
  abstract static class Cassandra implements SinkUnderTest {
    final CassandraServer server = TestServers.cassandra();
    final CassandraSettings settings =
        CassandraSettings.contactPoints(
            server.localDatacenter(), server.host() + ":" + server.nativePort());
    // One keyspace and session for the whole run, a table per fixture: Cassandra's schema
    // changes are the slow part of these tests, and pipelines are unique per test anyway.
    final String ks = "eos_contract";
    final CqlSession session = session(server);
    final String table;

    Cassandra(String name, String columns) {
      table = ks + "." + name + "_" + KEYSPACES.incrementAndGet();
      session.execute("CREATE TABLE " + table + " " + columns);
    }

    private static synchronized CqlSession session(CassandraServer server) {
      if (shared == null) {
        shared =
            CqlSession.builder()
                .addContactPoint(new InetSocketAddress(server.host(), server.nativePort()))
                .withLocalDatacenter(server.localDatacenter())
                .withConfigLoader(
                    DriverConfigLoader.programmaticBuilder()
                        .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, Duration.ofSeconds(60))
                        .withDuration(
                            DefaultDriverOption.CONTROL_CONNECTION_AGREEMENT_TIMEOUT,
                            Duration.ofSeconds(60))
                        .build())
                .build();
        shared.execute(
            "CREATE KEYSPACE IF NOT EXISTS eos_contract"
                + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
      }
      return shared;
    }

    private static CqlSession shared;

    @Override
    @SuppressWarnings("unchecked")
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      ExactlyOnce.foreachRDD(stream, r -> List.of(r.value()), (CassandraSink<String>) sink);
    }

    @Override
    public void moveOffsetByHand(String pipeline, TopicPartition tp, long offset) {
      session.execute(
          com.datastax.oss.driver.api.core.cql.SimpleStatement.newInstance(
              "UPDATE "
                  + ks
                  + ".eos_offsets SET until_offset = ? WHERE pipeline_id = ? AND topic = ?"
                  + " AND kafka_partition = ?",
              offset,
              pipeline,
              tp.topic(),
              tp.partition()));
    }
  }

  /** Strategy I: one row per output, keyed by its source position. */
  static final class CassandraIdempotent extends Cassandra {
    CassandraIdempotent() {
      super(
          "events",
          "(src_topic text, src_partition int, src_offset bigint, src_index int, id text,"
              + " PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
    }

    @Override
    public String name() {
      return "Cassandra idempotent";
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      return CassandraSink.<String>idempotent(pipeline)
          .connection(settings)
          .table(table)
          .columns("id")
          .values(List::of)
          .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
          .build();
    }

    @Override
    public Map<String, Long> counts() {
      Map<String, Long> out = new HashMap<>();
      for (Row r : session.execute("SELECT id FROM " + table)) {
        out.merge(r.getString(0), 1L, Long::sum);
      }
      return out;
    }
  }

  /** Per-key running totals, each id adding 1 to its own total. */
  static final class CassandraRunningTotals extends Cassandra {
    CassandraRunningTotals() {
      super("totals", "(id text PRIMARY KEY, total bigint, eos_applied map<text, bigint>)");
    }

    @Override
    public String name() {
      return "Cassandra running totals";
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      return CassandraSink.<String>idempotent(pipeline)
          .connection(settings)
          .table(table)
          .columns("id")
          .values(List::of)
          .runningTotal("total", id -> 1)
          .build();
    }

    @Override
    public Map<String, Long> counts() {
      Map<String, Long> out = new HashMap<>();
      for (Row r : session.execute("SELECT id, total FROM " + table)) {
        out.put(r.getString(0), r.getLong(1));
      }
      return out;
    }
  }

  // ------------------------------------------------------------------------------ Kafka

  /** An output topic of its own, read whole by a downstream reader. */
  static final class Kafka implements SinkUnderTest {
    private final boolean transactional;
    private final KafkaBroker kafka = TestServers.kafka();
    private final String out = "contract-out-" + System.nanoTime();

    Kafka(boolean transactional) {
      this.transactional = transactional;
      kafka.createTopic(out, 2);
    }

    @Override
    public String name() {
      return transactional ? "Kafka transactional" : "Kafka idempotent";
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      return (transactional
              ? KafkaSink.<String>transactional(pipeline)
              : KafkaSink.<String>idempotent(pipeline))
          .bootstrapServers(kafka.bootstrapServers())
          .topic(out)
          .key(ToBytes.utf8(s -> s))
          .value(ToBytes.utf8(s -> s))
          .build();
    }

    /**
     * The way an operator would: kafka-consumer-groups.sh --reset-offsets on the progress group.
     */
    @Override
    public void moveOffsetByHand(String pipeline, TopicPartition tp, long offset) {
      try (var admin = kafka.admin()) {
        admin
            .alterConsumerGroupOffsets(
                "eos-progress-" + pipeline,
                Map.of(tp, new org.apache.kafka.clients.consumer.OffsetAndMetadata(offset)))
            .all()
            .get();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      if (transactional) {
        ExactlyOnce.foreachRDD(stream, r -> List.of(r.value()), (KafkaSink<String>) sink);
      } else {
        ExactlyOnce.foreachRDD(
            stream,
            r -> List.of(r.value()),
            (org.exactlyonce.spark.kafka.KafkaIdempotentSink<String>) sink);
      }
    }

    /**
     * The transactional output as a {@code read_committed} reader sees it; the idempotent one as a
     * reader that drops repeated source positions (the sink's documented reader contract).
     */
    @Override
    public Map<String, Long> counts() {
      Map<String, Object> p = new HashMap<>();
      p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
      p.put(
          ConsumerConfig.ISOLATION_LEVEL_CONFIG,
          transactional ? "read_committed" : "read_uncommitted");
      p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
      SourcePositionDeduplicator dedup = new SourcePositionDeduplicator();
      Map<String, Long> counts = new HashMap<>();
      try (KafkaConsumer<String, String> c =
          new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
        List<TopicPartition> tps =
            c.partitionsFor(out).stream().map(i -> new TopicPartition(out, i.partition())).toList();
        c.assign(tps);
        c.seekToBeginning(tps);
        Map<TopicPartition, Long> end = c.endOffsets(tps);
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException("could not read " + out + " to its end " + end);
          }
          for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
            if (transactional || dedup.isFirst(r)) {
              counts.merge(r.value(), 1L, Long::sum);
            }
          }
        }
      }
      return counts;
    }
  }
}
