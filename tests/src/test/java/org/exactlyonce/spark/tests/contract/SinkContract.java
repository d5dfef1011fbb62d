package org.exactlyonce.spark.tests.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The exactly-once contract: one test per behaviour, asked of every backend and strategy. A
 * subclass supplies one {@link SinkUnderTest}; the behaviours live here only, so no backend can
 * answer a question differently or skip it unnoticed. {@link ContractMatrix} prints the result as a
 * matrix (behaviour × sink). A cell that does not apply must say why, with an assumption in the
 * subclass.
 *
 * <p>Two levels: the offset store's protocol (what every strategy's commit rests on), against the
 * real backend without Spark; and operations on a running stream (partitions added, restarts with
 * {@code latest()}, output operations), with Spark, reading the whole output at the end.
 */
@ExtendWith(ContractMatrix.class)
abstract class SinkContract {
  private static JavaSparkContext sc;
  final KafkaBroker kafka = TestServers.kafka();
  SinkUnderTest fixture;
  String topic;
  TopicPartition tp0;
  TopicPartition tp1;

  /** A new fixture with an output of its own. */
  abstract SinkUnderTest create();

  /** The matrix column. */
  String sinkName() {
    return fixture == null ? getClass().getSimpleName() : fixture.name();
  }

  @BeforeAll
  static void startSpark() {
    sc = new JavaSparkContext(SparkSetup.local("contract", 2, 4));
  }

  @AfterAll
  static void stopSpark() {
    sc.stop();
  }

  @BeforeEach
  void setUp() {
    fixture = create();
    topic = "contract-" + System.nanoTime();
    kafka.createTopic(topic, 2);
    tp0 = new TopicPartition(topic, 0);
    tp1 = new TopicPartition(topic, 1);
  }

  @AfterEach
  void tearDown() {
    fixture.close();
  }

  private static String pipeline(String name) {
    return name + "-" + System.nanoTime();
  }

  private static List<CommitOutcome> outcomes(List<PartitionCommit> commits) {
    return commits.stream().map(PartitionCommit::outcome).toList();
  }

  /** The start sequence on one store: validate, take an epoch. */
  private static long begin(OffsetStore store) {
    store.validate();
    return store.takeWriterEpoch();
  }

  // ---------------------------------------------------------------- the offset store's protocol

  @Test
  void aReplayedRangeIsAlreadyCommittedAndAPrefixCommittedRangeIsTrimmed() {
    try (OffsetStore store = fixture.sink(pipeline("replay")).openOffsetStore()) {
      long epoch = begin(store);
      store.storeStartOffsets(Map.of(tp0, 0L), epoch);

      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 5)))))
          .containsExactly(CommitOutcome.COMMITTED);
      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 5)))))
          .containsExactly(CommitOutcome.ALREADY_COMMITTED);
      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 10)))))
          .containsExactly(CommitOutcome.TRIMMED);
      assertThat(store.storedOffsets()).containsEntry(tp0, 10L);
    }
  }

  @Test
  void aRangeAfterTheStoredOffsetIsAGapAndAdvancesNothing() {
    try (OffsetStore store = fixture.sink(pipeline("gap")).openOffsetStore()) {
      long epoch = begin(store);
      store.storeStartOffsets(Map.of(tp0, 0L), epoch);

      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 5, 10)))))
          .containsExactly(CommitOutcome.GAP);
      assertThat(store.storedOffsets()).containsEntry(tp0, 0L);
    }
  }

  /**
   * Only the driver stores where a partition starts. A store that took the first range it was
   * handed as the start would accept a later batch's range first and make the earlier batch look
   * committed: its records would be lost.
   */
  @Test
  void aPartitionWithoutAStoredOffsetIsAGapAndNothingIsStored() {
    try (OffsetStore store = fixture.sink(pipeline("no-row")).openOffsetStore()) {
      long epoch = begin(store);
      store.storeStartOffsets(Map.of(tp0, 0L), epoch);

      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 1, 30, 80)))))
          .containsExactly(CommitOutcome.GAP);
      assertThat(store.storedOffsets()).doesNotContainKey(tp1);
    }
  }

  @Test
  void startOffsetsNeverOverwriteStoredOnes() {
    try (OffsetStore store = fixture.sink(pipeline("start")).openOffsetStore()) {
      long epoch = begin(store);
      store.storeStartOffsets(Map.of(tp0, 0L), epoch);
      store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 10)));

      store.storeStartOffsets(Map.of(tp0, 3L, tp1, 7L), epoch);

      assertThat(store.storedOffsets()).containsEntry(tp0, 10L).containsEntry(tp1, 7L);
    }
  }

  @Test
  void aNewerWriterFencesTheOlderOne() {
    String id = pipeline("fence");
    try (OffsetStore older = fixture.sink(id).openOffsetStore();
        OffsetStore newer = fixture.sink(id).openOffsetStore()) {
      long olderEpoch = begin(older);
      older.storeStartOffsets(Map.of(tp0, 0L), olderEpoch);
      long newerEpoch = begin(newer);
      assertThat(newerEpoch).isGreaterThan(olderEpoch);

      assertThat(outcomes(older.commitRanges(olderEpoch, List.of(SourceRange.of(topic, 0, 0, 10)))))
          .containsExactly(CommitOutcome.FENCED);
      assertThatThrownBy(() -> older.storeStartOffsets(Map.of(tp1, 0L), olderEpoch))
          .isInstanceOf(WriterFencedException.class);
      assertThat(newer.storedOffsets()).isEqualTo(Map.of(tp0, 0L));
      assertThat(outcomes(newer.commitRanges(newerEpoch, List.of(SourceRange.of(topic, 0, 0, 10)))))
          .containsExactly(CommitOutcome.COMMITTED);
      // A range the newer writer committed is no replay for the older one: still FENCED, so a
      // fenced driver whose batch holds only such ranges stops too.
      assertThat(outcomes(older.commitRanges(olderEpoch, List.of(SourceRange.of(topic, 0, 0, 10)))))
          .containsExactly(CommitOutcome.FENCED);
    }
  }

  @Test
  void twoPipelineIdsKeepSeparateOffsets() {
    try (OffsetStore a = fixture.sink(pipeline("a")).openOffsetStore();
        OffsetStore b = fixture.sink(pipeline("b")).openOffsetStore()) {
      long ea = begin(a);
      long eb = begin(b);
      a.storeStartOffsets(Map.of(tp0, 0L), ea);
      b.storeStartOffsets(Map.of(tp0, 0L), eb);

      assertThat(outcomes(a.commitRanges(ea, List.of(SourceRange.of(topic, 0, 0, 10)))))
          .containsExactly(CommitOutcome.COMMITTED);

      assertThat(b.storedOffsets()).isEqualTo(Map.of(tp0, 0L));
      assertThat(outcomes(b.commitRanges(eb, List.of(SourceRange.of(topic, 0, 0, 5)))))
          .containsExactly(CommitOutcome.COMMITTED);
    }
  }

  /**
   * A model of the protocol against the real backend: random interleavings of attempts on ranges
   * cut from one partition (first attempts, retries, replays of earlier ranges, batches cut
   * differently after a restart), by two drivers that take writer epochs in turn (a zombie, a
   * rolling deploy). After every step the backend's outcome and stored offset must equal the
   * model's: a stale epoch is FENCED, otherwise the commit decision; the offset only moves forward,
   * by whole ranges. The scenarios come from a fixed seed (override with -Dcontract.seed=...),
   * printed with the steps on failure. (The decision itself has jqwik properties in sink-api;
   * jqwik's generators cannot run inside a Jupiter test, which the matrix needs.)
   */
  @Test
  void theStoredOffsetFollowsTheModelUnderRandomAttemptsZombiesAndDrivers() {
    long seed = Long.getLong("contract.seed", 20261201L);
    java.util.Random random = new java.util.Random(seed);
    long[] bounds = new long[13];
    for (int i = 1; i < bounds.length; i++) {
      bounds[i] = bounds[i - 1] + 1 + random.nextInt(9);
    }
    for (int scenario = 0; scenario < 4; scenario++) {
      String id = pipeline("model");
      try (OffsetStore d0 = fixture.sink(id).openOffsetStore();
          OffsetStore d1 = fixture.sink(id).openOffsetStore()) {
        OffsetStore[] drivers = {d0, d1};
        long[] epochs = {begin(d0), 0};
        d0.storeStartOffsets(Map.of(tp0, 0L), epochs[0]);
        epochs[1] = begin(d1);
        long latest = epochs[1];
        long stored = 0;
        List<String> log = new ArrayList<>();
        for (int i = 0; i < 14; i++) {
          // An attempt starts near the stored offset: a retry or replay (before it), the next
          // range (at it), or a range after a gap (past it); one step in six is a new epoch.
          int at = java.util.Arrays.binarySearch(bounds, stored);
          int[] step = {
            random.nextInt(6),
            random.nextInt(2),
            Math.max(0, Math.min(bounds.length - 2, at + random.nextInt(4) - 2)),
            1 + random.nextInt(3)
          };
          int d = step[1];
          if (step[0] == 5) {
            epochs[d] = drivers[d].takeWriterEpoch();
            latest = epochs[d];
            log.add("driver " + d + " takes epoch " + epochs[d]);
            continue;
          }
          SourceRange r =
              SourceRange.of(
                  topic,
                  0,
                  bounds[step[2]],
                  bounds[Math.min(bounds.length - 1, step[2] + step[3])]);
          CommitOutcome expected =
              epochs[d] != latest
                  ? CommitOutcome.FENCED
                  : org.exactlyonce.spark.spi.CommitDecision.decide(stored, r);
          CommitOutcome actual = drivers[d].commitRanges(epochs[d], List.of(r)).get(0).outcome();
          log.add("driver " + d + " (epoch " + epochs[d] + ") commits " + r + ": " + actual);
          String context = "seed " + seed + ", scenario " + scenario + ": " + log;
          assertThat(actual).as(context).isEqualTo(expected);
          if (expected == CommitOutcome.COMMITTED || expected == CommitOutcome.TRIMMED) {
            stored = r.until();
          }
          assertThat(drivers[d].storedOffsets().get(tp0)).as(context).isEqualTo(stored);
        }
      }
    }
  }

  /**
   * A sink creates its offset tables where they are missing (and they work: an epoch, a start
   * offset, a commit), and refuses an offsets table of another shape before changing anything in
   * it, naming the table and the fix: a sink pointed by mistake at another tool's table, or at an
   * output table, must neither fail later on a raw backend error nor alter that table.
   */
  @Test
  void missingOffsetTablesAreCreatedAndATableOfAnotherShapeIsRefusedUnchanged() {
    SinkUnderTest.OffsetTables tables = fixture.offsetTables();
    org.junit.jupiter.api.Assumptions.assumeTrue(
        tables != null,
        "the Kafka sinks keep their progress in a consumer group (eos-progress-<pipeline id>),"
            + " which Kafka creates with the first commit: there is no table to create or refuse");
    String missing = tables.missingTable();
    List<String> created = tables.createdWith(missing);
    created.forEach(t -> assertThat(tables.columns(t)).as("before validation: " + t).isEmpty());
    try (OffsetStore store = tables.sink(pipeline("created"), missing).openOffsetStore()) {
      long epoch = begin(store);
      created.forEach(t -> assertThat(tables.columns(t)).as("created: " + t).isNotEmpty());
      store.storeStartOffsets(Map.of(tp0, 0L), epoch);
      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 5)))))
          .containsExactly(CommitOutcome.COMMITTED);
      assertThat(store.storedOffsets()).isEqualTo(Map.of(tp0, 5L));
    }

    String other = tables.tableOfAnotherShape();
    Map<String, String> before = tables.columns(other);
    try (OffsetStore store = tables.sink(pipeline("refused"), other).openOffsetStore()) {
      assertThatThrownBy(store::validate)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("offsets table '" + other + "' has the wrong shape")
          .hasMessageContaining("drop this one and let the sink create it");
    }
    assertThat(tables.columns(other)).as("the refused table, unchanged").isEqualTo(before);
  }

  // ---------------------------------------------------------------- starting a stream

  /**
   * A deployment whose output is wrong (missing: a mistyped table or topic name) is refused by its
   * output check before any writer epoch is taken, naming the output: the running driver of the
   * same pipeline is not fenced and keeps committing.
   */
  @Test
  void aSinkWhoseOutputIsMissingIsRefusedBeforeAnyWriterEpochIsTaken() {
    String id = pipeline("missing-output");
    try (OffsetStore running = fixture.sink(id).openOffsetStore()) {
      long epoch = begin(running);
      running.storeStartOffsets(Map.of(tp0, 0L), epoch);

      JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
      Throwable thrown;
      try {
        thrown =
            org.assertj.core.api.Assertions.catchThrowable(
                () ->
                    ExactlyOnce.directStream(
                        ssc, kafkaParams(), List.of(topic), fixture.sinkWithMissingOutput(id)));
      } finally {
        ssc.stop(false, true);
      }

      assertThat(thrown)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("no_such_output")
          .hasMessageContaining("does not exist");
      assertThat(outcomes(running.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 5)))))
          .as("the running driver, not fenced")
          .containsExactly(CommitOutcome.COMMITTED);
    }
  }

  /**
   * A backend that cannot be reached stops the start with a configuration error that says where the
   * sink tried to connect, and never shows the password: messages and stack traces end up in logs,
   * tickets and chats. Nothing listens at the address (a port closed a moment ago), so the
   * connection is refused at once.
   */
  @Test
  void anUnreachableBackendFailsTheStartNamingTheAddressWithoutThePassword() {
    String address = "127.0.0.1:" + org.exactlyonce.spark.testing.servers.Ports.free();
    String secret = "contract-secret-" + java.util.UUID.randomUUID();
    ExactlyOnceSink sink = fixture.unreachableSink(pipeline("unreachable"), address, secret);
    assertThat(String.valueOf(sink)).doesNotContain(secret);

    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    Throwable thrown;
    try {
      thrown =
          org.assertj.core.api.Assertions.catchThrowable(
              () -> ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink));
    } finally {
      ssc.stop(false, true);
    }

    assertThat(thrown).isInstanceOf(SinkConfigurationException.class).hasMessageContaining(address);
    java.io.StringWriter trace = new java.io.StringWriter();
    thrown.printStackTrace(new java.io.PrintWriter(trace));
    assertThat(trace.toString()).as("message, causes and suppressed").doesNotContain(secret);
  }

  /**
   * The start position is resolved to concrete offsets and stored for every partition before the
   * first batch: a driver that stops (or crashes) before its first commit starts again from the
   * same offsets. Resolving {@code latest()} again would silently skip the records that arrived in
   * between.
   */
  @Test
  void theStartPositionIsStoredForEveryPartitionBeforeTheFirstBatch() {
    send(topic, 0, "old-p0", 7, null);
    send(topic, 1, "old-p1", 3, null);
    Map<TopicPartition, Long> ends = Map.of(tp0, 7L, tp1, 3L);
    Map<TopicPartition, Long> beginnings = Map.of(tp0, 0L, tp1, 0L);
    ExactlyOnceSink latest = fixture.sink(pipeline("latest"));
    ExactlyOnceSink earliest = fixture.sink(pipeline("earliest"));

    assertThat(createWithoutBatches(latest, StartPosition.latest())).isEqualTo(ends);
    assertThat(storedOffsets(latest)).isEqualTo(ends);
    assertThat(createWithoutBatches(earliest, StartPosition.earliest())).isEqualTo(beginnings);
    assertThat(storedOffsets(earliest)).isEqualTo(beginnings);

    send(topic, 0, "while-stopped-p0", 4, null);
    assertThat(createWithoutBatches(latest, StartPosition.latest())).isEqualTo(ends);
    assertThat(storedOffsets(latest)).isEqualTo(ends);
  }

  /** Creates {@code sink}'s stream and stops it before any batch; returns where it would start. */
  private Map<TopicPartition, Long> createWithoutBatches(
      ExactlyOnceSink sink, StartPosition start) {
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      return ExactlyOnce.<String, String>directStream(
              ssc, kafkaParams(), List.of(topic), start, sink)
          .startOffsets();
    } finally {
      ssc.stop(false, true);
    }
  }

  private static Map<TopicPartition, Long> storedOffsets(ExactlyOnceSink sink) {
    try (OffsetStore store = sink.openOffsetStore()) {
      return store.storedOffsets();
    }
  }

  // ---------------------------------------------------------------- operations on a stream

  /**
   * Partitions added to a topic start at their earliest offset, whether they were added while the
   * job ran or while it was stopped, although every run passes {@code StartPosition.latest()}: the
   * start position applies to a pipeline's first start only. The whole output is compared with the
   * input: nothing skipped, nothing twice.
   */
  @Test
  void partitionsAddedWhileRunningOrStoppedAreWrittenInFullUnderLatest() {
    String single = "contract-grow-" + System.nanoTime();
    kafka.createTopic(single, 1);
    ExactlyOnceSink sink = fixture.sink(pipeline("grow"));
    Map<String, Long> expected = new LinkedHashMap<>();
    send(single, 0, "before-first-start", 10, null); // latest() skips these, on purpose

    runStream(
        single,
        sink,
        stream -> {
          // The first start stored the end of partition 0 before this send.
          send(single, 0, "run1-p0", 20, expected);
          awaitOutput(stream, expected);
          addPartitions(single, 2);
          send(single, 1, "run1-added-p1", 15, expected);
          awaitOutput(stream, expected);
        });

    addPartitions(single, 3); // while stopped
    send(single, 2, "down-added-p2", 30, expected);
    send(single, 0, "down-p0", 10, expected);
    send(single, 1, "down-p1", 5, expected);

    runStream(single, sink, stream -> awaitOutput(stream, expected));

    assertThat(fixture.counts()).isEqualTo(expected);
  }

  /**
   * A partition that receives nothing while its neighbour does keeps its stored offset, neither
   * lost nor reset: in the store, empty ranges of it next to ranges that advance its neighbour; on
   * a running stream, batches in which it is idle, then a restart (which reads where every
   * partition starts from the store: an offset lost there would be taken for a partition added
   * later and read from its earliest offset, one reset would write its records again). Once it
   * receives records again they are written exactly once: the whole output equals the input.
   */
  @Test
  void anIdlePartitionKeepsItsStoredOffsetAndItsLaterRecordsAreWrittenOnce() {
    try (OffsetStore store = fixture.sink(pipeline("idle-store")).openOffsetStore()) {
      long epoch = begin(store);
      store.storeStartOffsets(Map.of(tp0, 0L, tp1, 0L), epoch);
      assertThat(
              outcomes(
                  store.commitRanges(
                      epoch,
                      List.of(SourceRange.of(topic, 0, 0, 5), SourceRange.of(topic, 1, 0, 4)))))
          .containsOnly(CommitOutcome.COMMITTED);
      for (long from = 5; from < 20; from += 5) {
        List<CommitOutcome> idle =
            outcomes(
                store.commitRanges(
                    epoch,
                    List.of(
                        SourceRange.of(topic, 0, from, from + 5), SourceRange.of(topic, 1, 4, 4))));
        assertThat(idle.get(0)).isEqualTo(CommitOutcome.COMMITTED);
        assertThat(idle.get(1))
            .as("an empty range at the stored offset")
            .isIn(CommitOutcome.COMMITTED, CommitOutcome.ALREADY_COMMITTED);
        assertThat(store.storedOffsets())
            .as("after the idle range next to [%d, %d)", from, from + 5)
            .containsEntry(tp0, from + 5)
            .containsEntry(tp1, 4L);
      }
      assertThat(outcomes(store.commitRanges(epoch, List.of(SourceRange.of(topic, 1, 4, 9)))))
          .containsExactly(CommitOutcome.COMMITTED);
      assertThat(store.storedOffsets()).isEqualTo(Map.of(tp0, 20L, tp1, 9L));
    }

    ExactlyOnceSink sink = fixture.sink(pipeline("idle-stream"));
    Map<String, Long> expected = new LinkedHashMap<>();
    Map<TopicPartition, Long> storedWhileIdle = new LinkedHashMap<>();
    runStream(
        topic,
        sink,
        stream -> {
          send(topic, 0, "both-p0", 6, expected);
          send(topic, 1, "both-p1", 4, expected);
          awaitStored(stream, sink, Map.of(tp0, 6L, tp1, 4L));
          // Three rounds, each awaited, so at least three batches in which partition 1 is idle.
          for (int round = 0; round < 3; round++) {
            send(topic, 0, "idle-round" + round + "-p0", 5, expected);
            awaitStored(stream, sink, Map.of(tp0, 11L + 5 * round));
            assertThat(storedOffsets(sink))
                .as("partition 1 idle, round %d", round)
                .containsEntry(tp1, 4L);
          }
          storedWhileIdle.putAll(storedOffsets(sink));
        });
    assertThat(storedWhileIdle).isEqualTo(Map.of(tp0, 21L, tp1, 4L));

    send(topic, 1, "back-p1", 7, expected);
    send(topic, 0, "back-p0", 3, expected);
    runStream(topic, sink, stream -> awaitOutput(stream, expected));

    assertThat(fixture.counts()).isEqualTo(expected);
    assertThat(storedOffsets(sink)).isEqualTo(Map.of(tp0, 24L, tp1, 11L));
  }

  /**
   * A stored offset moved back by hand (or a store restored from an old backup) would write the
   * records in between again, silently. It is refused at start below the high-water mark the data
   * path keeps, naming pipeline, partition and both offsets, until the rewind is made on purpose
   * through the library.
   */
  @Test
  void anOffsetMovedBackByHandIsRefusedUntilRewoundThroughTheLibrary() {
    ExactlyOnceSink sink = fixture.sink(pipeline("rewind"));
    send(topic, 0, "rewind", 10, null);
    try (OffsetStore store = sink.openOffsetStore()) {
      long epoch = begin(store);
      store.storeStartOffsets(Map.of(tp0, 0L, tp1, 0L), epoch);
      store.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 10)));
    }
    fixture.moveOffsetByHand(sink.pipelineId().toString(), tp0, 4);
    boolean toolReachesStore;
    try (OffsetStore store = sink.openOffsetStore()) {
      toolReachesStore = store.offsetsToolResetOptions() != null;
    }

    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      assertThatThrownBy(() -> ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink))
          .isInstanceOf(org.exactlyonce.spark.OffsetMismatchException.class)
          // The offsets tool's command that re-processes from there on purpose, where the tool
          // reaches the store (not Cassandra yet).
          .satisfies(
              e -> {
                if (toolReachesStore) {
                  assertThat(e.getMessage())
                      .contains(
                          "with the offsets tool (prints the plan without --execute):"
                              + " bin/exactly-once-offsets reset --pipeline "
                              + sink.pipelineId()
                              + " --bootstrap-servers ")
                      .contains(" --to-offset " + topic + ":0=4 --execute")
                      .doesNotContain("password=");
                }
              })
          .hasMessageContaining(sink.pipelineId().toString())
          // Stores in tables keep a high-water mark; the Kafka sinks' progress group cannot (a
          // hand reset replaces the offset's metadata), but tells its own offsets from others.
          .hasMessageMatching(
              "(?s).*"
                  + java.util.regex.Pattern.quote(tp0 + ": stored offset 4 ")
                  + "(is below its high-water mark 10|was set outside the library).*")
          .hasMessageContaining("ExactlyOnce.rewind");
    } finally {
      ssc.stop(false, true);
    }

    assertThat(ExactlyOnce.rewind(sink, Map.of(tp0, 4L))).containsEntry(tp0, 4L);
    JavaStreamingContext again = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(again, kafkaParams(), List.of(topic), sink);
      assertThat(stream.startOffsets()).containsEntry(tp0, 4L);
    } finally {
      again.stop(false, true);
    }
  }

  /**
   * A deployment that starts while the running driver still commits (a rolling deploy) reads the
   * stored offsets and their high-water marks before it takes its writer epoch. A commit of the
   * running driver that lands between those two reads must not look like offsets moved back by
   * hand: the start goes on, from what the running driver committed last. (For the Kafka sinks'
   * progress group, which keeps no marks, the row holds trivially.)
   */
  @Test
  void aStartRacingACommitOfTheRunningDriverIsNotTakenForOffsetsMovedBack() {
    ExactlyOnceSink sink = fixture.sink(pipeline("race"));
    send(topic, 0, "race", 20, null);
    try (OffsetStore running = sink.openOffsetStore()) {
      long epoch = begin(running);
      running.storeStartOffsets(Map.of(tp0, 0L, tp1, 0L), epoch);
      running.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 0, 10)));
      ExactlyOnceSink racing =
          new CommitAfterFirstRead(
              sink,
              () ->
                  assertThat(running.commitRanges(epoch, List.of(SourceRange.of(topic, 0, 10, 20))))
                      .extracting(PartitionCommit::outcome)
                      .containsExactly(CommitOutcome.COMMITTED));
      JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
      try {
        ExactlyOnceStream<String, String> stream =
            ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), racing);
        assertThat(((CommitAfterFirstRead) racing).fired).as("the racing commit ran").isTrue();
        assertThat(stream.startOffsets()).containsEntry(tp0, 20L);
      } finally {
        ssc.stop(false, true);
      }
    }
  }

  /**
   * A sink whose offset store runs {@code commit} (the running driver's) right after the first read
   * a starting deployment makes of it, whichever read that is.
   */
  private static final class CommitAfterFirstRead implements ExactlyOnceSink {
    private static final long serialVersionUID = 1L;
    private final ExactlyOnceSink sink;
    private final transient Runnable commit;
    private transient boolean fired;

    CommitAfterFirstRead(ExactlyOnceSink sink, Runnable commit) {
      this.sink = sink;
      this.commit = commit;
    }

    @Override
    public org.exactlyonce.spark.PipelineId pipelineId() {
      return sink.pipelineId();
    }

    @Override
    public String describe() {
      return sink.describe();
    }

    @Override
    public void checkOutputs() {
      sink.checkOutputs();
    }

    @Override
    public void checkConsumerSettings(Map<String, Object> kafkaParams) {
      sink.checkConsumerSettings(kafkaParams);
    }

    @Override
    public void checkStreamingSettings(org.apache.spark.SparkConf conf) {
      sink.checkStreamingSettings(conf);
    }

    @Override
    public OffsetStore openOffsetStore() {
      OffsetStore store = sink.openOffsetStore();
      return new OffsetStore() {
        private <T> T thenCommit(T read) {
          if (!fired) {
            fired = true;
            commit.run();
          }
          return read;
        }

        @Override
        public void validate() {
          store.validate();
        }

        @Override
        public long takeWriterEpoch() {
          return store.takeWriterEpoch();
        }

        @Override
        public Map<TopicPartition, Long> storedOffsets() {
          return thenCommit(store.storedOffsets());
        }

        @Override
        public Map<TopicPartition, Long> storedOffsetsAtStart(
            java.util.Collection<TopicPartition> partitions, long epoch) {
          return store.storedOffsetsAtStart(partitions, epoch);
        }

        @Override
        public void checkBeforeEpoch(java.util.Collection<TopicPartition> partitions) {
          store.checkBeforeEpoch(partitions);
        }

        @Override
        public Map<TopicPartition, Long> highWaterMarks() {
          return thenCommit(store.highWaterMarks());
        }

        @Override
        public String offsetsToolResetOptions() {
          return store.offsetsToolResetOptions();
        }

        @Override
        public void storeStartOffsets(Map<TopicPartition, Long> offsets, long epoch) {
          store.storeStartOffsets(offsets, epoch);
        }

        @Override
        public List<PartitionCommit> commitRanges(long epoch, List<SourceRange> ranges) {
          return store.commitRanges(epoch, ranges);
        }

        @Override
        public void keepAlive(java.util.Collection<TopicPartition> partitions, long epoch) {
          store.keepAlive(partitions, epoch);
        }

        @Override
        public void close() {
          store.close();
        }
      };
    }
  }

  /**
   * Records the mapper fails on go to the sink's dead letters, in the same exactly-once unit as the
   * outputs: every task's first attempt fails after its sink committed, so Spark replays every
   * range once, and still each bad record is a dead letter exactly once, each good one an output
   * exactly once, and no bad one an output.
   */
  @Test
  void badRecordsAreDeadLettersExactlyOnceAfterEveryRangeIsReplayed() {
    SinkUnderTest.DeadLetters deadLetters = fixture.deadLetters();
    org.junit.jupiter.api.Assumptions.assumeTrue(
        deadLetters != null,
        "a per-batch sink has no record mapper: the batch function sees the whole batch, so a"
            + " record cannot fail alone; its builder refuses deadLetterTable(...)");
    String id = pipeline("dead-letters");
    ExactlyOnceSink sink = deadLetters.sink(id);
    Map<String, Long> good = new LinkedHashMap<>();
    List<String> bad = new ArrayList<>();
    java.util.concurrent.atomic.AtomicInteger replays =
        new java.util.concurrent.atomic.AtomicInteger();
    org.exactlyonce.spark.spi.FaultPoints.set(
        org.exactlyonce.spark.spi.FaultPoints.TASK_AFTER_COMMIT,
        () -> {
          org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
          if (task != null && task.attemptNumber() == 0) {
            replays.incrementAndGet();
            throw new IllegalStateException("injected: first attempt dies after its commit");
          }
        });
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink);
      fixture.wire(
          stream,
          sink,
          r -> {
            if (r.value().startsWith("bad-")) {
              throw new IllegalArgumentException("not an id: " + r.value());
            }
            return List.of(r.value());
          });
      ssc.start();
      List<org.apache.kafka.clients.producer.ProducerRecord<String, String>> records =
          new ArrayList<>();
      for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 12; i++) {
          String value = (i % 3 == 1 ? "bad-" : "good-") + p + "-" + i;
          records.add(
              new org.apache.kafka.clients.producer.ProducerRecord<>(topic, p, value, value));
          if (value.startsWith("bad-")) {
            bad.add(topic + "-" + p + "@" + i);
          } else {
            good.put(value, 1L);
          }
        }
      }
      kafka.send(records);
      await()
          .atMost(Duration.ofMinutes(3))
          .pollInterval(Duration.ofMillis(250))
          .until(
              () ->
                  stream.failure() != null
                      || (fixture.counts().keySet().containsAll(good.keySet())
                          && deadLetters.positions(id).containsAll(bad)));
      assertThat(stream.failure()).isNull();
    } finally {
      ssc.stop(false, true);
      org.exactlyonce.spark.spi.FaultPoints.clear();
    }

    assertThat(replays).as("ranges replayed").hasPositiveValue();
    assertThat(fixture.counts()).isEqualTo(good);
    assertThat(deadLetters.positions(id)).containsExactlyInAnyOrderElementsOf(bad);
  }

  @Test
  void aSecondOutputOperationOfOnePipelineIsRefused() {
    ExactlyOnceSink sink = fixture.sink(pipeline("twice"));
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink);
      fixture.wire(stream, sink);

      assertThatThrownBy(() -> fixture.wire(stream, sink))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("already has an output operation")
          .hasMessageContaining(sink.pipelineId().toString());
    } finally {
      ssc.stop(false, true);
    }
  }

  // ---------------------------------------------------------------- helpers

  interface StreamBody {
    void run(ExactlyOnceStream<String, String> stream) throws Exception;
  }

  private void runStream(String topicName, ExactlyOnceSink sink, StreamBody body) {
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(
              ssc, kafkaParams(), List.of(topicName), StartPosition.latest(), sink);
      fixture.wire(stream, sink);
      ssc.start();
      body.run(stream);
      assertThat(stream.failure()).isNull();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    } finally {
      ssc.stop(false, true);
    }
  }

  /** Waits until every expected id is in the output (or the stream failed). */
  private void awaitOutput(ExactlyOnceStream<String, String> stream, Map<String, Long> expected) {
    await()
        .atMost(Duration.ofMinutes(3))
        .pollInterval(Duration.ofMillis(250))
        .until(
            () ->
                stream.failure() != null
                    || fixture.counts().keySet().containsAll(expected.keySet()));
    assertThat(stream.failure()).isNull();
  }

  /**
   * Waits until {@code sink} has stored at least the given offsets (or the stream failed): the
   * batches that read up to there have committed those partitions.
   */
  private static void awaitStored(
      ExactlyOnceStream<String, String> stream,
      ExactlyOnceSink sink,
      Map<TopicPartition, Long> offsets) {
    await()
        .atMost(Duration.ofMinutes(3))
        .pollInterval(Duration.ofMillis(250))
        .until(
            () -> {
              if (stream.failure() != null) {
                return true;
              }
              Map<TopicPartition, Long> stored = storedOffsets(sink);
              return offsets.entrySet().stream()
                  .allMatch(e -> stored.getOrDefault(e.getKey(), -1L) >= e.getValue());
            });
    assertThat(stream.failure()).isNull();
  }

  private Map<String, Object> kafkaParams() {
    return Inputs.params(kafka);
  }

  private void send(
      String topicName, int partition, String tag, int n, Map<String, Long> expected) {
    Inputs.send(kafka, topicName, partition, tag, n, expected);
  }

  private void addPartitions(String topicName, int total) {
    try (var admin = kafka.admin()) {
      admin
          .createPartitions(
              Map.of(topicName, org.apache.kafka.clients.admin.NewPartitions.increaseTo(total)))
          .all()
          .get();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
