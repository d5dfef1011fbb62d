package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The writer epochs and transactional ids of the Kafka transactional sink against a real broker:
 * two drivers starting together never share an epoch (exactly one of them ends up current, the
 * other's commits are {@code FENCED}); two pipelines whose names only differ in where the dashes
 * are never share a transactional id; and a producer of the ids of the library's earlier versions
 * is fenced when a driver of this version starts.
 */
class KafkaWriterEpochIT {
  private static final RecordMapper<String, String, String> ONE_OUTPUT =
      r -> List.of(r.value() + "/out");

  /** The transactional id of a source partition in library versions before issue 17. */
  private static String legacyTransactionalId(String pipeline, TopicPartition tp) {
    return "eos-" + pipeline + "-" + tp.topic() + "-" + tp.partition();
  }

  private final KafkaBroker kafka = TestServers.kafka();
  private final String suffix = Long.toString(System.nanoTime());
  private final String outTopic = "epoch-out-" + suffix;

  @AfterEach
  void clearFaults() {
    FaultPoints.clear();
  }

  private KafkaSink<String> sink(String pipeline) {
    return sink(pipeline, b -> {});
  }

  /** The test's sink with settings of one test added by {@code customiser}. */
  private KafkaSink<String> sink(
      String pipeline, Consumer<KafkaSink.Builder<String, KafkaSink<String>>> customiser) {
    KafkaSink.Builder<String, KafkaSink<String>> b =
        KafkaSink.<String>transactional(pipeline)
            .bootstrapServers(kafka.bootstrapServers())
            .topic(outTopic)
            .value(ToBytes.utf8(s -> s))
            .apiTimeout(Duration.ofSeconds(20));
    customiser.accept(b);
    return b.build();
  }

  /**
   * A transactional producer under {@code transactionalId} of the test's own, as a task of another
   * attempt or of the library's earlier version holds one; close it.
   */
  private KafkaProducer<String, String> zombieProducer(String transactionalId) {
    Map<String, Object> p = new java.util.HashMap<>();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
    return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
  }

  private String inputTopic(String name) {
    kafka.createTopic(name, 1);
    return name;
  }

  private static List<ConsumerRecord<String, String>> records(SourceRange r) {
    List<ConsumerRecord<String, String>> rs = new ArrayList<>();
    for (long o = r.from(); o < r.until(); o++) {
      rs.add(new ConsumerRecord<>(r.topic(), r.partition(), o, null, r.topic() + "@" + o));
    }
    return rs;
  }

  private static PartitionCommit commit(KafkaSink<String> sink, long epoch, SourceRange r) {
    return sink.commit(epoch, r, new MappedPartition<>(records(r).iterator(), ONE_OUTPUT, r));
  }

  /** What a starting driver does with the sink's store; returns its epoch. */
  private static long startDriver(KafkaSink<String> sink, TopicPartition tp, long from) {
    try (OffsetStore store = sink.openOffsetStore()) {
      long epoch = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(tp, from), epoch);
      return epoch;
    }
  }

  private static long takeEpoch(KafkaSink<String> sink) {
    try (OffsetStore store = sink.openOffsetStore()) {
      return store.takeWriterEpoch();
    }
  }

  private static <T> CompletableFuture<T> inThread(String name, Supplier<T> body) {
    CompletableFuture<T> f = new CompletableFuture<>();
    new Thread(
            () -> {
              try {
                f.complete(body.get());
              } catch (Throwable e) {
                f.completeExceptionally(e);
              }
            },
            name)
        .start();
    return f;
  }

  /** Pauses thread {@code thread} the first time it reaches the point, until released. */
  private static Runnable pauseOnceIn(
      String thread, CountDownLatch reached, CountDownLatch release) {
    java.util.concurrent.atomic.AtomicBoolean paused =
        new java.util.concurrent.atomic.AtomicBoolean();
    return () -> {
      if (Thread.currentThread().getName().equals(thread) && paused.compareAndSet(false, true)) {
        reached.countDown();
        try {
          release.await(120, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    };
  }

  /**
   * The race of issue 17 item 8, made deterministic: driver A reads the current epoch and stalls (a
   * GC pause, a slow network) before it stores the next one; driver B starts completely in the
   * meantime. Without a compare-and-set both computed the same "next" epoch and both believed they
   * were current. Here one of them must end with a newer epoch, and the other's commits are fenced.
   */
  @Test
  void twoDriversInterleavedBetweenReadingAndStoringTheEpochGetDistinctEpochs() throws Exception {
    KafkaSink<String> sink = sink("epoch-race-" + suffix);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-race-in-" + suffix), 0);
    startDriver(sink, tp, 0);

    CountDownLatch aRead = new CountDownLatch(1);
    CountDownLatch releaseA = new CountDownLatch(1);
    FaultPoints.set(
        org.exactlyonce.spark.kafka.internal.ProgressStore.EPOCH_READ,
        pauseOnceIn("driver-a", aRead, releaseA));
    CompletableFuture<Long> a = inThread("driver-a", () -> takeEpoch(sink));
    assertThat(aRead.await(120, TimeUnit.SECONDS)).as("driver A read the epoch").isTrue();
    long b = takeEpoch(sink);
    releaseA.countDown();
    long epochA = a.get(120, TimeUnit.SECONDS);

    assertThat(epochA).as("driver A's epoch vs driver B's (%d)", b).isNotEqualTo(b);
    long older = Math.min(epochA, b);
    long newer = Math.max(epochA, b);
    SourceRange range = SourceRange.of(tp.topic(), 0, 0, 10);
    assertThat(commit(sink, older, range).outcome())
        .as("a commit of the driver that lost the race (epoch %d)", older)
        .isEqualTo(CommitOutcome.FENCED);
    assertThat(commit(sink, newer, range).outcome())
        .as("a commit of the driver that won (epoch %d)", newer)
        .isEqualTo(CommitOutcome.COMMITTED);
  }

  /**
   * The same race for a pipeline that has stored nothing yet: two drivers that take an epoch before
   * either stored a start offset: without a stored epoch both took epoch 1. The older one is fenced
   * as soon as it tries to store its start offsets.
   */
  @Test
  void twoDriversOfANewPipelineGetDistinctEpochsAndTheOlderIsFenced() {
    KafkaSink<String> sink = sink("epoch-new-" + suffix);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-new-in-" + suffix), 0);

    long first;
    long second;
    try (OffsetStore a = sink.openOffsetStore();
        OffsetStore b = sink.openOffsetStore()) {
      first = a.takeWriterEpoch();
      second = b.takeWriterEpoch();
      assertThat(second).as("the second driver's epoch").isGreaterThan(first);
      assertThatThrownBy(() -> a.storeStartOffsets(Map.of(tp, 0L), first))
          .as("the older driver storing its start offsets")
          .isInstanceOf(WriterFencedException.class)
          .hasMessageContaining("epoch-new-" + suffix)
          .hasMessageContaining("fenced by epoch " + second);
      b.storeStartOffsets(Map.of(tp, 0L), second);
    }
    SourceRange range = SourceRange.of(tp.topic(), 0, 0, 10);
    assertThat(commit(sink, first, range).outcome()).isEqualTo(CommitOutcome.FENCED);
    assertThat(commit(sink, second, range).outcome()).isEqualTo(CommitOutcome.COMMITTED);
  }

  /**
   * Drivers released together by a latch, many times over: every epoch is taken once, and of each
   * pair the newer one starts (the older one may start too, or already be refused while it stamps
   * its epoch on the partitions). This passes by construction with the compare-and-set; before it,
   * it failed only when the threads happened to interleave (the test above makes that interleaving
   * certain).
   */
  @Test
  void driversStartingTogetherNeverShareAnEpoch() throws Exception {
    KafkaSink<String> sink = sink("epoch-together-" + suffix);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-together-in-" + suffix), 0);
    startDriver(sink, tp, 0);
    List<Long> started = new ArrayList<>();
    int refused = 0;
    for (int round = 0; round < 5; round++) {
      CountDownLatch start = new CountDownLatch(1);
      List<CompletableFuture<Long>> drivers = new ArrayList<>();
      for (int d = 0; d < 2; d++) {
        drivers.add(
            inThread(
                "driver-" + round + "-" + d,
                () -> {
                  try {
                    start.await();
                  } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                  }
                  return takeEpoch(sink);
                }));
      }
      start.countDown();
      for (CompletableFuture<Long> f : drivers) {
        try {
          started.add(f.get(120, TimeUnit.SECONDS));
        } catch (java.util.concurrent.ExecutionException e) {
          assertThat(e.getCause())
              .as("a driver that did not start")
              .isInstanceOf(WriterFencedException.class);
          refused++;
        }
      }
    }
    assertThat(new TreeSet<>(started)).as("epochs taken: %s", started).hasSize(started.size());
    assertThat(started.size() + refused).isEqualTo(10);
    assertThat(started.size()).as("a driver of every round started").isGreaterThanOrEqualTo(5);
    long newest = started.stream().mapToLong(Long::longValue).max().orElseThrow();
    SourceRange range = SourceRange.of(tp.topic(), 0, 0, 10);
    for (long e : started) {
      if (e != newest) {
        assertThat(commit(sink, e, range).outcome())
            .as("epoch %d", e)
            .isEqualTo(CommitOutcome.FENCED);
      }
    }
    assertThat(commit(sink, newest, range).outcome()).isEqualTo(CommitOutcome.COMMITTED);
  }

  /**
   * Issue 17 item 9: pipeline {@code X-b} reading topic {@code c} and pipeline {@code X} reading
   * topic {@code b-c} had the same transactional id {@code eos-X-b-c-0}, so each one's task fenced
   * the other's open transaction.
   */
  @Test
  void pipelinesWhoseIdAndTopicJoinToTheSameTextDoNotFenceEachOther() throws Exception {
    String base = "dash" + suffix;
    KafkaSink<String> first = sink(base + "-b");
    KafkaSink<String> second = sink(base);
    kafka.createTopic(outTopic, 1);
    TopicPartition c = new TopicPartition(inputTopic("c" + suffix), 0);
    TopicPartition bc = new TopicPartition(inputTopic("b-c" + suffix), 0);
    // Named so that the legacy ids collide: "eos-<base>-b-c<suffix>-0" for both.
    assertThat(legacyTransactionalId(base + "-b", new TopicPartition("c" + suffix, 0)))
        .isEqualTo(legacyTransactionalId(base, new TopicPartition("b-c" + suffix, 0)));
    long firstEpoch = startDriver(first, c, 0);
    long secondEpoch = startDriver(second, bc, 0);

    CountDownLatch beforeCommit = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    // The first pipeline's task has sent its outputs and is about to commit...
    FaultPoints.set(
        org.exactlyonce.spark.kafka.internal.Outputs.BEFORE_COMMIT,
        pauseOnceIn("first-pipeline-task", beforeCommit, release));
    SourceRange firstRange = SourceRange.of(c.topic(), 0, 0, 20);
    CompletableFuture<PartitionCommit> firstTask =
        inThread("first-pipeline-task", () -> commit(first, firstEpoch, firstRange));
    assertThat(beforeCommit.await(120, TimeUnit.SECONDS)).isTrue();
    // ...when the other pipeline's task starts its producer and commits.
    PartitionCommit secondCommit =
        commit(second, secondEpoch, SourceRange.of(bc.topic(), 0, 0, 30));
    release.countDown();

    assertThat(secondCommit.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(firstTask.get(120, TimeUnit.SECONDS).outcome())
        .as("the first pipeline's commit, while the second one committed")
        .isEqualTo(CommitOutcome.COMMITTED);
    assertThat(KafkaOutput.committed(kafka, outTopic)).hasSize(50);
  }

  /**
   * Upgrading from a version with the old transactional ids: a task of the old version, still in
   * its transaction under the old id when a driver of this version starts, is fenced and its
   * outputs aborted; its retry reads the newer epoch and stops.
   */
  @Test
  void aTaskOfTheOldVersionUnderItsOldTransactionalIdIsFencedWhenANewDriverStarts() {
    String pipeline = "epoch-upgrade-" + suffix;
    KafkaSink<String> sink = sink(pipeline);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-upgrade-in-" + suffix), 0);
    long oldEpoch = startDriver(sink, tp, 0);

    // What a task of the earlier version does: its producer under the old id, in a transaction
    // that holds outputs and the progress offset, not yet committed.
    try (KafkaProducer<String, String> zombie =
        zombieProducer(legacyTransactionalId(pipeline, tp))) {
      zombie.initTransactions();
      zombie.beginTransaction();
      zombie.send(new ProducerRecord<>(outTopic, "from-the-old-version"));
      zombie.sendOffsetsToTransaction(
          Map.of(tp, new OffsetAndMetadata(10, "eos:epoch=" + oldEpoch)),
          new ConsumerGroupMetadata(sink.progressGroup()));
      zombie.flush();

      long newEpoch = startDriver(sink, tp, 0);

      assertThat(newEpoch).isGreaterThan(oldEpoch);
      assertThatThrownBy(zombie::commitTransaction)
          .as("the old version's transaction after a new driver started")
          .isInstanceOf(KafkaException.class);
    }
    assertThat(KafkaOutput.committed(kafka, outTopic)).isEmpty();
    assertThat(KafkaOutput.groupOffsets(kafka, sink.progressGroup())).containsEntry(tp, 0L);
    try (OffsetStore store = sink.openOffsetStore()) {
      assertThat(store.storedOffsets()).containsEntry(tp, 0L);
    }
    assertThat(commit(sink, oldEpoch, SourceRange.of(tp.topic(), 0, 0, 10)).outcome())
        .as("the old driver's retry")
        .isEqualTo(CommitOutcome.FENCED);
  }

  /**
   * The narrow window of a rolling upgrade: a task of the old version starts under its old id and
   * commits while the new driver stamps that partition, between the stamp's read and its write, so
   * the stamp puts back the older offset. The driver sees that the old id was taken meanwhile,
   * finds the task's outputs past the stored offset, and refuses to start instead of writing them
   * again.
   */
  @Test
  void anOldVersionCommitOverwrittenDuringTheTakeOverStopsTheStartAndSaysHow() {
    String pipeline = "epoch-overwrite-" + suffix;
    KafkaSink<String> sink = sink(pipeline);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-overwrite-in-" + suffix), 0);
    long oldEpoch = startDriver(sink, tp, 0);
    java.util.concurrent.atomic.AtomicBoolean committed =
        new java.util.concurrent.atomic.AtomicBoolean();
    FaultPoints.set(
        org.exactlyonce.spark.kafka.internal.ProgressStore.STAMP_READ,
        () -> {
          if (committed.compareAndSet(false, true)) {
            commitAsTheOldVersion(pipeline, sink.progressGroup(), tp, 10, oldEpoch);
          }
        });

    assertThatThrownBy(() -> takeEpoch(sink))
        .isInstanceOf(org.exactlyonce.spark.OffsetMismatchException.class)
        .hasMessageContaining(legacyTransactionalId(pipeline, tp))
        .hasMessageContaining("stored offset is 0")
        .hasMessageContaining("ExactlyOnce.rewind(")
        .hasMessageContaining("0), 10L)");
    assertThat(committed).isTrue();
  }

  /** What a task of the old version commits for {@code [until - 1, until)} of {@code tp}. */
  private void commitAsTheOldVersion(
      String pipeline, String group, TopicPartition tp, long until, long epoch) {
    try (KafkaProducer<String, String> task = zombieProducer(legacyTransactionalId(pipeline, tp))) {
      task.initTransactions();
      task.beginTransaction();
      ProducerRecord<String, String> out = new ProducerRecord<>(outTopic, "old-version-output");
      out.headers()
          .add(
              org.exactlyonce.spark.kafka.SourcePosition.HEADER,
              new org.exactlyonce.spark.kafka.SourcePosition(
                      tp.topic(), tp.partition(), until - 1, 0)
                  .toBytes());
      out.headers()
          .add(
              org.exactlyonce.spark.kafka.SourcePosition.PIPELINE_HEADER,
              pipeline.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      task.send(out);
      task.sendOffsetsToTransaction(
          Map.of(tp, new OffsetAndMetadata(until, "eos:epoch=" + epoch)),
          new ConsumerGroupMetadata(group));
      task.commitTransaction();
    }
  }

  /** The transactional id this version gives source partition {@code tp} of {@code pipeline}. */
  private static String transactionalId(String pipeline, TopicPartition tp) {
    return "eos-" + pipeline + "-:" + tp.topic() + ":" + tp.partition();
  }

  /**
   * Issue 18 item 10: a newer attempt of the next range took the partition's transactional id and
   * hangs inside its transaction, holding the progress offset. The retry, with this JVM's idle (now
   * fenced) producer, used to wait on the offset until the read timed out; it now takes the id over
   * with a new producer, whose initTransactions aborts the hung transaction, and commits.
   */
  @Test
  void aRetryFindingItsOffsetHeldByAHungNewerAttemptTakesTheIdOverInsteadOfWaiting() {
    String pipeline = "epoch-hung-" + suffix;
    KafkaSink<String> sink = sink(pipeline);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-hung-in-" + suffix), 0);
    long epoch = startDriver(sink, tp, 0);
    assertThat(commit(sink, epoch, SourceRange.of(tp.topic(), 0, 0, 10)).outcome())
        .isEqualTo(CommitOutcome.COMMITTED); // leaves this JVM an idle producer of the id

    try (KafkaProducer<String, String> hung = zombieProducer(transactionalId(pipeline, tp))) {
      hung.initTransactions();
      hung.beginTransaction();
      hung.send(new ProducerRecord<>(outTopic, "from-the-hung-attempt"));
      hung.sendOffsetsToTransaction(
          Map.of(tp, new OffsetAndMetadata(20, "eos:epoch=" + epoch)),
          new ConsumerGroupMetadata(sink.progressGroup()));
      hung.flush();

      assertThat(commit(sink, epoch, SourceRange.of(tp.topic(), 0, 10, 20)).outcome())
          .as("the retry of the range the hung attempt holds")
          .isEqualTo(CommitOutcome.COMMITTED);
    }
    List<String> expected = new ArrayList<>();
    for (long o = 0; o < 20; o++) {
      expected.add(tp.topic() + "@" + o + "/out");
    }
    assertThat(KafkaOutput.committed(kafka, outTopic))
        .extracting(ConsumerRecord::value)
        .containsExactlyElementsOf(expected);
    assertThat(KafkaOutput.groupOffsets(kafka, sink.progressGroup())).containsEntry(tp, 20L);
  }

  /**
   * Issue 18 item 10: one JVM kept an idle transactional producer (a sender thread and buffers) for
   * every source partition it ever wrote, for its whole life. The idle producers of a pipeline are
   * now bounded ({@code idleProducers(max, evictAfter)}); the least recently used are closed.
   */
  @Test
  void aJvmKeepsAtMostTheConfiguredNumberOfIdleProducersOfAPipeline() {
    String pipeline = "epoch-pool-" + suffix;
    KafkaSink<String> sink = sink(pipeline, b -> b.idleProducers(2, Duration.ofMinutes(10)));
    kafka.createTopic(outTopic, 1);
    String in = "epoch-pool-in-" + suffix;
    kafka.createTopic(in, 5);
    Map<TopicPartition, Long> starts = new java.util.HashMap<>();
    for (int partition = 0; partition < 5; partition++) {
      starts.put(new TopicPartition(in, partition), 0L);
    }
    long epoch;
    try (OffsetStore store = sink.openOffsetStore()) {
      epoch = store.takeWriterEpoch();
      store.storeStartOffsets(starts, epoch);
    }
    for (int partition = 0; partition < 5; partition++) {
      assertThat(commit(sink, epoch, SourceRange.of(in, partition, 0, 3)).outcome())
          .isEqualTo(CommitOutcome.COMMITTED);
    }

    String prefix = "eos-" + pipeline + "-:";
    org.awaitility.Awaitility.await("at most 2 producer threads of " + prefix)
        .atMost(Duration.ofSeconds(60))
        .untilAsserted(
            () ->
                assertThat(
                        Thread.getAllStackTraces().keySet().stream()
                            .map(Thread::getName)
                            .filter(n -> n.startsWith("kafka-producer-network-thread"))
                            .filter(n -> n.contains(prefix)))
                    .hasSizeLessThanOrEqualTo(2));
    assertThat(KafkaOutput.committed(kafka, outTopic)).hasSize(15);
  }

  /**
   * Issue 18 item 9, against a real coordinator: a range whose transaction outlives {@code
   * transactionTimeout} (held here before its commit until the coordinator has aborted it) fails
   * with an error that says the coordinator aborted it for its age and names the settings to
   * change, not "fenced by another producer"; nothing of it is visible and its offset stays.
   */
  @Test
  void aTransactionThatOutlivesItsTimeoutIsReportedAsTimedOutWithTheSettingsToChange() {
    String pipeline = "epoch-timeout-" + suffix;
    KafkaSink<String> sink = sink(pipeline, b -> b.transactionTimeout(Duration.ofSeconds(2)));
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-timeout-in-" + suffix), 0);
    long epoch = startDriver(sink, tp, 0);
    String id = transactionalId(pipeline, tp);
    FaultPoints.set(
        FaultPoints.TASK_BEFORE_COMMIT,
        () -> {
          try (var admin = kafka.admin()) {
            // The broker aborts timed-out transactions on its own schedule (every 10 s by
            // default, every second on the test broker): wait for that, not for a guessed time.
            org.awaitility.Awaitility.await("the coordinator aborts the open transaction of " + id)
                .atMost(Duration.ofSeconds(120))
                .until(
                    () -> {
                      var state =
                          admin.describeTransactions(List.of(id)).description(id).get().state();
                      return state == org.apache.kafka.clients.admin.TransactionState.PREPARE_ABORT
                          || state
                              == org.apache.kafka.clients.admin.TransactionState.COMPLETE_ABORT;
                    });
          }
        });

    assertThatThrownBy(() -> commit(sink, epoch, SourceRange.of(tp.topic(), 0, 0, 10)))
        .hasMessageContaining("aborted by the transaction coordinator, not fenced")
        .hasMessageContaining("spark.streaming.kafka.maxRatePerPartition")
        .hasMessageContaining("transactionTimeout");
    assertThat(KafkaOutput.committed(kafka, outTopic)).isEmpty();
    assertThat(KafkaOutput.groupOffsets(kafka, sink.progressGroup())).containsEntry(tp, 0L);
  }
}
