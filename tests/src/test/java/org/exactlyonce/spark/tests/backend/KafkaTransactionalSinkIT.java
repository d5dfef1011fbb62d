package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.kafka.KafkaIdempotentSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.SourcePosition;
import org.exactlyonce.spark.kafka.SourcePositionDeduplicator;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Strategy K against a real broker: every output reaches a {@code read_committed} reader exactly
 * once whatever fails in between, checked by reading the whole output topic.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class KafkaTransactionalSinkIT {

  /** Two outputs per input record, so positions with index 1 are exercised too. */
  static final RecordMapper<String, String, String> TWO_OUTPUTS =
      r -> List.of(r.value() + "/a", r.value() + "/b");

  private final KafkaBroker kafka = TestServers.kafka();
  private final String outTopic = "k-out-" + System.nanoTime();

  @AfterEach
  void clearFaults() {
    FaultPoints.clear();
  }

  private boolean outTopicCreated;

  private KafkaSink.Builder<String, KafkaSink<String>> sink(String pipeline) {
    if (!outTopicCreated) {
      kafka.createTopic(outTopic, 2);
      outTopicCreated = true;
    }
    return KafkaSink.<String>transactional(pipeline)
        .bootstrapServers(kafka.bootstrapServers())
        .topic(outTopic)
        .key(ToBytes.utf8(s -> s))
        .value(ToBytes.utf8(s -> s))
        .apiTimeout(Duration.ofSeconds(10))
        .producerProperty("delivery.timeout.ms", "15000")
        .producerProperty("request.timeout.ms", "5000");
  }

  /** The outputs the input values must produce, sorted. */
  private static List<String> expected(List<String> inputs) {
    List<String> out = new ArrayList<>();
    for (String v : inputs) {
      out.add(v + "/a");
      out.add(v + "/b");
    }
    return out.stream().sorted().toList();
  }

  /** Values of {@code records}, sorted; and every record's header names its own source. */
  private static List<String> values(List<ConsumerRecord<String, String>> records) {
    for (ConsumerRecord<String, String> r : records) {
      SourcePosition p = SourcePosition.of(r.headers()).orElseThrow();
      assertThat(r.value()).endsWith(p.index() == 0 ? "/a" : "/b");
    }
    return records.stream().map(ConsumerRecord::value).sorted().toList();
  }

  private static List<String> produce(StreamHarness h, int perPartitionApprox) {
    List<String[]> kvs = new ArrayList<>();
    List<String> values = new ArrayList<>();
    for (int i = 0; i < perPartitionApprox * h.partitions; i++) {
      String v = "in-" + i;
      kvs.add(new String[] {v, v});
      values.add(v);
    }
    h.send(kvs);
    return values;
  }

  private boolean caughtUp(StreamHarness h, String group) {
    return KafkaOutput.groupOffsets(kafka, group).equals(h.endOffsets());
  }

  /**
   * Sends {@code n} more records, {@code more-0} to {@code more-<n-1>}, and adds them to inputs.
   */
  private static void sendMore(StreamHarness h, int n, List<String> inputs) {
    List<String[]> more = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      more.add(new String[] {"more-" + i, "more-" + i});
      inputs.add("more-" + i);
    }
    h.send(more);
  }

  /** Runs the two-output job on {@code sink} until it caught up; returns its failure, if any. */
  private Throwable runToEnd(StreamHarness h, KafkaSink<String> sink) {
    return h.run(
        sink,
        s -> ExactlyOnce.foreachRDD(s, TWO_OUTPUTS, sink),
        () -> caughtUp(h, sink.progressGroup()));
  }

  // (a)
  @Test
  @Order(1)
  void tasksThatFailHalfwayThroughSendingLeaveEveryOutputExactlyOnce() {
    try (StreamHarness h =
        new StreamHarness(
            "k-fail", 3, Map.of("spark.streaming.kafka.maxRatePerPartition", "400"))) {
      List<String> inputs = produce(h, 500);
      var failed = KafkaOutput.failSendsEvery(301, 3);
      KafkaSink<String> sink = sink("k-fail").build();

      Throwable failure =
          h.run(
              sink,
              s -> ExactlyOnce.foreachRDD(s, TWO_OUTPUTS, sink),
              () -> caughtUp(h, sink.progressGroup()));

      assertThat(failure).isNull();
      assertThat(failed.get()).as("injected failures").isEqualTo(3);
      List<ConsumerRecord<String, String>> all = KafkaOutput.uncommitted(kafka, outTopic);
      assertThat(all.size())
          .as("the aborted halves are on the wire, invisible to read_committed readers")
          .isGreaterThan(inputs.size() * 2);
      assertThat(values(KafkaOutput.committed(kafka, outTopic)))
          .containsExactlyElementsOf(expected(inputs));
    }
  }

  /** Synthetic records of {@code topic}-0 at offsets [0, n), as the direct stream would give. */
  private static List<ConsumerRecord<String, String>> records(String topic, int n) {
    List<ConsumerRecord<String, String>> rs = new ArrayList<>();
    for (int o = 0; o < n; o++) {
      rs.add(new ConsumerRecord<>(topic, 0, o, "in-" + o, "in-" + o));
    }
    return rs;
  }

  private static List<String> inputs(int n) {
    List<String> v = new ArrayList<>();
    for (int o = 0; o < n; o++) {
      v.add("in-" + o);
    }
    return v;
  }

  private static PartitionCommit commit(
      KafkaSink<String> sink,
      long epoch,
      SourceRange range,
      List<ConsumerRecord<String, String>> rs) {
    return sink.commit(epoch, range, new MappedPartition<>(rs.iterator(), TWO_OUTPUTS, range));
  }

  /** Opens the sink's store as a starting driver does; returns the new epoch. */
  private static long startDriver(KafkaSink<String> sink, SourceRange range) {
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      long epoch = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(range.topicPartition(), range.from()), epoch);
      return epoch;
    }
  }

  /** Runs {@code commit} in a thread named {@code name}. */
  private static CompletableFuture<PartitionCommit> inThread(
      String name, java.util.function.Supplier<PartitionCommit> commit) {
    CompletableFuture<PartitionCommit> f = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try {
                f.complete(commit.get());
              } catch (Throwable e) {
                f.completeExceptionally(e);
              }
            },
            name);
    t.start();
    return f;
  }

  private static Runnable pauseIn(String thread, CountDownLatch reached, CountDownLatch release) {
    return pauseIn(thread, 1, reached, release);
  }

  private static Runnable pauseIn(
      String thread, int atCall, CountDownLatch reached, CountDownLatch release) {
    AtomicInteger calls = new AtomicInteger();
    return () -> {
      if (Thread.currentThread().getName().equals(thread) && calls.incrementAndGet() == atCall) {
        reached.countDown();
        try {
          release.await(60, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    };
  }

  // (b)
  @Test
  @Order(2)
  void aZombieAttemptStillSendingIsFencedByItsRetry() throws Exception {
    String inTopic = "k-zombie-in-" + System.nanoTime();
    kafka.createTopic(inTopic, 1);
    KafkaSink<String> sink = sink("k-zombie").build();
    SourceRange range = SourceRange.of(inTopic, 0, 0, 200);
    long epoch = startDriver(sink, range);
    CountDownLatch halfSent = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    // The first attempt stalls after sending half its outputs (a slow executor, a GC pause).
    FaultPoints.set(
        org.exactlyonce.spark.kafka.internal.Outputs.AFTER_SEND,
        pauseIn("zombie", 200, halfSent, release));

    CompletableFuture<PartitionCommit> zombie =
        inThread("zombie", () -> commit(sink, epoch, range, records(inTopic, 200)));
    assertThat(halfSent.await(60, TimeUnit.SECONDS)).isTrue();
    // Spark gave up on it and runs the retry elsewhere, while the zombie is still alive.
    PartitionCommit retry = commit(sink, epoch, range, records(inTopic, 200));
    release.countDown();

    assertThat(retry.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    assertThatThrownBy(() -> zombie.get(60, TimeUnit.SECONDS))
        .hasCauseInstanceOf(ExactlyOnceException.class);
    assertThat(commit(sink, epoch, range, records(inTopic, 200)).outcome())
        .as("a third attempt finds the range committed")
        .isEqualTo(CommitOutcome.ALREADY_COMMITTED);
    assertThat(values(KafkaOutput.committed(kafka, outTopic)))
        .containsExactlyElementsOf(expected(inputs(200)));
    assertThat(KafkaOutput.uncommitted(kafka, outTopic)).hasSizeGreaterThan(400);
  }

  // (c)
  @Test
  @Order(3)
  void aDriverRestartBetweenSendingAndCommittingAbortsTheOpenTransaction() throws Exception {
    String inTopic = "k-restart-in-" + System.nanoTime();
    kafka.createTopic(inTopic, 1);
    KafkaSink<String> sink = sink("k-restart").build();
    SourceRange range = SourceRange.of(inTopic, 0, 0, 150);
    long oldEpoch = startDriver(sink, range);
    CountDownLatch sent = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    // The old driver's task sent everything and is about to commit when its driver dies.
    FaultPoints.set(
        org.exactlyonce.spark.kafka.internal.Outputs.BEFORE_COMMIT,
        pauseIn("old-driver-task", sent, release));
    CompletableFuture<PartitionCommit> old =
        inThread("old-driver-task", () -> commit(sink, oldEpoch, range, records(inTopic, 150)));
    assertThat(sent.await(60, TimeUnit.SECONDS)).isTrue();

    // The restarted driver takes a new epoch (aborting the open transaction) and replays.
    long newEpoch = startDriver(sink, range);
    assertThat(newEpoch).isGreaterThan(oldEpoch);
    PartitionCommit replay = commit(sink, newEpoch, range, records(inTopic, 150));
    release.countDown();

    assertThat(replay.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    assertThatThrownBy(() -> old.get(60, TimeUnit.SECONDS))
        .hasCauseInstanceOf(ExactlyOnceException.class);
    assertThat(commit(sink, oldEpoch, SourceRange.of(inTopic, 0, 150, 160), records(inTopic, 0)))
        .extracting(PartitionCommit::outcome)
        .as("the old driver is fenced for good")
        .isEqualTo(CommitOutcome.FENCED);
    assertThat(values(KafkaOutput.committed(kafka, outTopic)))
        .containsExactlyElementsOf(expected(inputs(150)));
  }

  @Test
  @Order(4)
  void aRestartedJobResumesFromTheProgressGroupWithNoSparkCheckpoint() {
    try (StreamHarness h = new StreamHarness("k-resume", 2)) {
      List<String> inputs = new ArrayList<>(produce(h, 100));
      KafkaSink<String> sink = sink("k-resume").build();
      assertThat(runToEnd(h, sink)).isNull();
      sendMore(h, 200, inputs);
      assertThat(runToEnd(h, sink)).isNull();
      assertThat(values(KafkaOutput.committed(kafka, outTopic)))
          .containsExactlyElementsOf(expected(inputs));
    }
  }

  @Test
  @Order(5)
  void configurationTheBrokerWouldRejectIsRefusedBeforeTheStreamStarts() {
    try (StreamHarness h = new StreamHarness("k-config", 1)) {
      JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.seconds(1));
      try {
        KafkaSink<String> tooLong =
            sink("k-config").transactionTimeout(Duration.ofMinutes(20)).build();
        assertThatThrownBy(
                () -> ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), tooLong))
            .isInstanceOf(SinkConfigurationException.class)
            .hasMessageContaining("transaction.max.timeout.ms")
            .hasMessageContaining("lower transactionTimeout");

        KafkaSink<String> noTopic =
            KafkaSink.<String>transactional("k-config")
                .bootstrapServers(kafka.bootstrapServers())
                .topic("no-such-topic-" + System.nanoTime())
                .value(ToBytes.utf8(s -> s))
                .build();
        assertThatThrownBy(
                () -> ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), noTopic))
            .isInstanceOf(SinkConfigurationException.class)
            .hasMessageContaining("does not exist");

        KafkaSink<String> shared = sink("k-config").progressGroup("k-config-shared").build();
        Map<String, Object> params = h.kafkaParams();
        params.put("group.id", "k-config-shared");
        assertThatThrownBy(() -> ExactlyOnce.directStream(ssc, params, List.of(h.topic), shared))
            .isInstanceOf(SinkConfigurationException.class)
            .hasMessageContaining("progress group");

        // Another application consumes with the sink's progress group: it could overwrite it.
        Map<String, Object> member = h.kafkaParams();
        member.put("group.id", "k-config-busy");
        try (KafkaConsumer<String, String> c =
            new KafkaConsumer<>(member, new StringDeserializer(), new StringDeserializer())) {
          c.subscribe(List.of(h.topic));
          long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
          while (c.assignment().isEmpty() && System.nanoTime() < deadline) {
            c.poll(Duration.ofMillis(100));
          }
          KafkaSink<String> busy = sink("k-config").progressGroup("k-config-busy").build();
          assertThatThrownBy(
                  () -> ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), busy))
              .isInstanceOf(SinkConfigurationException.class)
              .hasMessageContaining("active members");
        }
      } finally {
        ssc.stop(false, false);
      }
    }
  }

  @Test
  @Order(6)
  void withoutTransactionsReplaysReachTheWireAndTheDeduplicatorRemovesThem() {
    try (StreamHarness h =
        new StreamHarness(
            "k-idem", 2, Map.of("spark.streaming.kafka.maxRatePerPartition", "400"))) {
      List<String> inputs = produce(h, 400);
      var failed = KafkaOutput.failSendsEvery(250, 2);
      kafka.createTopic(outTopic, 2);
      KafkaIdempotentSink<String> sink =
          KafkaSink.<String>idempotent("k-idem")
              .bootstrapServers(kafka.bootstrapServers())
              .topic(outTopic)
              .key(ToBytes.utf8(s -> s))
              .value(ToBytes.utf8(s -> s))
              .build();

      assertThat(
              h.run(
                  sink,
                  s -> ExactlyOnce.foreachRDD(s, TWO_OUTPUTS, sink),
                  () -> caughtUp(h, sink.progressGroup())))
          .isNull();

      List<ConsumerRecord<String, String>> wire = KafkaOutput.uncommitted(kafka, outTopic);
      assertThat(wire.size()).as("replayed outputs on the wire").isGreaterThan(inputs.size() * 2);
      SourcePositionDeduplicator dedupe = new SourcePositionDeduplicator();
      List<ConsumerRecord<String, String>> kept = dedupe.filter(wire);
      assertThat(values(kept)).containsExactlyElementsOf(expected(inputs));
      assertThat(dedupe.dropped()).isEqualTo(wire.size() - inputs.size() * 2L);
      assertThat(dedupe.tracked()).isLessThanOrEqualTo(2 * h.partitions);
    }
  }

  private void deleteGroup(String group) throws Exception {
    try (var admin = kafka.admin()) {
      admin.deleteConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS);
    }
    assertThat(KafkaOutput.groupOffsets(kafka, group)).isEmpty();
  }

  @Test
  @Order(7)
  void progressLostWithTheGroupsOffsetsIsRecoveredFromTheOutputsSourcePositions() throws Exception {
    try (StreamHarness h = new StreamHarness("k-recover", 2)) {
      List<String> inputs = new ArrayList<>(produce(h, 100));
      KafkaSink<String> sink = sink("k-recover").build();
      assertThat(runToEnd(h, sink)).isNull();
      Map<TopicPartition, Long> before = KafkaOutput.groupOffsets(kafka, sink.progressGroup());
      // What offsets.retention.minutes does to a group that stays empty for too long.
      deleteGroup(sink.progressGroup());
      sendMore(h, 150, inputs);

      JavaStreamingContext probe = new JavaStreamingContext(h.sc, Durations.seconds(1));
      try {
        ExactlyOnce.directStream(probe, h.kafkaParams(), List.of(h.topic), sink);
        assertThat(KafkaOutput.groupOffsets(kafka, sink.progressGroup()))
            .as("recovered before the first batch")
            .isEqualTo(before);
      } finally {
        probe.stop(false, false);
      }
      assertThat(runToEnd(h, sink)).isNull();
      assertThat(values(KafkaOutput.committed(kafka, outTopic)))
          .containsExactlyElementsOf(expected(inputs));
    }
  }

  @Test
  @Order(8)
  void lostProgressThatTheOutputCannotRestoreStopsTheStartAndSaysHow() throws Exception {
    try (StreamHarness h = new StreamHarness("k-norecover", 2)) {
      produce(h, 50);
      // A scan of the last few output records only: it cannot prove where a partition got to.
      KafkaSink<String> sink = sink("k-norecover").recoveryScanDepth(5).build();
      // Partition 1's records produce no output: the output cannot say where it got to.
      RecordMapper<String, String, String> onlyPartition0 =
          r -> r.partition() == 0 ? List.of(r.value() + "/a") : List.of();
      assertThat(
              h.run(
                  sink,
                  s -> ExactlyOnce.foreachRDD(s, onlyPartition0, sink),
                  () -> caughtUp(h, sink.progressGroup())))
          .isNull();
      deleteGroup(sink.progressGroup());
      JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.seconds(1));
      try {
        assertThatThrownBy(
                () -> ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), sink))
            .isInstanceOf(org.exactlyonce.spark.OffsetMismatchException.class)
            .hasMessageContaining(h.topic + "-1")
            .hasMessageContaining("ExactlyOnce.rewind(");
      } finally {
        ssc.stop(false, false);
      }
    }
  }

  private void deleteOffset(String group, TopicPartition tp) throws Exception {
    try (var admin = kafka.admin()) {
      admin.deleteConsumerGroupOffsets(group, Set.of(tp)).all().get(30, TimeUnit.SECONDS);
    }
    assertThat(KafkaOutput.groupOffsets(kafka, group)).doesNotContainKey(tp);
  }

  @Test
  @Order(9)
  void anIdlePartitionWhoseOffsetExpiredResumesWhereItsOutputEndsNotFromTheStart()
      throws Exception {
    try (StreamHarness h = new StreamHarness("k-expired", 2)) {
      List<String> inputs = new ArrayList<>(produce(h, 100));
      KafkaSink<String> sink = sink("k-expired").build();
      assertThat(runToEnd(h, sink)).isNull();
      // What offsets.retention.minutes does to the offset of a partition that received nothing
      // for that long, while the other partition's stayed.
      deleteOffset(sink.progressGroup(), new TopicPartition(h.topic, 1));
      sendMore(h, 150, inputs);
      assertThat(runToEnd(h, sink)).isNull();
      assertThat(values(KafkaOutput.committed(kafka, outTopic)))
          .as("partition 1 resumed where its outputs end, not from its earliest offset")
          .containsExactlyElementsOf(expected(inputs));
    }
  }

  @Test
  @Order(10)
  void anExpiredOffsetTheOutputCannotProveStopsTheStartAndNamesThePartition() throws Exception {
    try (StreamHarness h = new StreamHarness("k-unproven", 2)) {
      produce(h, 50);
      KafkaSink<String> sink = sink("k-unproven").recoveryScanDepth(5).build();
      assertThat(runToEnd(h, sink)).isNull();
      Map<TopicPartition, Long> before = KafkaOutput.groupOffsets(kafka, sink.progressGroup());
      deleteOffset(sink.progressGroup(), new TopicPartition(h.topic, 1));
      JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.seconds(1));
      try {
        assertThatThrownBy(
                () -> ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), sink))
            .isInstanceOf(org.exactlyonce.spark.OffsetMismatchException.class)
            .hasMessageContaining(h.topic + "-1")
            .hasMessageContaining("recoveryScanDepth")
            .hasMessageContaining("ExactlyOnce.rewind(");
      } finally {
        ssc.stop(false, false);
      }
      before.remove(new TopicPartition(h.topic, 1));
      assertThat(KafkaOutput.groupOffsets(kafka, sink.progressGroup()))
          .as("nothing stored for the partition that could not be proven")
          .isEqualTo(before);
    }
  }

  /**
   * Every tenth input has an output too large for the producer's {@code max.request.size}: it goes
   * to the dead-letter topic (without its value) in the same transaction, every other output to the
   * output topic, each exactly once, and a replay of the range writes nothing. Without the routing
   * Kafka refuses the record on every attempt and the pipeline can only stop.
   */
  @Test
  @Order(11)
  void anOutputTooLargeForTheProducerGoesToTheDeadLettersOnce() throws Exception {
    String inTopic = "k-large-in-" + System.nanoTime();
    String dlt = "k-large-dlt-" + System.nanoTime();
    kafka.createTopic(inTopic, 1);
    kafka.createTopic(dlt, 1);
    KafkaSink<String> sink =
        sink("k-large").producerProperty("max.request.size", "4000").deadLetterTopic(dlt).build();
    RecordMapper<String, String, String> sometimesLarge =
        r -> List.of(r.offset() % 10 == 3 ? "x".repeat(5000) : r.value() + "/a");
    SourceRange range = SourceRange.of(inTopic, 0, 0, 50);
    long epoch = startDriver(sink, range);
    for (int attempt = 0; attempt < 2; attempt++) {
      PartitionCommit c =
          sink.commit(
              epoch,
              range,
              new MappedPartition<>(records(inTopic, 50).iterator(), sometimesLarge, range, true));
      assertThat(c.outcome())
          .isEqualTo(attempt == 0 ? CommitOutcome.COMMITTED : CommitOutcome.ALREADY_COMMITTED);
    }
    List<String> written =
        KafkaOutput.committed(kafka, outTopic).stream()
            .filter(r -> SourcePosition.of(r.headers()).orElseThrow().topic().equals(inTopic))
            .map(ConsumerRecord::value)
            .sorted()
            .toList();
    List<String> expected = new ArrayList<>();
    List<Long> large = new ArrayList<>();
    for (int o = 0; o < 50; o++) {
      if (o % 10 == 3) {
        large.add((long) o);
      } else {
        expected.add("in-" + o + "/a");
      }
    }
    assertThat(written).containsExactlyElementsOf(expected.stream().sorted().toList());
    List<ConsumerRecord<String, String>> letters = KafkaOutput.committed(kafka, dlt);
    assertThat(letters.stream().map(r -> SourcePosition.of(r.headers()).orElseThrow().offset()))
        .containsExactlyElementsOf(large);
    assertThat(letters).allSatisfy(r -> assertThat(r.value()).isNull());
    assertThat(new String(letters.get(0).headers().lastHeader("eos.error").value()))
        .contains("max.request.size");
  }

  // (d) last: it restarts the broker every other test of this JVM shares.
  @Test
  @Order(100)
  void aBrokerRestartMidStreamLeavesEveryOutputExactlyOnce() throws Exception {
    try (StreamHarness h =
        new StreamHarness(
            "k-broker", 3, Map.of("spark.streaming.kafka.maxRatePerPartition", "200"))) {
      List<String> inputs = produce(h, 600);
      KafkaSink<String> sink = sink("k-broker").build();
      Map<TopicPartition, Long> end = h.endOffsets();
      long total = end.values().stream().mapToLong(Long::longValue).sum();
      java.util.concurrent.atomic.AtomicBoolean killed =
          new java.util.concurrent.atomic.AtomicBoolean();
      Thread killer =
          new Thread(
              () -> {
                // A third of the input committed: the broker dies mid-stream. If that never
                // happens, nothing is killed and the assertion on `killed` below says so.
                await("a third of the input committed")
                    .atMost(Duration.ofSeconds(120))
                    .until(
                        () ->
                            KafkaOutput.groupOffsets(kafka, sink.progressGroup()).values().stream()
                                    .mapToLong(Long::longValue)
                                    .sum()
                                > total / 3);
                kafka.kill();
                killed.set(true);
                kafka.restart();
              },
              "broker-killer");
      killer.start();
      int runs = 0;
      Throwable failure;
      do {
        runs++;
        failure =
            h.run(
                sink,
                s -> ExactlyOnce.foreachRDD(s, TWO_OUTPUTS, sink),
                () -> !killer.isAlive() && caughtUp(h, sink.progressGroup()));
        killer.join(TimeUnit.SECONDS.toMillis(90));
      } while (failure != null && runs < 5);
      assertThat(killed).as("the broker was killed mid-stream").isTrue();
      assertThat(failure).as("after %d runs", runs).isNull();
      assertThat(values(KafkaOutput.committed(kafka, outTopic)))
          .containsExactlyElementsOf(expected(inputs));
    }
  }
}
