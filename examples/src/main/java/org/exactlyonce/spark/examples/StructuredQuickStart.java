package org.exactlyonce.spark.examples;

import static org.apache.spark.sql.functions.col;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The Structured Streaming quick start: ad clicks from Kafka, read by Spark's Kafka source and
 * written exactly once to PostgreSQL by two queries, every click (strategy T, one transaction per
 * Kafka range) and clicks per campaign (strategy T-batch, an aggregate after a shuffle, one
 * transaction per batch). It starts Kafka and PostgreSQL itself, produces half the clicks, runs
 * both queries to the end and stops them, produces the other half and starts them again with no
 * checkpoint: each resumes from the offsets its sink stored. Then it reads both tables whole and
 * compares them with what it produced.
 */
@Command(
    name = "run-example --structured",
    mixinStandardHelpOptions = true,
    description = "Ad clicks: Kafka -> Structured Streaming -> PostgreSQL, exactly once.")
public final class StructuredQuickStart implements Callable<Integer> {
  private static final int CAMPAIGNS = 7;

  @Option(names = "--records", description = "Clicks to produce (default: ${DEFAULT-VALUE}).")
  int records = 10_000;

  @Option(
      names = "--partitions",
      description = "Partitions of the topic (default: ${DEFAULT-VALUE}).")
  int partitions = 4;

  @Option(names = "--master", description = "Spark master (default: ${DEFAULT-VALUE}).")
  String master = "local[2]";

  public static void main(String[] args) {
    System.exit(new CommandLine(new StructuredQuickStart()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    Embedded servers = new Embedded();
    String kafka = servers.kafka();
    String[] pg = servers.postgres();
    JdbcSettings db = JdbcSettings.url(pg[0]).user(pg[1]);
    String topic = "structured-clicks-" + System.nanoTime();
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", kafka))) {
      admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
    }
    sql(
        db,
        "CREATE TABLE clicks (click_id text NOT NULL, campaign text NOT NULL,"
            + " src_partition int NOT NULL, src_offset bigint NOT NULL)",
        "CREATE TABLE clicks_per_campaign (campaign text PRIMARY KEY, clicks bigint NOT NULL)");

    // Every click, with its source position, in one transaction with its Kafka range.
    JdbcSink<String[]> clicks =
        JdbcSink.<String[]>transactional("structured-clicks")
            .connection(db)
            .table("clicks")
            .columns("click_id", "campaign", "src_partition", "src_offset")
            .values(v -> List.of(v[0], v[1], Integer.parseInt(v[2]), Long.parseLong(v[3])))
            .build();
    // Clicks per campaign: each batch's counts added to the stored totals, with the batch's ranges.
    JdbcBatchSink<Row> perCampaign =
        JdbcSink.<Row>perBatch("structured-clicks-per-campaign")
            .connection(db)
            .table("clicks_per_campaign")
            .columns("campaign", "clicks")
            .values(r -> List.of(r.getString(0), r.getLong(1)))
            .upsertOn("campaign")
            .accumulating("clicks")
            .build();
    Map<String, String> source = Map.of("kafka.bootstrap.servers", kafka, "subscribe", topic);

    SparkSession spark =
        SparkSession.builder()
            .config(
                SparkSetup.local("structured-quick-start", 2, 4)
                    .setMaster(master)
                    // A few tasks after the aggregate's shuffle, not Spark SQL's default 200.
                    .set("spark.sql.shuffle.partitions", "4")
                    .set("spark.ui.enabled", "false"))
            .getOrCreate();
    Map<String, Long> expected = new TreeMap<>();
    List<String> produced = new ArrayList<>();
    try {
      for (int run = 1; run <= 2; run++) {
        produce(kafka, topic, run == 1 ? records / 2 : records - records / 2, produced, expected);
        // No checkpoint: each query starts where its sink's stored offsets say.
        StreamingQuery copies =
            ExactlyOnceForeachBatch.transactional(clicks)
                .kafka(spark, source)
                .foreachRecord(
                    r ->
                        List.<String[]>of(
                            new String[] {
                              new String(r.key(), StandardCharsets.UTF_8),
                              new String(r.value(), StandardCharsets.UTF_8),
                              Integer.toString(r.partition()),
                              Long.toString(r.offset())
                            }))
                .start();
        StreamingQuery totals =
            ExactlyOnceForeachBatch.perBatch(perCampaign)
                .kafka(spark, source)
                .batch(df -> df.groupBy(col("value").cast("string").as("campaign")).count())
                .start();
        copies.processAllAvailable();
        totals.processAllAvailable();
        copies.stop();
        totals.stop();
        System.out.printf(
            "run %d: %,d clicks produced so far, both queries caught up and stopped%n",
            run, produced.size());
      }
    } finally {
      spark.stop();
    }
    return check(db, produced, expected) ? 0 : 1;
  }

  private static void produce(
      String kafka, String topic, int n, List<String> produced, Map<String, Long> expected) {
    try (KafkaProducer<String, String> p =
        new KafkaProducer<>(
            Map.of("bootstrap.servers", kafka, "enable.idempotence", "true"),
            new StringSerializer(),
            new StringSerializer())) {
      for (int i = 0; i < n; i++) {
        String id = "click-" + produced.size();
        String campaign = "campaign-" + (produced.size() % CAMPAIGNS);
        produced.add(id);
        expected.merge(campaign, 1L, Long::sum);
        p.send(new ProducerRecord<>(topic, id, campaign)); // keyed by click: spread over partitions
      }
    }
  }

  /** Reads both tables whole and compares them with the input; prints the verdict. */
  private static boolean check(JdbcSettings db, List<String> produced, Map<String, Long> expected)
      throws Exception {
    Map<String, Integer> seen = new HashMap<>();
    Map<String, Long> totals = new TreeMap<>();
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        Statement s = c.createStatement()) {
      try (ResultSet rs = s.executeQuery("SELECT click_id FROM clicks")) {
        while (rs.next()) {
          seen.merge(rs.getString(1), 1, Integer::sum);
        }
      }
      try (ResultSet rs = s.executeQuery("SELECT campaign, clicks FROM clicks_per_campaign")) {
        while (rs.next()) {
          totals.put(rs.getString(1), rs.getLong(2));
        }
      }
    }
    long duplicates = seen.values().stream().filter(n -> n > 1).mapToLong(n -> n - 1).sum();
    long missing = produced.stream().filter(id -> !seen.containsKey(id)).count();
    java.util.Set<String> input = new java.util.HashSet<>(produced);
    long unexpected = seen.keySet().stream().filter(id -> !input.contains(id)).count();
    boolean totalsEqual = totals.equals(expected);
    System.out.printf(
        "summary: produced %,d clicks%n  PostgreSQL clicks               rows %,d, duplicates %,d,"
            + " missing %,d, unexpected %,d%n  PostgreSQL clicks per campaign  %d campaigns, %s%n",
        produced.size(),
        seen.values().stream().mapToLong(Integer::longValue).sum(),
        duplicates,
        missing,
        unexpected,
        totals.size(),
        totalsEqual ? "totals equal to the input's" : "totals " + totals + ", input's " + expected);
    boolean ok = duplicates == 0 && missing == 0 && unexpected == 0 && totalsEqual;
    System.out.println(ok ? "-> EXACTLY ONCE" : "-> NOT EXACTLY ONCE");
    return ok;
  }

  private static void sql(JdbcSettings db, String... statements) throws Exception {
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        Statement s = c.createStatement()) {
      for (String statement : statements) {
        s.execute(statement);
      }
    }
  }
}
