package org.exactlyonce.spark.tests.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.apache.spark.streaming.kafka010.KafkaUtils;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Operations on a stream that no single sink decides: several outputs on one stream, the start
 * sequence of a new deployment, and streaming settings under which the sinks' offsets could not be
 * the truth.
 */
class OperationsIT {
  private static JavaSparkContext sc;
  private final KafkaBroker kafka = TestServers.kafka();
  private String topic;

  @BeforeAll
  static void startSpark() {
    sc = new JavaSparkContext(SparkSetup.local("operations", 2, 4));
  }

  @AfterAll
  static void stopSpark() {
    sc.stop();
  }

  @BeforeEach
  void createTopic() {
    topic = "operations-" + System.nanoTime();
    kafka.createTopic(topic, 2);
  }

  /**
   * A per-batch sink beside a per-record sink: the stream restarts at the lowest offset over both,
   * so a batch holds ranges the per-batch sink already committed (wholly or in part) next to new
   * ones. It must skip what it committed, per partition, and compute the rest only; before, it
   * refused the "partly committed" batch on every restart and the job could never run again.
   */
  @Test
  void aPerBatchSinkBesideAPerRecordSinkSkipsWhatItCommittedPerPartition() {
    try (Fixtures.JdbcPerBatch totals = new Fixtures.JdbcPerBatch(false);
        Fixtures.JdbcTransactional rows = new Fixtures.JdbcTransactional()) {
      ExactlyOnceSink a = totals.sink("totals-" + System.nanoTime());
      ExactlyOnceSink b = rows.sink("rows-" + System.nanoTime());
      Map<String, Long> expected = new LinkedHashMap<>();

      send(0, "first-p0", 20, expected);
      send(1, "first-p1", 20, expected);
      run(List.of(totals, rows), List.of(a, b), expected);

      // Only the per-batch sink runs on: it gets ahead of the other on partition 0.
      runOnlyA(totals, a, 0, "only-a-p0", expected);

      // Both again: the first batch holds p0 [20, 30), which the per-batch sink committed
      // wholly, beside p1 [20, 30), which it has not.
      send(1, "skip-p1", 10, expected);
      run(List.of(totals, rows), List.of(a, b), expected);

      // Ahead on p0 again; then a batch holds p0 [30, 50), of which the per-batch sink has
      // [30, 40), beside p1 [30, 40).
      runOnlyA(totals, a, 0, "only-a2-p0", expected);
      send(0, "trim-p0", 10, expected);
      send(1, "trim-p1", 10, expected);
      run(List.of(totals, rows), List.of(a, b), expected);

      assertThat(totals.counts()).isEqualTo(expected);
      assertThat(rows.counts()).isEqualTo(expected);
    }
  }

  /** Runs the per-batch sink alone over {@code n} new records of one partition. */
  private void runOnlyA(
      Fixtures.JdbcPerBatch totals,
      ExactlyOnceSink a,
      int partition,
      String tag,
      Map<String, Long> expected) {
    Map<String, Long> onlyA = new LinkedHashMap<>(expected);
    send(partition, tag, 10, onlyA);
    run(List.of(totals), List.of(a), onlyA);
    expected.putAll(onlyA);
  }

  /**
   * A new deployment whose later sink fails validation must not have fenced the running one: every
   * sink is validated before any writer epoch is taken.
   */
  @Test
  void aSinkThatFailsValidationLeavesTheRunningDeploymentUnfenced() {
    try (Fixtures.JdbcTransactional rows = new Fixtures.JdbcTransactional()) {
      ExactlyOnceSink running = rows.sink("running-" + System.nanoTime());
      ExactlyOnceSink broken =
          JdbcSink.<String>transactional("broken-" + System.nanoTime())
              .connection(rows.settings)
              .table("no_such_table")
              .columns("id")
              .values(List::of)
              .build();
      running.checkOutputs();
      try (OffsetStore store = running.openOffsetStore()) {
        store.validate();
        long epoch = store.takeWriterEpoch();
        store.storeStartOffsets(Map.of(new TopicPartition(topic, 0), 0L), epoch);

        JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
        try {
          assertThatThrownBy(
                  () ->
                      ExactlyOnce.directStream(
                          ssc, params(), List.of(topic), StartPosition.earliest(), running, broken))
              .isInstanceOf(SinkConfigurationException.class)
              .hasMessageContaining("no_such_table");
        } finally {
          ssc.stop(false, true);
        }

        assertThat(store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 5))))
            .extracting(PartitionCommit::outcome)
            .containsExactly(CommitOutcome.COMMITTED);
      }
    }
  }

  @Test
  void sparkCheckpointingIsRefusedBeforeTheStreamStarts() throws Exception {
    try (Fixtures.JdbcTransactional rows = new Fixtures.JdbcTransactional()) {
      JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
      try {
        ssc.checkpoint(Files.createTempDirectory("checkpoint").toString());
        assertThatThrownBy(
                () ->
                    ExactlyOnce.directStream(
                        ssc, params(), List.of(topic), rows.sink("cp-" + System.nanoTime())))
            .isInstanceOf(SinkConfigurationException.class)
            .hasMessageContaining("checkpoint")
            .hasMessageContaining("remove ssc.checkpoint(...)");
      } finally {
        ssc.stop(false, true);
      }
    }
  }

  @Test
  void concurrentJobsAboveOneAreRefusedBeforeTheStreamStarts() {
    try (Fixtures.JdbcTransactional rows = new Fixtures.JdbcTransactional()) {
      // The live conf: JobScheduler reads it when the streaming context starts.
      sc.sc().conf().set("spark.streaming.concurrentJobs", "2");
      JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
      try {
        assertThatThrownBy(
                () ->
                    ExactlyOnce.directStream(
                        ssc, params(), List.of(topic), rows.sink("cj-" + System.nanoTime())))
            .isInstanceOf(SinkConfigurationException.class)
            .hasMessageContaining("spark.streaming.concurrentJobs=2");
      } finally {
        ssc.stop(false, true);
        sc.sc().conf().remove("spark.streaming.concurrentJobs");
      }
    }
  }

  /**
   * Other streams of the application read the same configuration for the rest of its life: the
   * library must not change it (it once set allowNonConsecutiveOffsets for everybody). Its own
   * reader still steps over commit markers (TransactionalTopicIT). The same holds for the JVM's own
   * settings: {@code DriverManager}'s login timeout applies to every JDBC connection of the
   * application opened through it (the connection pools once set it to their own timeout).
   */
  @Test
  void theLibraryChangesNoSparkSettingOfTheApplicationNorOfTheJvm() throws Exception {
    Map<String, String> before = settings();
    int loginTimeout = java.sql.DriverManager.getLoginTimeout();
    // The application's own choice, which no pool of the library may replace.
    java.sql.DriverManager.setLoginTimeout(77);
    try (Fixtures.JdbcTransactional rows = new Fixtures.JdbcTransactional()) {
      Map<String, Long> expected = new LinkedHashMap<>();
      send(0, "settings", 5, expected);
      ExactlyOnceSink sink = rows.sink("settings-" + System.nanoTime());
      run(List.of(rows), List.of(sink), expected);
      assertThat(java.sql.DriverManager.getLoginTimeout())
          .as("DriverManager's login timeout, set by the application")
          .isEqualTo(77);
    } finally {
      java.sql.DriverManager.setLoginTimeout(loginTimeout);
    }
    assertThat(settings()).isEqualTo(before);
  }

  /**
   * Issue 19: the behaviour the unchanged settings map stands for. A plain Kafka direct stream the
   * application starts after the library's stream ran, in the same SparkContext, runs one Spark job
   * per batch: its output operation's. When the library set {@code
   * spark.streaming.kafka.allowNonConsecutiveOffsets=true} on the live conf, Spark's {@code
   * DirectKafkaInputDStream.compute} sized every batch of every plain stream with {@code
   * KafkaRDD.count()}, which for a "compacted" batch is a second Spark job reading it all. The
   * negative control sets that value itself and sees those jobs, so the count can see the leak.
   */
  @Test
  void aPlainDirectStreamAfterTheLibrarysRunsOneSparkJobPerBatch() {
    try (Fixtures.JdbcTransactional rows = new Fixtures.JdbcTransactional()) {
      Map<String, Long> expected = new LinkedHashMap<>();
      send(0, "library", 5, expected);
      run(List.of(rows), List.of(rows.sink("beside-plain-" + System.nanoTime())), expected);
    }

    StreamJobs plain = runPlainStream("plain");
    assertThat(plain.jobsNoOutputOperationStarted)
        .as(
            "Spark jobs of a plain direct stream that no output operation started (a batch sized"
                + " with KafkaRDD.count(): is spark.streaming.kafka.allowNonConsecutiveOffsets=true"
                + " on the application's conf?): %s",
            plain)
        .isZero();
    assertThat(plain.outputJobsPerBatch.values())
        .as("Spark jobs per batch of a plain direct stream with one output operation: %s", plain)
        .containsOnly(1L);

    // Negative control: the setting the library once leaked makes the count job appear.
    String key = "spark.streaming.kafka.allowNonConsecutiveOffsets";
    sc.sc().conf().set(key, "true");
    StreamJobs leaked;
    try {
      leaked = runPlainStream("leaked");
    } finally {
      sc.sc().conf().remove(key);
    }
    assertThat(leaked.jobsNoOutputOperationStarted)
        .as("the count jobs of a stream reading its batches as compacted: %s", leaked)
        .isGreaterThanOrEqualTo(leaked.outputJobsPerBatch.size());
  }

  /**
   * Runs a plain {@code KafkaUtils.createDirectStream} with one action per batch over a new topic
   * until three batches held records, stops it gracefully and returns the Spark jobs started while
   * it ran, per completed batch.
   */
  private StreamJobs runPlainStream(String tag) {
    String plainTopic = tag + "-" + System.nanoTime();
    kafka.createTopic(plainTopic, 2);
    Map<String, Object> params = new HashMap<>(params());
    params.put("group.id", plainTopic);
    params.put("auto.offset.reset", "earliest");
    params.put("enable.auto.commit", false);

    JobCounter counter = new JobCounter();
    sc.sc().addSparkListener(counter);
    try {
      JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
      try {
        ssc.addStreamingListener(counter.batches);
        KafkaUtils.<String, String>createDirectStream(
                ssc,
                LocationStrategies.PreferConsistent(),
                ConsumerStrategies.<String, String>Subscribe(List.of(plainTopic), params))
            .foreachRDD(rdd -> rdd.foreachPartition(records -> {}));
        ssc.start();
        for (int i = 0; i < 3; i++) {
          int before = i;
          Inputs.send(kafka, plainTopic, i % 2, tag + i, 10, null);
          await()
              .atMost(Duration.ofMinutes(2))
              .pollInterval(Duration.ofMillis(100))
              .until(() -> counter.batches.batchesWithRecords() > before);
        }
      } finally {
        // Gracefully: every batch generated (and sized) before the stop completes its output job.
        ssc.stop(false, true);
      }
      // Listener events arrive asynchronously, in order per queue: once a job started after the
      // stop is seen, every job of the stream has been seen.
      sc.setLocalProperty(JobCounter.MARKER, "true");
      try {
        sc.parallelize(List.of(1), 1).foreachPartition(records -> {});
      } finally {
        sc.setLocalProperty(JobCounter.MARKER, null);
      }
      await()
          .atMost(Duration.ofMinutes(1))
          .pollInterval(Duration.ofMillis(50))
          .until(() -> counter.markerSeen);
    } finally {
      sc.sc().removeSparkListener(counter);
    }
    return counter.result();
  }

  /** Spark jobs of one streaming context: output jobs per completed batch, and all others. */
  private static final class StreamJobs {
    final Map<Long, Long> outputJobsPerBatch;
    final long jobsNoOutputOperationStarted;

    StreamJobs(Map<Long, Long> outputJobsPerBatch, long jobsNoOutputOperationStarted) {
      this.outputJobsPerBatch = outputJobsPerBatch;
      this.jobsNoOutputOperationStarted = jobsNoOutputOperationStarted;
    }

    @Override
    public String toString() {
      long batches = outputJobsPerBatch.size();
      long all = jobsNoOutputOperationStarted;
      for (long n : outputJobsPerBatch.values()) {
        all += n;
      }
      return String.format(
          "%d completed batches, %d Spark jobs (%.1f per batch): output jobs per batch time %s,"
              + " %d jobs no output operation started",
          batches,
          all,
          batches == 0 ? 0.0 : (double) all / batches,
          outputJobsPerBatch,
          jobsNoOutputOperationStarted);
    }
  }

  /**
   * Counts the Spark jobs started after its creation, by the batch whose output operation started
   * them: Spark's JobScheduler sets {@code spark.streaming.internal.batchTime} on the jobs of an
   * output operation only, not on jobs that computing a batch's RDDs starts (JobGenerator's
   * thread), such as {@code KafkaRDD.count()}.
   */
  private static final class JobCounter extends SparkListener {
    static final String MARKER = "exactlyonce.test.afterStop";
    private static final String BATCH_TIME = "spark.streaming.internal.batchTime";

    private final long since = System.currentTimeMillis();
    private final Map<Long, Long> outputJobs = new ConcurrentHashMap<>();
    private final AtomicLong otherJobs = new AtomicLong();
    volatile boolean markerSeen;
    final Batches batches = new Batches(since);

    @Override
    public void onJobStart(SparkListenerJobStart start) {
      String marker = start.properties() == null ? null : start.properties().getProperty(MARKER);
      if (marker != null) {
        markerSeen = true;
        return;
      }
      // Jobs of an earlier streaming context were submitted before it stopped, before `since`.
      if (start.time() < since) {
        return;
      }
      String batchTime =
          start.properties() == null ? null : start.properties().getProperty(BATCH_TIME);
      if (batchTime == null) {
        otherJobs.incrementAndGet();
      } else {
        outputJobs.merge(Long.parseLong(batchTime), 1L, Long::sum);
      }
    }

    /** Output jobs of each completed batch (0 if none), and every job no output started. */
    StreamJobs result() {
      Map<Long, Long> perBatch = new TreeMap<>();
      for (long batch : batches.completed()) {
        perBatch.put(batch, outputJobs.getOrDefault(batch, 0L));
      }
      return new StreamJobs(perBatch, otherJobs.get());
    }
  }

  /** The completed batches of a streaming context, and how many held records. */
  private static final class Batches implements StreamingListener {
    private final long since;
    private final Map<Long, Long> records = new ConcurrentHashMap<>();

    Batches(long since) {
      this.since = since;
    }

    @Override
    public void onBatchCompleted(StreamingListenerBatchCompleted completed) {
      long time = completed.batchInfo().batchTime().milliseconds();
      if (time >= since) {
        records.put(time, completed.batchInfo().numRecords());
      }
    }

    long batchesWithRecords() {
      return records.values().stream().filter(n -> n > 0).count();
    }

    java.util.Set<Long> completed() {
      return new java.util.TreeSet<>(records.keySet());
    }
  }

  private static Map<String, String> settings() {
    Map<String, String> out = new HashMap<>();
    for (scala.Tuple2<String, String> kv : sc.getConf().getAll()) {
      out.put(kv._1(), kv._2());
    }
    // Spark's own bookkeeping of the running application, not settings anybody chose.
    out.keySet().removeIf(k -> k.startsWith("spark.app.") || k.startsWith("spark.driver."));
    return out;
  }

  // ---------------------------------------------------------------- helpers

  /** Runs one stream writing to every sink until each output holds every expected id. */
  private void run(
      List<SinkUnderTest> fixtures, List<ExactlyOnceSink> sinks, Map<String, Long> expected) {
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(
              ssc,
              params(),
              List.of(topic),
              StartPosition.earliest(),
              sinks.toArray(new ExactlyOnceSink[0]));
      for (int i = 0; i < sinks.size(); i++) {
        fixtures.get(i).wire(stream, sinks.get(i));
      }
      ssc.start();
      await()
          .atMost(Duration.ofMinutes(3))
          .pollInterval(Duration.ofMillis(250))
          .until(
              () ->
                  stream.failure() != null
                      || fixtures.stream()
                          .allMatch(f -> f.counts().keySet().containsAll(expected.keySet())));
      assertThat(stream.failure()).isNull();
    } finally {
      ssc.stop(false, true);
    }
  }

  private Map<String, Object> params() {
    return Inputs.params(kafka);
  }

  private void send(int partition, String tag, int n, Map<String, Long> expected) {
    Inputs.send(kafka, topic, partition, tag, n, expected);
  }
}
