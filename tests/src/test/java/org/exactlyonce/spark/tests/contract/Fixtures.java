package org.exactlyonce.spark.tests.contract;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.Row;
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
import org.exactlyonce.spark.RecordMapper;
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
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
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

    /**
     * This fixture's sink, connecting with {@code settings}, offsets in {@code offsetsTable}, bad
     * records to {@code deadLetters} (null: none, a bad record stops the pipeline).
     */
    ExactlyOnceSink sink(
        String pipeline, JdbcSettings settings, String offsetsTable, String deadLetters) {
      return sink(pipeline, settings, offsetsTable, deadLetters, outputTable());
    }

    /** Like the other {@code sink}, writing to {@code table} instead of this fixture's output. */
    abstract ExactlyOnceSink sink(
        String pipeline,
        JdbcSettings settings,
        String offsetsTable,
        String deadLetters,
        String table);

    /** This fixture's output table. */
    abstract String outputTable();

    @Override
    public ExactlyOnceSink sinkWithMissingOutput(String pipeline) {
      return sink(pipeline, settings, "eos_offsets", null, "no_such_output");
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      return sink(pipeline, settings, "eos_offsets", null);
    }

    /** A dead-letter table in this fixture's database, created by the sink. */
    @Override
    public DeadLetters deadLetters() {
      return new DeadLetters() {
        @Override
        public ExactlyOnceSink sink(String pipeline) {
          return Jdbc.this.sink(pipeline, settings, "eos_offsets", "dead_letters");
        }

        @Override
        public List<String> positions(String pipeline) {
          List<String> out = new java.util.ArrayList<>();
          try (Connection c = connect();
              var s =
                  c.prepareStatement(
                      "SELECT topic, kafka_partition, src_offset FROM dead_letters"
                          + " WHERE pipeline_id = ?")) {
            s.setString(1, pipeline);
            try (ResultSet rs = s.executeQuery()) {
              while (rs.next()) {
                out.add(rs.getString(1) + "-" + rs.getInt(2) + "@" + rs.getLong(3));
              }
            }
          } catch (SQLException e) {
            // Not created yet: the sink creates it when the stream starts.
            return List.of();
          }
          return out;
        }
      };
    }

    @Override
    public ExactlyOnceSink unreachableSink(String pipeline, String address, String secret) {
      return sink(
          pipeline,
          JdbcSettings.url("jdbc:postgresql://" + address + "/contract")
              .user("contract")
              .password(secret),
          "eos_offsets",
          null);
    }

    /**
     * The offsets and writers tables in this fixture's own database, where no sink ran yet; the
     * table of another shape differs from the offsets table in one column type only.
     */
    @Override
    public OffsetTables offsetTables() {
      return new OffsetTables() {
        @Override
        public String missingTable() {
          return "eos_offsets";
        }

        @Override
        public List<String> createdWith(String offsetsTable) {
          return List.of(offsetsTable, "eos_writers");
        }

        @Override
        public ExactlyOnceSink sink(String pipeline, String offsetsTable) {
          return Jdbc.this.sink(pipeline, settings, offsetsTable, null);
        }

        @Override
        public String tableOfAnotherShape() {
          execute(
              "CREATE TABLE offsets_of_another_tool (pipeline_id text, topic text,"
                  + " kafka_partition integer, until_offset integer, writer_epoch bigint,"
                  + " PRIMARY KEY (pipeline_id, topic, kafka_partition))");
          return "offsets_of_another_tool";
        }

        @Override
        public Map<String, String> columns(String table) {
          Map<String, String> out = new java.util.TreeMap<>();
          try (Connection c = connect();
              var s =
                  c.prepareStatement(
                      "SELECT column_name, data_type FROM information_schema.columns"
                          + " WHERE table_schema = current_schema() AND table_name = ?")) {
            s.setString(1, table);
            try (ResultSet rs = s.executeQuery()) {
              while (rs.next()) {
                out.put(rs.getString(1), rs.getString(2));
              }
            }
          } catch (SQLException e) {
            throw new IllegalStateException(e);
          }
          return out;
        }
      };
    }

    void execute(String sql) {
      try (Connection c = connect();
          Statement s = c.createStatement()) {
        s.execute(sql);
      } catch (SQLException e) {
        throw new IllegalStateException(sql, e);
      }
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
    String outputTable() {
      return "out";
    }

    @Override
    ExactlyOnceSink sink(
        String pipeline,
        JdbcSettings settings,
        String offsetsTable,
        String deadLetters,
        String table) {
      return JdbcSink.<String>transactional(pipeline)
          .connection(settings)
          .offsetsTable(offsetsTable)
          .deadLetterTable(deadLetters)
          .table(table)
          .columns("id")
          .values(List::of)
          .build();
    }

    @Override
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      wire(stream, sink, r -> List.of(r.value()));
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(
        ExactlyOnceStream<String, String> stream,
        ExactlyOnceSink sink,
        RecordMapper<String, String, String> mapper) {
      ExactlyOnce.foreachRDD(stream, mapper, (org.exactlyonce.spark.jdbc.JdbcSink<String>) sink);
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

    /** None: the builder refuses deadLetterTable(...), see SinkContract. */
    @Override
    public DeadLetters deadLetters() {
      return null;
    }

    @Override
    String outputTable() {
      return "totals";
    }

    @Override
    ExactlyOnceSink sink(
        String pipeline,
        JdbcSettings settings,
        String offsetsTable,
        String deadLetters,
        String table) {
      JdbcBatchSink.Builder<Tuple2<String, Long>> b =
          JdbcSink.<Tuple2<String, Long>>perBatch(pipeline)
              .connection(settings)
              .offsetsTable(offsetsTable)
              .table(table)
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
    String outputTable() {
      return "events";
    }

    @Override
    ExactlyOnceSink sink(
        String pipeline,
        JdbcSettings settings,
        String offsetsTable,
        String deadLetters,
        String table) {
      return JdbcSink.<String>idempotent(pipeline)
          .connection(settings)
          .offsetsTable(offsetsTable)
          .deadLetterTable(deadLetters)
          .table(table)
          .columns("id")
          .values(List::of)
          .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
          .build();
    }

    @Override
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      wire(stream, sink, r -> List.of(r.value()));
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(
        ExactlyOnceStream<String, String> stream,
        ExactlyOnceSink sink,
        RecordMapper<String, String, String> mapper) {
      ExactlyOnce.foreachRDD(stream, mapper, (JdbcIdempotentSink<String>) sink);
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
    private String tableDdl;

    Cassandra(String name, String columns) {
      table = ks + "." + name + "_" + KEYSPACES.incrementAndGet();
      tableDdl = "CREATE TABLE " + table + " " + columns;
    }

    /** Creates the output table when a test first needs it: a schema change costs seconds. */
    final synchronized void ensureTable() {
      if (tableDdl != null) {
        session.execute(tableDdl);
        tableDdl = null;
      }
    }

    private static synchronized CqlSession session(CassandraServer server) {
      if (shared == null) {
        shared = CassandraTestSupport.session(server);
        shared.execute(
            "CREATE KEYSPACE IF NOT EXISTS eos_contract"
                + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
      }
      return shared;
    }

    private static CqlSession shared;

    /**
     * This fixture's sink, connecting with {@code settings}, offsets in {@code offsetsTable}, bad
     * records to {@code deadLetters} (null: none, a bad record stops the pipeline).
     */
    ExactlyOnceSink sink(
        String pipeline, CassandraSettings settings, String offsetsTable, String deadLetters) {
      return sink(pipeline, settings, offsetsTable, deadLetters, table);
    }

    /** Like the other {@code sink}, writing to {@code output} instead of this fixture's table. */
    abstract ExactlyOnceSink sink(
        String pipeline,
        CassandraSettings settings,
        String offsetsTable,
        String deadLetters,
        String output);

    @Override
    public ExactlyOnceSink sinkWithMissingOutput(String pipeline) {
      ensureTable(); // the keyspace exists: only the output is missing
      return sink(pipeline, settings, ks + ".eos_offsets", null, ks + ".no_such_output");
    }

    @Override
    public ExactlyOnceSink sink(String pipeline) {
      ensureTable();
      return sink(pipeline, settings, ks + ".eos_offsets", null);
    }

    /** One dead-letter table in the shared keyspace for the whole run, created by the sink. */
    @Override
    public DeadLetters deadLetters() {
      ensureTable();
      return new DeadLetters() {
        @Override
        public ExactlyOnceSink sink(String pipeline) {
          return Cassandra.this.sink(pipeline, settings, ks + ".eos_offsets", ks + ".dead_letters");
        }

        @Override
        public List<String> positions(String pipeline) {
          List<String> out = new java.util.ArrayList<>();
          try {
            for (Row r :
                session.execute(
                    com.datastax.oss.driver.api.core.cql.SimpleStatement.newInstance(
                        "SELECT topic, kafka_partition, src_offset FROM "
                            + ks
                            + ".dead_letters WHERE pipeline_id = ? ALLOW FILTERING",
                        pipeline))) {
              out.add(r.getString(0) + "-" + r.getInt(1) + "@" + r.getLong(2));
            }
          } catch (com.datastax.oss.driver.api.core.servererrors.InvalidQueryException e) {
            return List.of(); // not created yet: the sink creates it when the stream starts
          }
          return out;
        }
      };
    }

    @Override
    public ExactlyOnceSink unreachableSink(String pipeline, String address, String secret) {
      return sink(
          pipeline,
          CassandraSettings.contactPoints(server.localDatacenter(), address)
              .user("contract")
              .password(secret),
          ks + ".eos_offsets",
          null);
    }

    /**
     * A new offsets table in the shared keyspace, and this fixture's output table as the table of
     * another shape: each Cassandra schema change costs seconds.
     */
    @Override
    public OffsetTables offsetTables() {
      ensureTable();
      return new OffsetTables() {
        private final String missing = ks + ".offsets_" + KEYSPACES.incrementAndGet();

        @Override
        public String missingTable() {
          return missing;
        }

        @Override
        public List<String> createdWith(String offsetsTable) {
          return List.of(offsetsTable);
        }

        @Override
        public ExactlyOnceSink sink(String pipeline, String offsetsTable) {
          return Cassandra.this.sink(pipeline, settings, offsetsTable, null);
        }

        @Override
        public String tableOfAnotherShape() {
          return table;
        }

        @Override
        public Map<String, String> columns(String keyspaceTable) {
          String[] name = keyspaceTable.split("\\.");
          Map<String, String> out = new java.util.TreeMap<>();
          for (Row r :
              session.execute(
                  com.datastax.oss.driver.api.core.cql.SimpleStatement.newInstance(
                      "SELECT column_name, type, kind FROM system_schema.columns"
                          + " WHERE keyspace_name = ? AND table_name = ?",
                      name[0],
                      name[1]))) {
            out.put(r.getString(0), r.getString(1) + " " + r.getString(2));
          }
          return out;
        }
      };
    }

    @Override
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      wire(stream, sink, r -> List.of(r.value()));
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(
        ExactlyOnceStream<String, String> stream,
        ExactlyOnceSink sink,
        RecordMapper<String, String, String> mapper) {
      ExactlyOnce.foreachRDD(stream, mapper, (CassandraSink<String>) sink);
    }

    @Override
    public void moveOffsetByHand(String pipeline, TopicPartition tp, long offset) {
      session.execute(
          com.datastax.oss.driver.api.core.cql.SimpleStatement.newInstance(
              "UPDATE "
                  + ks
                  + ".eos_offsets SET until_offset = ? WHERE pipeline_id = ? AND topic = ?"
                  + " AND kafka_partition = ? IF EXISTS",
              offset,
              pipeline,
              tp.topic(),
              tp.partition()));
      // A conditional write, as the store's own: a plain UPDATE carries the client's timestamp,
      // which can be older than the Paxos timestamp of the commit just before it, and then loses
      // to it (the contract run on Spark 4.2 once saw the offset unmoved).
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
    ExactlyOnceSink sink(
        String pipeline,
        CassandraSettings settings,
        String offsetsTable,
        String deadLetters,
        String output) {
      return CassandraSink.<String>idempotent(pipeline)
          .connection(settings)
          .offsetsTable(offsetsTable)
          .deadLetterTable(deadLetters)
          .table(output)
          .columns("id")
          .values(List::of)
          .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
          .build();
    }

    @Override
    public Map<String, Long> counts() {
      ensureTable();
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
    ExactlyOnceSink sink(
        String pipeline,
        CassandraSettings settings,
        String offsetsTable,
        String deadLetters,
        String output) {
      return CassandraSink.<String>idempotent(pipeline)
          .connection(settings)
          .offsetsTable(offsetsTable)
          .deadLetterTable(deadLetters)
          .table(output)
          .columns("id")
          .values(List::of)
          .runningTotal("total", id -> 1)
          .build();
    }

    @Override
    public Map<String, Long> counts() {
      ensureTable();
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
      return (ExactlyOnceSink) builder(pipeline).bootstrapServers(kafka.bootstrapServers()).build();
    }

    @Override
    public ExactlyOnceSink sinkWithMissingOutput(String pipeline) {
      return (ExactlyOnceSink)
          builder(pipeline)
              .bootstrapServers(kafka.bootstrapServers())
              .topic(out + "-no_such_output")
              .build();
    }

    /** A dead-letter topic of this fixture, read like its output. */
    @Override
    public DeadLetters deadLetters() {
      String dlq = out + "-dlq";
      kafka.createTopic(dlq, 1);
      return new DeadLetters() {
        @Override
        public ExactlyOnceSink sink(String pipeline) {
          return (ExactlyOnceSink)
              builder(pipeline)
                  .bootstrapServers(kafka.bootstrapServers())
                  .deadLetterTopic(dlq)
                  .build();
        }

        @Override
        public List<String> positions(String pipeline) {
          List<String> out = new java.util.ArrayList<>();
          for (ConsumerRecord<String, String> r : readAll(dlq)) {
            var p = org.exactlyonce.spark.kafka.SourcePosition.of(r.headers()).orElseThrow();
            out.add(p.topic() + "-" + p.partition() + "@" + p.offset());
          }
          return out;
        }
      };
    }

    private KafkaSink.Builder<String, ?> builder(String pipeline) {
      return (transactional
              ? KafkaSink.<String>transactional(pipeline)
              : KafkaSink.<String>idempotent(pipeline))
          .topic(out)
          .key(ToBytes.utf8(s -> s))
          .value(ToBytes.utf8(s -> s));
    }

    /**
     * SASL/PLAIN credentials in the JAAS setting, the way a secured cluster is reached. A Kafka
     * client retries a refused connection until its timeout: one second keeps the row fast, and
     * nothing listens there, so a longer wait could not change the outcome.
     */
    @Override
    public ExactlyOnceSink unreachableSink(String pipeline, String address, String secret) {
      return (ExactlyOnceSink)
          builder(pipeline)
              .bootstrapServers(address)
              .clientProperty("security.protocol", "SASL_PLAINTEXT")
              .clientProperty("sasl.mechanism", "PLAIN")
              .clientProperty(
                  "sasl.jaas.config",
                  "org.apache.kafka.common.security.plain.PlainLoginModule required"
                      + " username=\"contract\" password=\""
                      + secret
                      + "\";")
              .apiTimeout(Duration.ofSeconds(1))
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
    public void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink) {
      wire(stream, sink, r -> List.of(r.value()));
    }

    @Override
    @SuppressWarnings("unchecked")
    public void wire(
        ExactlyOnceStream<String, String> stream,
        ExactlyOnceSink sink,
        RecordMapper<String, String, String> mapper) {
      if (transactional) {
        ExactlyOnce.foreachRDD(stream, mapper, (KafkaSink<String>) sink);
      } else {
        ExactlyOnce.foreachRDD(
            stream, mapper, (org.exactlyonce.spark.kafka.KafkaIdempotentSink<String>) sink);
      }
    }

    /**
     * The transactional output as a {@code read_committed} reader sees it; the idempotent one as a
     * reader that drops repeated source positions (the sink's documented reader contract).
     */
    @Override
    public Map<String, Long> counts() {
      Map<String, Long> counts = new HashMap<>();
      for (ConsumerRecord<String, String> r : readAll(out)) {
        counts.merge(r.value(), 1L, Long::sum);
      }
      return counts;
    }

    /**
     * Every record of {@code topic} as a reader of this sink's output sees it: {@code
     * read_committed} for the transactional sink; for the idempotent one, dropping repeated source
     * positions (its documented reader contract).
     */
    private List<ConsumerRecord<String, String>> readAll(String topic) {
      Map<String, Object> p = new HashMap<>();
      p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
      p.put(
          ConsumerConfig.ISOLATION_LEVEL_CONFIG,
          transactional ? "read_committed" : "read_uncommitted");
      p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
      SourcePositionDeduplicator dedup = new SourcePositionDeduplicator();
      List<ConsumerRecord<String, String>> all = new java.util.ArrayList<>();
      try (KafkaConsumer<String, String> c =
          new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
        List<TopicPartition> tps =
            c.partitionsFor(topic).stream()
                .map(i -> new TopicPartition(topic, i.partition()))
                .toList();
        c.assign(tps);
        c.seekToBeginning(tps);
        Map<TopicPartition, Long> end = c.endOffsets(tps);
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException("could not read " + topic + " to its end " + end);
          }
          for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
            if (transactional || dedup.isFirst(r)) {
              all.add(r);
            }
          }
        }
      }
      return all;
    }
  }
}
