package org.exactlyonce.spark.tests.chaos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.SparkConf;
import org.apache.spark.TaskContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.chaos.Oracle;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.StandaloneCluster;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The failure matrix's "speculative duplicate task" row, for real: Spark launches a speculative
 * copy of a slow task while the original still runs, and the output is still exactly once.
 *
 * <p>Spark runs a speculative copy only on a host where no attempt of that task runs, so {@code
 * local-cluster} (one host) never launches one. Here executors run on a standalone cluster whose
 * two workers sit on loopback hosts 127.0.0.1 and 127.0.0.2 ({@link StandaloneCluster}).
 *
 * <p>The job holds the first attempt of topic partition 0's task in the middle of its range (inside
 * the sink's open transaction) until the test releases it, and a {@link SparkListener} counts the
 * speculative copies. JDBC: the test waits until the copy is blocked on the original's offset-row
 * lock in PostgreSQL, then releases the original; the original commits, the copy gets the lock,
 * finds the range committed and must write nothing (with that decision removed, it writes the range
 * a second time: checked by hand, see the README). Kafka: the copy's producer fences the original
 * and commits the range; the test then releases the original, which can commit nothing. The whole
 * output is compared with the input by the chaos kit's {@link Oracle}.
 */
class SpeculationIT {
  private static final String PIPELINE = "speculation";
  private static final int PARTITIONS = 4;
  private static final int RECORDS = 2000;

  /** The offset of topic partition 0 at which the first attempt waits for the release. */
  private static final long HOLD_AT = 100;

  /** Counts the speculative task copies Spark launches. */
  static final class SpeculativeCopies extends SparkListener {
    final List<String> launched = new CopyOnWriteArrayList<>();

    @Override
    public void onTaskStart(SparkListenerTaskStart start) {
      if (start.taskInfo().speculative()) {
        launched.add(
            "stage "
                + start.stageId()
                + " task "
                + start.taskInfo().index()
                + " attempt "
                + start.taskInfo().attemptNumber()
                + " on "
                + start.taskInfo().host());
      }
    }
  }

  private static StandaloneCluster cluster;
  private static StreamHarness h;
  private static final SpeculativeCopies copies = new SpeculativeCopies();
  private static final List<String> ids = new ArrayList<>();
  private static JdbcTestSupport db;

  /** One cluster, one driver and one input topic for both sinks (each its own pipeline id). */
  @BeforeAll
  static void startCluster() {
    long started = System.nanoTime();
    cluster = StandaloneCluster.start(2);
    long workersUp = System.nanoTime();
    h = new StreamHarness("speculation", PARTITIONS, conf(cluster));
    h.sc.sc().addSparkListener(copies);
    await("an executor on each worker")
        .atMost(Duration.ofSeconds(120))
        .until(() -> h.sc.sc().getExecutorIds().size() >= 2);
    System.out.printf(
        "SpeculationIT: %s; master and workers up in %,d ms, executors registered after %,d ms%n",
        cluster, (workersUp - started) / 1_000_000, (System.nanoTime() - started) / 1_000_000);

    List<ProducerRecord<String, String>> input = new ArrayList<>();
    for (int i = 0; i < RECORDS; i++) {
      String id = "s" + i;
      ids.add(id);
      // Round robin, so that topic partition 0 surely reaches offset HOLD_AT.
      input.add(new ProducerRecord<>(h.topic, i % PARTITIONS, id, id));
    }
    h.kafka.send(input);
    // The release rows the held tasks poll, one per test; also the JDBC test's output.
    db = new JdbcTestSupport();
    db.execute("CREATE TABLE speculation_release (test text NOT NULL)");
  }

  @AfterAll
  static void stopCluster() {
    try (StandaloneCluster c = cluster) {
      if (h != null) {
        h.close();
      }
    }
  }

  /**
   * JDBC transactional: the copy blocks on the original's offset-row lock; once the original
   * commits, the copy finds the range committed and writes nothing.
   */
  @Test
  void aSpeculativeCopyOfASlowTaskWritesNothingTheOriginalCommitted() {
    long started = System.nanoTime();
    int copiesBefore = copies.launched.size();
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional(PIPELINE)
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .build();
    String url = db.url;
    Properties props = db.settings.toProperties();

    runHeld(
        sink,
        stream ->
            ExactlyOnce.foreachRDD(
                stream,
                r -> {
                  if (r.partition() == 0 && r.offset() == HOLD_AT) {
                    holdFirstAttemptUntilReleased(url, props, "jdbc");
                  }
                  return List.of(new Out(r.value(), r.topic(), r.partition(), r.offset()));
                },
                sink),
        () -> lockWaiters(db) > 0,
        "jdbc",
        () -> db.stored(PIPELINE).equals(h.endOffsets()));

    List<String> written = db.allIds();
    report("jdbc", copiesBefore, written, started);
    assertThat(copies.launched.size())
        .as("speculative copies launched")
        .isGreaterThan(copiesBefore);
    Oracle.records(ids, written).orThrow();
    assertThat(db.stored(PIPELINE)).isEqualTo(h.endOffsets());
  }

  /**
   * Kafka transactional: the copy's producer takes the same transactional id, which fences the held
   * original and aborts its open transaction; the copy commits the range once, and the original,
   * released, can commit nothing.
   */
  @Test
  void aSpeculativeCopyFencesTheHeldKafkaTransactionAndTheOutputIsExactlyOnce() {
    long started = System.nanoTime();
    int copiesBefore = copies.launched.size();
    String outTopic = h.topic + "-out";
    h.kafka.createTopic(outTopic, 2);
    KafkaSink<String> sink =
        KafkaSink.<String>transactional(PIPELINE + "-kafka")
            .bootstrapServers(h.kafka.bootstrapServers())
            .topic(outTopic)
            .key(ToBytes.utf8(v -> v))
            .value(ToBytes.utf8(v -> v))
            .apiTimeout(Duration.ofSeconds(10))
            .producerProperty("delivery.timeout.ms", "15000")
            .producerProperty("request.timeout.ms", "5000")
            .build();
    String url = db.url;
    Properties props = db.settings.toProperties();
    TopicPartition held = new TopicPartition(h.topic, 0);

    runHeld(
        sink,
        stream ->
            ExactlyOnce.foreachRDD(
                stream,
                r -> {
                  if (r.partition() == 0 && r.offset() == HOLD_AT) {
                    holdFirstAttemptUntilReleased(url, props, "kafka");
                  }
                  return List.of(r.value());
                },
                sink),
        () ->
            KafkaOutput.groupOffsets(h.kafka, sink.progressGroup())
                .getOrDefault(held, -1L)
                .equals(h.endOffsets().get(held)),
        "kafka",
        () -> KafkaOutput.groupOffsets(h.kafka, sink.progressGroup()).equals(h.endOffsets()));

    List<String> written =
        KafkaOutput.committed(h.kafka, outTopic).stream().map(r -> r.value()).toList();
    report("kafka", copiesBefore, written, started);
    assertThat(copies.launched.size())
        .as("speculative copies launched")
        .isGreaterThan(copiesBefore);
    Oracle.records(ids, written).orThrow();
  }

  /**
   * Starts the stream, waits for a speculative copy and then for {@code copyInPlace}, releases the
   * held original, and waits until {@code allCommitted}; fails if the stream failed.
   */
  private static void runHeld(
      ExactlyOnceSink sink,
      Consumer<ExactlyOnceStream<String, String>> wire,
      Callable<Boolean> copyInPlace,
      String test,
      Callable<Boolean> allCommitted) {
    int copiesBefore = copies.launched.size();
    JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), sink);
      wire.accept(stream);
      ssc.start();
      await("a speculative copy of the held task")
          .atMost(Duration.ofSeconds(120))
          .until(() -> copies.launched.size() > copiesBefore || stream.failure() != null);
      assertThat(stream.failure()).isNull();
      await("the copy in place (" + test + ")")
          .atMost(Duration.ofSeconds(60))
          .ignoreExceptions()
          .until(copyInPlace);
      db.execute("INSERT INTO speculation_release VALUES ('" + test + "')");
      await("every range committed (" + test + ")")
          .atMost(Duration.ofSeconds(120))
          .ignoreExceptions()
          .until(() -> stream.failure() != null || allCommitted.call());
      assertThat(stream.failure()).isNull();
    } finally {
      ssc.stop(false, true);
    }
  }

  private static void report(String test, int copiesBefore, List<String> written, long started) {
    List<String> launched = copies.launched.subList(copiesBefore, copies.launched.size());
    System.out.printf(
        "SpeculationIT %s: speculative copies launched %d %s; outputs %d for %d records; %s;"
            + " %,d ms%n",
        test,
        launched.size(),
        launched,
        written.size(),
        RECORDS,
        Oracle.records(ids, written),
        (System.nanoTime() - started) / 1_000_000);
  }

  /**
   * Speculation as eager as Spark allows: a task is a candidate once half of its stage finished and
   * it ran 1.5 times their median; no waiting for locality, so the copy starts at once on the other
   * host.
   */
  private static SparkConf conf(StandaloneCluster cluster) {
    return SparkSetup.standalone("speculation", cluster)
        .set("spark.speculation", "true")
        .set("spark.speculation.interval", "100ms")
        .set("spark.speculation.multiplier", "1.5")
        .set("spark.speculation.quantile", "0.5")
        .set("spark.speculation.minTaskRuntime", "100ms")
        // Spark 3.4+ also asks whether a slow task processes records slowly; a held task reads
        // none, which is what we want, but keep the plain duration rule.
        .set("spark.speculation.efficiency.enabled", "false")
        .set("spark.locality.wait", "0");
  }

  /**
   * Runs in the job under test, on an executor: the first attempt of the task waits here until the
   * test inserts the release row (polling; at most two minutes, so that a broken test cannot hang
   * the build). The speculative copy (attempt 1) passes straight through. Spark interrupts the
   * thread when it kills an attempt; the interrupt ends the wait and fails the attempt.
   */
  static void holdFirstAttemptUntilReleased(String url, Properties props, String test)
      throws Exception {
    TaskContext task = TaskContext.get();
    if (task == null || task.attemptNumber() != 0) {
      return;
    }
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    try (Connection c = DriverManager.getConnection(url, props)) {
      while (System.nanoTime() < deadline) {
        try (PreparedStatement ps =
            c.prepareStatement("SELECT count(*) FROM speculation_release WHERE test = ?")) {
          ps.setString(1, test);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            if (rs.getLong(1) > 0) {
              return;
            }
          }
        }
        // Paces the held task's polling of the release row; the test itself waits with
        // Awaitility.
        Thread.sleep(100);
      }
    }
  }

  /** Sessions of the test's database waiting for a lock (the copy, on the offset row). */
  private static long lockWaiters(JdbcTestSupport db) throws SQLException {
    try (Connection c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        + " AND wait_event_type = 'Lock'")) {
      rs.next();
      return rs.getLong(1);
    }
  }
}
