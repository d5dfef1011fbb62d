package com.example.consumer;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;

/**
 * A user's job built only from the README's coordinates. It runs on a local master with no
 * servers: a Spark job, each sink built, the PostgreSQL sink's offset store refused because nothing
 * listens where PostgreSQL should be (which loads Jdbi, HikariCP and the PostgreSQL driver from the
 * published dependency graph), and a stream whose start is refused because nothing listens where
 * Kafka should be (the core's start sequence, with kafka-clients), and a Structured Streaming query
 * through {@code ExactlyOnceForeachBatch} refused, naming the artifact to add, because the job
 * lacks Spark's Kafka source.
 */
public final class ConsumerJob {
  /** Nothing listens on these ports of the loopback address: connections are refused at once. */
  private static final String NO_POSTGRES = "127.0.0.1:1";

  private static final String NO_KAFKA = "127.0.0.1:9";

  private static final String NO_CASSANDRA = "127.0.0.1:7";

  public static void main(String[] args) throws Exception {
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName("consumer-check")
            .set("spark.ui.enabled", "false");
    JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.seconds(1));
    try {
      long evens =
          ssc.sparkContext()
              .parallelize(List.of(1, 2, 3, 4, 5, 6), 2)
              .filter(i -> i % 2 == 0)
              .count();
      check(evens == 3, "the Spark job counted " + evens + " even numbers, expected 3");

      JdbcSink<String> postgres =
          JdbcSink.<String>transactional("consumer-check-postgres")
              .connection(
                  JdbcSettings.url("jdbc:postgresql://" + NO_POSTGRES + "/none").user("app"))
              .table("clicks")
              .columns("click_id")
              .values(click -> List.of(click))
              .build();
      CassandraSink<String> cassandra =
          CassandraSink.<String>idempotent("consumer-check-cassandra")
              .connection(CassandraSettings.contactPoints("dc1", NO_CASSANDRA))
              .table("ads.clicks")
              .columns("click_id")
              .values(click -> List.of(click))
              .timestampFromSourceOffset()
              .build();
      KafkaSink<String> kafka =
          KafkaSink.<String>transactional("consumer-check-kafka")
              .bootstrapServers(NO_KAFKA)
              .topic("clicks-out")
              .value(click -> click.getBytes(java.nio.charset.StandardCharsets.UTF_8))
              .build();
      System.out.println("built: " + postgres + ", " + cassandra + ", " + kafka);

      try (OffsetStore store = postgres.openOffsetStore()) {
        store.validate();
        throw new IllegalStateException("PostgreSQL at " + NO_POSTGRES + " was taken as reachable");
      } catch (SinkConfigurationException expected) {
        mentions(expected, NO_POSTGRES);
      }

      Map<String, Object> kafkaParams =
          Map.of(
              "bootstrap.servers", NO_KAFKA,
              // Kafka's default would wait a minute for the broker that is not there.
              "default.api.timeout.ms", 5000,
              "key.deserializer", StringDeserializer.class,
              "value.deserializer", StringDeserializer.class);
      try {
        ExactlyOnce.<String, String>stream(ssc, kafkaParams, List.of("clicks"))
            .foreachRDD(record -> List.of(record.value()), postgres)
            .create();
        throw new IllegalStateException("the stream started although PostgreSQL is unreachable");
      } catch (SinkConfigurationException expected) {
        mentions(expected, NO_KAFKA);
      }

      SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
      JdbcBatchSink<Row> perCampaign =
          JdbcSink.<Row>perBatch("consumer-check-structured")
              .connection(
                  JdbcSettings.url("jdbc:postgresql://" + NO_POSTGRES + "/none").user("app"))
              .table("campaign_clicks")
              .columns("campaign", "clicks")
              .values(r -> List.of(r.getString(0), r.getLong(1)))
              .upsertOn("campaign")
              .accumulating("clicks")
              .build();
      try {
        ExactlyOnceForeachBatch.perBatch(perCampaign)
            .kafka(
                spark,
                Map.of(
                    "kafka.bootstrap.servers", NO_KAFKA, "subscribe", "clicks"))
            .batch(df -> df.groupBy("topic").count())
            .start();
        throw new IllegalStateException(
            "the query started without Spark's Kafka source on the class path");
      } catch (SinkConfigurationException expected) {
        // The README has users ship spark-sql-kafka-0-10 with the job; this one does not, and is
        // told which artifact to add before anything is started.
        mentions(expected, "spark-sql-kafka-0-10_");
      }
    } finally {
      ssc.stop(true, false);
    }
    System.out.println("consumer-check: OK");
  }

  private static void mentions(SinkConfigurationException refusal, String address) {
    check(
        String.valueOf(refusal.getMessage()).contains(address),
        "refused without naming " + address + ": " + refusal.getMessage());
    System.out.println("refused as expected: " + refusal.getMessage());
  }

  private static void check(boolean condition, String failure) {
    if (!condition) {
      throw new IllegalStateException(failure);
    }
  }
}
