package org.exactlyonce.spark.examples;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Mobile ad clicks from Kafka to PostgreSQL, exactly once. With no options it starts a real Kafka
 * broker and PostgreSQL server itself, produces clicks, runs the job until every click is written
 * and checks the table against what it produced.
 */
@Command(
    name = "clicks-to-postgres",
    mixinStandardHelpOptions = true,
    description = "Kafka -> Spark direct stream -> PostgreSQL, exactly once.")
public final class ClicksToPostgres implements Callable<Integer> {

  /** One click, parsed from {@code click_id,campaign_id,timestamp_ms}. */
  public record Click(String clickId, String campaignId, long ts, int partition, long offset)
      implements Serializable {
    static Click parse(ConsumerRecord<String, String> r) {
      String[] f = r.value().split(",", -1);
      if (f.length != 3) {
        throw new IllegalArgumentException("not click_id,campaign_id,ts: " + r.value());
      }
      return new Click(f[0], f[1], Long.parseLong(f[2]), r.partition(), r.offset());
    }
  }

  @Option(names = "--records", description = "clicks to produce (default ${DEFAULT-VALUE})")
  int records = 20_000;

  @Option(
      names = "--partitions",
      description = "partitions of the topic (default ${DEFAULT-VALUE})")
  int partitions = 4;

  @Option(names = "--bootstrap-servers", description = "use this Kafka instead of starting one")
  String bootstrapServers;

  @Option(names = "--jdbc-url", description = "use this PostgreSQL instead of starting one")
  String jdbcUrl;

  @Option(names = "--jdbc-user", description = "database user (default ${DEFAULT-VALUE})")
  String jdbcUser = "postgres";

  @Option(
      names = "--jdbc-password-env",
      description = "environment variable holding the database password")
  String jdbcPasswordEnv;

  @Option(names = "--master", description = "Spark master (default ${DEFAULT-VALUE})")
  String master = "local[2,4]";

  @Option(names = "--topic", description = "topic to read (default ${DEFAULT-VALUE})")
  String topic = "clicks";

  public static void main(String[] args) {
    System.exit(new CommandLine(new ClicksToPostgres()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    if (bootstrapServers == null) {
      System.out.println("starting a Kafka broker (KRaft, forked JVM) ...");
      KafkaBroker kafka = TestServers.kafka();
      bootstrapServers = kafka.bootstrapServers();
      kafka.createTopic(topic, partitions);
    }
    if (jdbcUrl == null) {
      System.out.println("starting PostgreSQL ...");
      PostgresServer pg = TestServers.postgres();
      jdbcUrl = pg.createDatabase();
      jdbcUser = pg.user();
    }
    JdbcSettings db = JdbcSettings.url(jdbcUrl).user(jdbcUser);
    if (jdbcPasswordEnv != null) {
      db = db.passwordFromEnv(jdbcPasswordEnv);
    }
    createTable(db);
    produce();

    SparkConf conf =
        new SparkConf()
            .setAppName("clicks-to-postgres")
            .setMaster(master)
            .set("spark.ui.enabled", "false")
            .set("spark.driver.host", "127.0.0.1");
    JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.seconds(1));
    try {

      Map<String, Object> kafkaParams = new HashMap<>();
      kafkaParams.put("bootstrap.servers", bootstrapServers);
      kafkaParams.put("key.deserializer", StringDeserializer.class);
      kafkaParams.put("value.deserializer", StringDeserializer.class);
      kafkaParams.put("max.poll.records", 2000);

      // --- the library, in a dozen lines ----------------------------------------------------
      JdbcSink<Click> clicks =
          JdbcSink.<Click>transactional("clicks-to-postgres")
              .connection(db)
              .table("clicks")
              .columns("click_id", "campaign_id", "ts", "src_partition", "src_offset")
              .values(c -> List.of(c.clickId(), c.campaignId(), c.ts(), c.partition(), c.offset()))
              .build();
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, kafkaParams, List.of(topic), clicks);
      ExactlyOnce.foreachRDD(stream, record -> List.of(Click.parse(record)), clicks);
      // ----------------------------------------------------------------------------------------

      AtomicLong written = new AtomicLong();
      long started = System.nanoTime();
      stream.onBatch(
          b -> {
            long total = written.addAndGet(b.rowsWritten());
            if (b.recordsIn() > 0 || b.replaysSkipped() > 0) {
              double secs = (System.nanoTime() - started) / 1e9;
              System.out.printf(
                  "batch %d: %,d rows written (total %,d, %,.0f rows/s), replays skipped %d,"
                      + " trimmed %d, slowest commit %d ms%n",
                  b.batchTimeMs(),
                  b.rowsWritten(),
                  total,
                  total / secs,
                  b.replaysSkipped(),
                  b.rangesTrimmed(),
                  b.maxCommitMillis());
            }
          });
      ssc.start();
      while (rowCount(db) < records && stream.failure() == null) {
        ssc.awaitTerminationOrTimeout(500);
      }
      ssc.stop(true, true); // graceful: the batch in flight commits before the job exits
      if (stream.failure() != null) {
        System.out.println("FAILED: " + stream.failure());
        return 1;
      }
    } finally {
      ssc.stop(true, false); // no-op after a graceful stop; frees Spark if anything above threw
    }
    return summary(db);
  }

  private void createTable(JdbcSettings db) throws Exception {
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        Statement s = c.createStatement()) {
      // No unique key on purpose: a duplicate would show up as a second row in the summary.
      s.execute(
          "CREATE TABLE IF NOT EXISTS clicks (click_id text NOT NULL, campaign_id text NOT NULL,"
              + " ts bigint NOT NULL, src_partition int NOT NULL, src_offset bigint NOT NULL)");
    }
  }

  private void produce() throws Exception {
    System.out.printf("producing %,d clicks to topic %s ...%n", records, topic);
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", bootstrapServers);
    p.put("acks", "all");
    p.put("linger.ms", 5);
    // Spark 3.5's kafka-clients 3.4 idempotent producer was seen to lose records against a 4.1
    // broker (OutOfOrderSequenceException); one request in flight keeps order without it.
    p.put("enable.idempotence", false);
    p.put("max.in.flight.requests.per.connection", 1);
    try (KafkaProducer<String, String> producer =
        new KafkaProducer<>(
            p,
            new org.apache.kafka.common.serialization.StringSerializer(),
            new org.apache.kafka.common.serialization.StringSerializer())) {
      for (int i = 0; i < records; i++) {
        String id = "click-" + i;
        producer.send(
            new ProducerRecord<>(
                topic, id, id + ",campaign-" + (i % 7) + "," + (1_700_000_000_000L + i)));
      }
    }
  }

  private static long rowCount(JdbcSettings db) throws Exception {
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        ResultSet rs = c.createStatement().executeQuery("SELECT count(*) FROM clicks")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private int summary(JdbcSettings db) throws Exception {
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT count(*), count(DISTINCT click_id),"
                        + " (SELECT count(*) FROM generate_series(0, "
                        + (records - 1)
                        + ") g WHERE NOT EXISTS (SELECT 1 FROM clicks WHERE click_id = 'click-' || g))"
                        + " FROM clicks")) {
      rs.next();
      long rows = rs.getLong(1);
      long duplicates = rows - rs.getLong(2);
      long missing = rs.getLong(3);
      System.out.printf(
          "%nsummary: produced %,d, rows %,d, duplicates %d, missing %d -> %s%n",
          records,
          rows,
          duplicates,
          missing,
          duplicates == 0 && missing == 0 ? "EXACTLY ONCE" : "BROKEN");
      try (ResultSet off =
          c.createStatement()
              .executeQuery(
                  "SELECT topic, kafka_partition, until_offset FROM eos_offsets"
                      + " WHERE pipeline_id = 'clicks-to-postgres' ORDER BY 1, 2")) {
        while (off.next()) {
          System.out.printf(
              "stored offset %s-%d: %d%n", off.getString(1), off.getInt(2), off.getLong(3));
        }
      }
      return duplicates == 0 && missing == 0 ? 0 : 2;
    }
  }
}
