package org.exactlyonce.spark.tests;

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
import java.util.function.Supplier;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
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
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The writer epochs and transactional ids of the Kafka transactional sink against a real broker:
 * two drivers starting together never share an epoch (exactly one of them ends up current, the
 * other's commits are {@code FENCED}).
 */
class KafkaWriterEpochIT {
  private static final RecordMapper<String, String, String> ONE_OUTPUT =
      r -> List.of(r.value() + "/out");

  private final KafkaBroker kafka = TestServers.kafka();
  private final String suffix = Long.toString(System.nanoTime());
  private final String outTopic = "epoch-out-" + suffix;

  @AfterEach
  void clearFaults() {
    FaultPoints.clear();
  }

  private KafkaSink<String> sink(String pipeline) {
    return KafkaSink.<String>transactional(pipeline)
        .bootstrapServers(kafka.bootstrapServers())
        .topic(outTopic)
        .value(ToBytes.utf8(s -> s))
        .apiTimeout(Duration.ofSeconds(20))
        .build();
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
   * Drivers released together by a latch, many times over: every epoch is taken once. This passes
   * by construction with the compare-and-set; before it, it failed only when the threads happened
   * to interleave (the test above makes that interleaving certain).
   */
  @Test
  void driversStartingTogetherNeverShareAnEpoch() throws Exception {
    KafkaSink<String> sink = sink("epoch-together-" + suffix);
    kafka.createTopic(outTopic, 1);
    TopicPartition tp = new TopicPartition(inputTopic("epoch-together-in-" + suffix), 0);
    startDriver(sink, tp, 0);
    List<Long> all = new ArrayList<>();
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
        all.add(f.get(120, TimeUnit.SECONDS));
      }
    }
    assertThat(new TreeSet<>(all)).as("epochs taken: %s", all).hasSize(all.size());
    long newest = all.stream().mapToLong(Long::longValue).max().orElseThrow();
    SourceRange range = SourceRange.of(tp.topic(), 0, 0, 10);
    for (long e : all) {
      if (e != newest) {
        assertThat(commit(sink, e, range).outcome())
            .as("epoch %d", e)
            .isEqualTo(CommitOutcome.FENCED);
      }
    }
    assertThat(commit(sink, newest, range).outcome()).isEqualTo(CommitOutcome.COMMITTED);
  }
}
