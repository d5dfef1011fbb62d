package org.exactlyonce.spark.tests.backend;

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
import java.util.function.Consumer;
import java.util.stream.IntStream;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcIdempotentSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.tests.support.Outage;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.Tuple2;

/**
 * Running per-batch and idempotent JDBC streams across a PostgreSQL stop and restart (issue 18,
 * item 8): the driver's bookkeeping waits for the database (its reconnect wait is longer than the
 * outage), executors' tasks are retried by Spark, so the stream goes on without failing, and the
 * whole output equals the input exactly once.
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

  private Map<TopicPartition, Long> stored(String pipeline, String topic) {
    Map<TopicPartition, Long> out = new HashMap<>();
    read("SELECT kafka_partition::text, until_offset FROM eos_offsets WHERE pipeline_id = '"
            + pipeline
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

  /** Starts this test's own server with an empty database. */
  private void startDatabase() {
    pg = PostgresServer.start(dir);
    url = pg.createDatabase();
    settings = JdbcSettings.url(url).user(pg.user()).password(pg.password());
  }

  /**
   * Runs the stream {@code wire} builds over 1000 records until they are committed, stops the
   * database while 1000 more arrive, keeps it down for a while, restarts it, sends 1000 more, and
   * returns the stream's failure (null if none) once everything is committed or it failed.
   */
  private Throwable runThroughAnOutage(
      StreamHarness h,
      ExactlyOnceSink sink,
      Consumer<ExactlyOnceStream<String, String>> wire,
      String pipeline) {
    produce(h, 0, 1000);
    CompletableFuture<Void> outage =
        CompletableFuture.runAsync(
            () -> {
              await("the first records committed")
                  .atMost(Duration.ofSeconds(120))
                  .ignoreExceptions()
                  .until(() -> stored(pipeline, h.topic).equals(h.endOffsets()));
              pg.stop();
              // Batches with records meet the database down: they must wait, not fail.
              produce(h, 1000, 1000);
              Outage.lasting(Duration.ofSeconds(10), pg.port());
              pg.restart();
              produce(h, 2000, 1000);
            });
    Throwable failure =
        h.run(
            sink, wire, () -> outage.isDone() && stored(pipeline, h.topic).equals(h.endOffsets()));
    outage.join(); // a failure of the outage itself, not of the stream
    return failure;
  }

  @Test
  void aPerBatchStreamRidesOutADatabaseRestartAndCountsEveryRecordOnce() {
    startDatabase();
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
      Throwable failure =
          runThroughAnOutage(
              h,
              sink,
              stream ->
                  ExactlyOnce.foreachBatch(
                      stream,
                      rdd ->
                          rdd.mapToPair(r -> new Tuple2<>(r.value(), 1L))
                              .reduceByKey(Long::sum)
                              .map(t -> t),
                      sink),
              PIPELINE);

      assertThat(failure).as("the stream rides out the outage").isNull();
      assertThat(read("SELECT campaign, total FROM conversions"))
          .as("every record counted exactly once")
          .isEqualTo(reference);
      assertThat(reference.values().stream().mapToLong(Long::longValue).sum()).isEqualTo(3000);
    }
  }

  /**
   * The idempotent sink writes on the executors (their tasks fail while the database is down and
   * Spark retries them) and commits offsets on the driver (which waits).
   */
  @Test
  void anIdempotentStreamRidesOutADatabaseRestartAndWritesEveryRecordOnce() {
    startDatabase();
    execute(
        "CREATE TABLE events (id text NOT NULL, src_topic text, src_partition int, src_offset bigint,"
            + " src_index int, UNIQUE (src_topic, src_partition, src_offset, src_index))");
    JdbcIdempotentSink<String> sink =
        JdbcSink.<String>idempotent("events-to-postgres")
            .connection(settings)
            .table("events")
            .columns("id")
            .values(List::of)
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();

    try (StreamHarness h = new StreamHarness("outage", 4)) {
      Throwable failure =
          runThroughAnOutage(
              h,
              sink,
              stream -> ExactlyOnce.foreachRDD(stream, r -> List.of(r.key()), sink),
              "events-to-postgres");

      assertThat(failure).as("the stream rides out the outage").isNull();
      List<String> written = new ArrayList<>();
      read("SELECT id, 1 FROM events").keySet().forEach(written::add);
      assertThat(read("SELECT 'rows', count(*) FROM events")).containsEntry("rows", 3000L);
      assertThat(written)
          .as("every record written, none twice")
          .containsExactlyInAnyOrderElementsOf(
              IntStream.range(0, 3000).mapToObj(i -> "conversion-" + i).toList());
    }
  }
}
