package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.Tuple2;

/**
 * A running per-batch JDBC stream across a PostgreSQL restart (issue 18, item 8): the driver's
 * bookkeeping waits for the database (its reconnect wait is longer than the outage), so the stream
 * goes on without failing, and every record is counted exactly once.
 */
class JdbcDatabaseOutageIT {
  private static final String PIPELINE = "conversions-per-campaign";

  @TempDir Path dir;
  private PostgresServer pg;
  private String url;
  private JdbcSettings settings;
  private final Map<String, Long> reference = new ConcurrentHashMap<>();

  @AfterEach
  void tearDown() {
    if (pg != null) {
      pg.close();
    }
  }

  private void execute(String sql) {
    try (Connection c = DriverManager.getConnection(url, settings.toProperties());
        Statement s = c.createStatement()) {
      s.execute(sql);
    } catch (Exception e) {
      throw new IllegalStateException(sql, e);
    }
  }

  /** Rows of (key, value) from {@code sql}. */
  private Map<String, Long> read(String sql) {
    Map<String, Long> out = new HashMap<>();
    try (Connection c = DriverManager.getConnection(url, settings.toProperties());
        ResultSet rs = c.createStatement().executeQuery(sql)) {
      while (rs.next()) {
        out.put(rs.getString(1), rs.getLong(2));
      }
    } catch (Exception e) {
      throw new IllegalStateException(sql, e);
    }
    return out;
  }

  private Map<TopicPartition, Long> stored(String topic) {
    Map<TopicPartition, Long> out = new HashMap<>();
    read("SELECT kafka_partition::text, until_offset FROM eos_offsets WHERE pipeline_id = '"
            + PIPELINE
            + "'")
        .forEach((p, o) -> out.put(new TopicPartition(topic, Integer.parseInt(p)), o));
    return out;
  }

  /** {@code n} conversions, value = campaign; the reference counts them. */
  private void produce(StreamHarness h, int first, int n) {
    List<String[]> kv = new ArrayList<>();
    for (int i = first; i < first + n; i++) {
      String campaign = "campaign-" + (i * 13) % 23;
      reference.merge(campaign, 1L, Long::sum);
      kv.add(new String[] {"conversion-" + i, campaign});
    }
    h.send(kv);
  }

  @Test
  void aPerBatchStreamRidesOutADatabaseRestartAndCountsEveryRecordOnce() {
    pg = PostgresServer.start(dir);
    url = pg.createDatabase();
    settings = JdbcSettings.url(url).user(pg.user()).password(pg.password());
    execute("CREATE TABLE conversions (campaign text PRIMARY KEY, total bigint NOT NULL)");
    JdbcBatchSink<Tuple2<String, Long>> sink =
        JdbcSink.<Tuple2<String, Long>>perBatch(PIPELINE)
            .connection(settings) // the default reconnect wait, a minute, outlasts the outage
            .table("conversions")
            .columns("campaign", "total")
            .values(t -> List.of(t._1(), t._2()))
            .upsertOn("campaign")
            .accumulating("total")
            .build();

    try (StreamHarness h = new StreamHarness("outage", 4)) {
      produce(h, 0, 1000);
      CompletableFuture<Void> outage =
          CompletableFuture.runAsync(
              () -> {
                await("the first records committed")
                    .atMost(Duration.ofSeconds(120))
                    .ignoreExceptions()
                    .until(() -> stored(h.topic).equals(h.endOffsets()));
                pg.stop();
                // Batches with records meet the database down: they must wait, not fail.
                produce(h, 1000, 1000);
                Outage.lasting(Duration.ofSeconds(10), pg.port());
                pg.restart();
                produce(h, 2000, 1000);
              });

      Throwable failure =
          h.run(
              sink,
              stream ->
                  ExactlyOnce.foreachBatch(
                      stream,
                      rdd ->
                          rdd.mapToPair(r -> new Tuple2<>(r.value(), 1L))
                              .reduceByKey(Long::sum)
                              .map(t -> t),
                      sink),
              () -> outage.isDone() && stored(h.topic).equals(h.endOffsets()));
      outage.join(); // a failure of the outage itself, not of the stream

      assertThat(failure).as("the stream rides out the outage").isNull();
      assertThat(read("SELECT campaign, total FROM conversions"))
          .as("every record counted exactly once")
          .isEqualTo(reference);
      assertThat(reference.values().stream().mapToLong(Long::longValue).sum()).isEqualTo(3000);
    }
  }
}
