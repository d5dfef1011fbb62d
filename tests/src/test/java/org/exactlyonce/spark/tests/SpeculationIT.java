package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.kafka.clients.producer.ProducerRecord;
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
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.StandaloneCluster;
import org.exactlyonce.spark.tests.JdbcTestSupport.Out;
import org.junit.jupiter.api.Test;

/**
 * The failure matrix's "speculative duplicate task" row, for real: Spark launches a speculative
 * copy of a slow task while the original still runs, and the output is still exactly once.
 *
 * <p>Spark runs a speculative copy only on a host where no attempt of that task runs, so {@code
 * local-cluster} (one host) never launches one. Here executors run on a standalone cluster whose
 * two workers sit on loopback hosts 127.0.0.1 and 127.0.0.2 ({@link StandaloneCluster}).
 *
 * <p>The job holds the first attempt of topic partition 0's task in the middle of its range (after
 * it locked the offset row and wrote some rows in its open transaction) until the test releases it.
 * The test waits until a speculative copy has started and is blocked on the original's offset-row
 * lock in PostgreSQL, then releases the original: the original commits, the copy gets the lock,
 * finds the range committed and must write nothing. A naive writer (rows first, offsets later)
 * would write the range twice here.
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

  @Test
  void aSpeculativeCopyOfASlowTaskWritesNothingTheOriginalCommitted() {
    long started = System.nanoTime();
    try (StandaloneCluster cluster = StandaloneCluster.start(2);
        StreamHarness h = new StreamHarness("speculation", PARTITIONS, conf(cluster))) {
      long clusterStarted = System.nanoTime();
      SpeculativeCopies copies = new SpeculativeCopies();
      h.sc.sc().addSparkListener(copies);
      await("an executor on each worker")
          .atMost(Duration.ofSeconds(120))
          .until(() -> h.sc.sc().getExecutorIds().size() >= 2);
      long clusterUp = System.nanoTime();

      List<String> ids = new ArrayList<>();
      List<ProducerRecord<String, String>> input = new ArrayList<>();
      for (int i = 0; i < RECORDS; i++) {
        String id = "s" + i;
        ids.add(id);
        // Round robin, so that topic partition 0 surely reaches offset HOLD_AT.
        input.add(new ProducerRecord<>(h.topic, i % PARTITIONS, id, id));
      }
      h.kafka.send(input);

      JdbcTestSupport db = new JdbcTestSupport();
      db.execute("CREATE TABLE speculation_release (released boolean NOT NULL)");
      JdbcSink<Out> sink =
          JdbcSink.<Out>transactional(PIPELINE)
              .connection(db.settings)
              .table("out")
              .columns("id", "topic", "kafka_partition", "src_offset")
              .values(JdbcTestSupport::values)
              .build();
      String url = db.url;
      Properties props = db.settings.toProperties();

      JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.milliseconds(500));
      try {
        ExactlyOnceStream<String, String> stream =
            ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), sink);
        ExactlyOnce.foreachRDD(
            stream,
            r -> {
              if (r.partition() == 0 && r.offset() == HOLD_AT) {
                holdFirstAttemptUntilReleased(url, props);
              }
              return List.of(new Out(r.value(), r.topic(), r.partition(), r.offset()));
            },
            sink);
        ssc.start();

        await("a speculative copy of the held task")
            .atMost(Duration.ofSeconds(120))
            .until(() -> !copies.launched.isEmpty() || stream.failure() != null);
        assertThat(stream.failure()).isNull();
        await("the copy blocked on the original's offset-row lock")
            .atMost(Duration.ofSeconds(60))
            .until(() -> lockWaiters(db) > 0);
        db.execute("INSERT INTO speculation_release VALUES (true)");
        await("every range committed")
            .atMost(Duration.ofSeconds(120))
            .until(() -> stream.failure() != null || db.stored(PIPELINE).equals(h.endOffsets()));
        assertThat(stream.failure()).isNull();
      } finally {
        ssc.stop(false, true);
      }

      List<String> written = db.allIds();
      Oracle.Verdict verdict = Oracle.records(ids, written);
      System.out.printf(
          "SpeculationIT: %s; speculative copies launched %d %s; rows %d for %d records; %s;"
              + " master and workers up in %,d ms, executors registered after %,d ms, wall %,d ms%n",
          cluster,
          copies.launched.size(),
          copies.launched,
          written.size(),
          RECORDS,
          verdict,
          (clusterStarted - started) / 1_000_000,
          (clusterUp - started) / 1_000_000,
          (System.nanoTime() - started) / 1_000_000);
      assertThat(copies.launched).as("speculative copies launched").isNotEmpty();
      verdict.orThrow();
      assertThat(db.stored(PIPELINE)).isEqualTo(h.endOffsets());
    }
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
  static void holdFirstAttemptUntilReleased(String url, Properties props) throws Exception {
    TaskContext task = TaskContext.get();
    if (task == null || task.attemptNumber() != 0) {
      return;
    }
    long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
    try (Connection c = DriverManager.getConnection(url, props)) {
      while (System.nanoTime() < deadline) {
        try (ResultSet rs =
            c.createStatement().executeQuery("SELECT count(*) FROM speculation_release")) {
          rs.next();
          if (rs.getLong(1) > 0) {
            return;
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
