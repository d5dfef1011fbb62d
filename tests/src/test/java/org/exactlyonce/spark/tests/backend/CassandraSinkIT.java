package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.Row;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.cassandra.AmountFunction;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.cassandra.internal.CassandraOffsetStore;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
import org.exactlyonce.spark.tests.support.Outage;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Strategy I against a real Cassandra node. The test that kills the node runs last.
 *
 * <p>Every schema change costs seconds on a loaded machine, so the tests share one keyspace (and
 * with it the sinks' offsets and dead-letter tables) and one session. Each test has pipeline ids of
 * its own, and keys of its own in the tables they share ({@code profiles}, {@code by_campaign}).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CassandraSinkIT {
  private static CassandraServer cassandra;
  private static CassandraSettings settings;
  private static CqlSession session;
  private static String ks;

  @BeforeAll
  static void createKeyspace() {
    cassandra = TestServers.cassandra();
    settings =
        CassandraSettings.contactPoints(
            cassandra.localDatacenter(), cassandra.host() + ":" + cassandra.nativePort());
    session = CassandraTestSupport.session(cassandra);
    ks = "eos_sink_it_" + System.currentTimeMillis();
    cql(
        "CREATE KEYSPACE "
            + ks
            + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    cql("CREATE TABLE " + ks + ".profiles (user_id text PRIMARY KEY, name text, city text)");
    createByCampaign();
  }

  @AfterAll
  static void closeSession() {
    if (session != null) {
      session.close();
    }
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
  }

  private static List<Row> cql(String statement) {
    return session.execute(statement).all();
  }

  private static <R> long epochOf(CassandraSink<R> sink) {
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      return store.takeWriterEpoch();
    }
  }

  private static MappedPartition<String, String, String[]> outputs(
      long from, long until, String name) {
    List<ConsumerRecord<String, String>> records = new ArrayList<>();
    for (long o = from; o < until; o++) {
      records.add(new ConsumerRecord<>("t", 0, o, "u1", name == null ? "id-" + o : name));
    }
    return new MappedPartition<String, String, String[]>(
        records.iterator(),
        r -> List.<String[]>of(new String[] {r.key(), r.value()}),
        SourceRange.of("t", 0, from, until));
  }

  @Test
  void aReplayedRangeLeavesOneCopy() {
    cql(
        "CREATE TABLE "
            + ks
            + ".replayed_events (src_topic text, src_partition int, src_offset bigint,"
            + " src_index int, id text, PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
    CassandraSink<String[]> sink =
        CassandraSink.<String[]>idempotent("replayed-events")
            .connection(settings)
            .table(ks + ".replayed_events")
            .columns("id")
            .values(v -> List.of(v[1]))
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    epochOf(sink);
    SourceRange r = SourceRange.of("t", 0, 0, 500);

    assertThat(sink.write(r, 0, outputs(0, 500, null))).isEqualTo(500);
    sink.write(r, 0, outputs(0, 500, null)); // the replay

    List<String> ids =
        cql("SELECT id FROM " + ks + ".replayed_events").stream().map(x -> x.getString(0)).toList();
    assertThat(ids).hasSize(500).doesNotHaveDuplicates();
  }

  @Test
  void aBadRecordBecomesOneDeadLetterEvenWhenItsRangeIsReplayed() {
    CassandraSink<String[]> sink =
        profilesSink("bad-record", settings, b -> b.deadLetterTable(ks + ".dead_letters"));
    epochOf(sink);
    assertThat(sink.routesBadRecordsToDeadLetters()).isTrue();
    for (int attempt = 0; attempt < 2; attempt++) {
      List<ConsumerRecord<String, String>> records =
          List.of(
              new ConsumerRecord<>("t", 0, 5L, "bad-1", "fine"),
              new ConsumerRecord<>("t", 0, 6L, "bad-2", "poison"));
      sink.write(
          SourceRange.of("t", 0, 5, 7),
          5,
          new MappedPartition<String, String, String[]>(
              records.iterator(),
              r -> {
                if (r.value().equals("poison")) {
                  throw new IllegalArgumentException("cannot parse " + r.value());
                }
                return List.<String[]>of(new String[] {r.key(), r.value()});
              },
              SourceRange.of("t", 0, 5, 7),
              true));
    }
    List<Row> dead = cql("SELECT src_offset, error, record_value FROM " + ks + ".dead_letters");
    assertThat(dead).hasSize(1);
    assertThat(dead.get(0).getLong(0)).isEqualTo(6);
    assertThat(dead.get(0).getString(1)).contains("cannot parse poison");
    assertThat(
            java.nio.charset.StandardCharsets.UTF_8.decode(dead.get(0).getByteBuffer(2)).toString())
        .isEqualTo("poison");
    assertThat(cql("SELECT user_id FROM " + ks + ".profiles WHERE user_id IN ('bad-1', 'bad-2')"))
        .hasSize(1);
  }

  @Test
  void anOlderReplayDoesNotOverwriteANewerValue() {
    CassandraSink<String[]> sink = profilesSink("older-replay", settings);
    epochOf(sink);

    sink.write(SourceRange.of("t", 0, 7, 8), 7, outputs(7, 8, "newer"));
    sink.write(SourceRange.of("t", 0, 3, 4), 3, outputs(3, 4, "older"));

    assertThat(cql("SELECT name FROM " + ks + ".profiles WHERE user_id = 'u1'").get(0).getString(0))
        .isEqualTo("newer");
  }

  /**
   * Two outputs of one record share its offset. With the offset alone as write timestamp Cassandra
   * resolved the tie cell by cell (the greater value of each column), writing a row neither output
   * had; the later output must win whole.
   */
  @Test
  void twoOutputsOfOneRecordWithOneKeyLeaveTheLaterOutputWhole() {
    CassandraSink<String[]> sink =
        CassandraSink.<String[]>idempotent("two-outputs")
            .connection(settings)
            .table(ks + ".profiles")
            .columns("user_id", "name", "city")
            .values(v -> List.of(v[0], v[1], v[2]))
            .timestampFromSourceOffset()
            .build();
    epochOf(sink);
    SourceRange range = SourceRange.of("t", 0, 4, 5);
    sink.write(
        range,
        4,
        new MappedPartition<String, String, String[]>(
            List.of(new ConsumerRecord<>("t", 0, 4L, "u1", "v")).iterator(),
            r ->
                List.of(
                    new String[] {"two-outputs", "zed", "athens"},
                    new String[] {"two-outputs", "amy", "zurich"}),
            range));

    Row row =
        cql("SELECT name, city FROM " + ks + ".profiles WHERE user_id = 'two-outputs'").get(0);
    assertThat(List.of(row.getString(0), row.getString(1))).containsExactly("amy", "zurich");
  }

  /**
   * The source offset orders a key's versions only while the key keeps its Kafka partition: a key
   * hashed to an added partition would get small offsets as timestamps and lose to its old value
   * forever. The store refuses partitions added to a topic it already stored, at start and while
   * running, and a stream over several topics, naming the fix.
   */
  @Test
  void theSourceOffsetAsTimestampIsRefusedWhenItCannotOrderAKeysVersions() {
    CassandraSink<String[]> sink = profilesSink("grown", settings);
    TopicPartition p0 = new TopicPartition("t", 0);
    TopicPartition p1 = new TopicPartition("t", 1);
    TopicPartition p2 = new TopicPartition("t", 2);
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      long epoch = store.takeWriterEpoch();
      assertThatThrownBy(
              () -> store.storedOffsetsAtStart(List.of(p0, new TopicPartition("other", 0)), epoch))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("several topics")
          .hasMessageContaining("timestampFrom(");
      // The first start stores every partition the topic has then.
      assertThat(store.storedOffsetsAtStart(List.of(p0, p1), epoch)).isEmpty();
      store.storeStartOffsets(Map.of(p0, 0L, p1, 0L), epoch);

      // Before the epoch (a deployment that cannot run must not fence the running one) and after.
      assertThatThrownBy(() -> store.checkBeforeEpoch(List.of(p0, p1, p2)))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("t-2")
          .hasMessageContaining("timestampFrom(");
      assertThatThrownBy(() -> store.storedOffsetsAtStart(List.of(p0, p1, p2), epoch))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("t-2")
          .hasMessageContaining("timestampFrom(");
      assertThatThrownBy(() -> store.storeStartOffsets(Map.of(p2, 0L), epoch))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("t-2")
          .hasMessageContaining("timestampFrom(");
      assertThat(store.storedOffsets()).containsOnlyKeys(p0, p1);
    }
  }

  @Test
  void anOlderDriverIsFencedWhenANewerOneTakesTheEpoch() {
    CassandraSink<String[]> sink = profilesSink("older-driver", settings);
    TopicPartition tp = new TopicPartition("t", 0);
    long older;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      older = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(tp, 0L), older);
      assertThat(store.commitRanges(older, List.of(SourceRange.of("t", 0, 0, 10))))
          .extracting(c -> c.outcome())
          .containsExactly(CommitOutcome.COMMITTED);
      long newer = store.takeWriterEpoch();

      assertThat(store.commitRanges(older, List.of(SourceRange.of("t", 0, 10, 20))))
          .extracting(c -> c.outcome())
          .containsExactly(CommitOutcome.FENCED);
      assertThat(store.commitRanges(newer, List.of(SourceRange.of("t", 0, 0, 10))))
          .extracting(c -> c.outcome())
          .containsExactly(CommitOutcome.ALREADY_COMMITTED);
      assertThat(store.storedOffsets()).containsEntry(tp, 10L);
    }
  }

  /**
   * A commit that meets an unresponsive node (here paused with SIGSTOP until the store reports the
   * outcome unknown) reads the offsets again and decides again, instead of stopping the pipeline:
   * once when the read times out, once when the conditional batch itself does.
   */
  @Test
  void anOffsetsCommitThatTimesOutIsDecidedAgainFromTheStoredOffsets() throws Exception {
    CassandraSink<String[]> sink = profilesSink("commit-timeout", settings);
    // A short request timeout only where the node is paused on purpose: the fault under test.
    CassandraSink<String[]> impatient =
        profilesSink("commit-timeout", settings.requestTimeout(Duration.ofSeconds(3)));
    TopicPartition tp = new TopicPartition("t", 0);
    long epoch;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      epoch = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(tp, 0L), epoch);
    }
    AtomicInteger resumed = new AtomicInteger();
    try (OffsetStore store = impatient.openOffsetStore()) {
      assertThat(store.storedOffsets()).containsEntry(tp, 0L); // connected before the pause
      FaultPoints.set(
          CassandraOffsetStore.COMMIT_OUTCOME_UNKNOWN,
          () -> {
            signal("CONT");
            resumed.incrementAndGet();
          });

      signal("STOP");
      assertThat(store.commitRanges(epoch, List.of(SourceRange.of("t", 0, 0, 10))))
          .extracting(c -> c.outcome())
          .containsExactly(CommitOutcome.COMMITTED);
      assertThat(resumed).hasPositiveValue();

      AtomicBoolean paused = new AtomicBoolean();
      FaultPoints.set(
          CassandraOffsetStore.BEFORE_OFFSETS_BATCH,
          () -> {
            if (paused.compareAndSet(false, true)) {
              signal("STOP");
            }
          });
      int before = resumed.get();
      assertThat(store.commitRanges(epoch, List.of(SourceRange.of("t", 0, 10, 20))))
          .extracting(c -> c.outcome())
          .containsExactly(CommitOutcome.COMMITTED);
      assertThat(resumed.get()).isGreaterThan(before);
      assertThat(store.storedOffsets()).containsEntry(tp, 20L);
    } finally {
      signal("CONT");
    }
  }

  /** Upserts of (user_id, name) to the shared {@code profiles} table, as {@code pipeline}. */
  private static CassandraSink<String[]> profilesSink(String pipeline, CassandraSettings with) {
    return profilesSink(pipeline, with, b -> b);
  }

  /** Like {@link #profilesSink(String, CassandraSettings)} with the settings {@code extra} adds. */
  private static CassandraSink<String[]> profilesSink(
      String pipeline,
      CassandraSettings with,
      UnaryOperator<CassandraSink.Builder<String[]>> extra) {
    return extra
        .apply(
            CassandraSink.<String[]>idempotent(pipeline)
                .connection(with)
                .table(ks + ".profiles")
                .columns("user_id", "name")
                .values(v -> List.of(v[0], v[1]))
                .timestampFromSourceOffset())
        .build();
  }

  /** Sends {@code SIG<name>} to the Cassandra node's JVM. */
  private void signal(String name) {
    try {
      Process kill =
          new ProcessBuilder("kill", "-" + name, Long.toString(cassandra.pid()))
              .inheritIO()
              .start();
      assertThat(kill.waitFor()).as("kill -" + name).isZero();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Test
  void counterColumnsAndKeysThatCannotHoldThePositionAreRefusedBeforeTheStream() {
    cql("CREATE TABLE " + ks + ".clicks (campaign text PRIMARY KEY, n counter)");
    CassandraSink<String[]> counting =
        CassandraSink.<String[]>idempotent("counter")
            .connection(settings)
            .table(ks + ".clicks")
            .columns("campaign")
            .values(v -> List.of(v[0]))
            .timestampFromSourceOffset()
            .build();
    assertThatThrownBy(() -> epochOf(counting))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("counter column 'n'")
        .hasMessageContaining("runningTotal");

    cql(
        "CREATE TABLE "
            + ks
            + ".narrow (src_offset bigint PRIMARY KEY, src_topic text,"
            + " src_partition int, src_index int, id text)");
    CassandraSink<String[]> narrow =
        CassandraSink.<String[]>idempotent("narrow")
            .connection(settings)
            .table(ks + ".narrow")
            .columns("id")
            .values(v -> List.of(v[1]))
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    assertThatThrownBy(() -> epochOf(narrow))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("cannot hold the source-position key");

    CassandraSink<String[]> missing =
        CassandraSink.<String[]>idempotent("missing-keyspace")
            .connection(settings)
            .table("no_such_keyspace.t")
            .columns("id")
            .values(v -> List.of(v[1]))
            .timestampFromSourceOffset()
            .build();
    assertThatThrownBy(() -> epochOf(missing))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("keyspace 'no_such_keyspace' does not exist");
  }

  /** Users have columns named like CQL keywords; the sink quotes every name it writes. */
  @Test
  void reservedWordsAsColumnNamesAreWrittenByUpsertsAndRunningTotals() {
    cql("CREATE TABLE " + ks + ".kw (\"from\" text PRIMARY KEY, \"select\" text)");
    CassandraSink<String[]> upserts =
        CassandraSink.<String[]>idempotent("kw")
            .connection(settings)
            .table(ks + ".kw")
            .columns("from", "select")
            .values(v -> List.of(v[0], v[1]))
            .timestampFromSourceOffset()
            .build();
    epochOf(upserts);
    upserts.write(SourceRange.of("t", 0, 0, 3), 0, outputs(0, 3, null));
    assertThat(cql("SELECT \"select\" FROM " + ks + ".kw").get(0).getString(0)).isEqualTo("id-2");

    cql(
        "CREATE TABLE "
            + ks
            + ".kw_totals (\"order\" text PRIMARY KEY, \"limit\" bigint,"
            + " eos_applied map<text, bigint>)");
    CassandraSink<Long> totals =
        CassandraSink.<Long>idempotent("kw-totals")
            .connection(settings)
            .table(ks + ".kw_totals")
            .columns("order")
            .values(v -> List.of("c1"))
            .runningTotal("limit", offset -> 1)
            .build();
    epochOf(totals);
    writeAmounts(totals, 0, 5);
    writeAmounts(totals, 0, 5); // the replay adds nothing
    assertThat(cql("SELECT \"limit\" FROM " + ks + ".kw_totals").get(0).getLong(0)).isEqualTo(5);
  }

  /**
   * A running total is a conditional update of the row its columns name: a column outside the
   * primary key would pass the checks and fail in the first batch ("Non PRIMARY KEY columns found
   * in where clause").
   */
  @Test
  void aRunningTotalWhoseColumnsAreNotExactlyThePrimaryKeyIsRefusedNamingThem() {
    cql(
        "CREATE TABLE "
            + ks
            + ".wide_totals (campaign text PRIMARY KEY, region text, total bigint,"
            + " eos_applied map<text, bigint>)");
    CassandraSink<String[]> wide =
        CassandraSink.<String[]>idempotent("wide")
            .connection(settings)
            .table(ks + ".wide_totals")
            .columns("campaign", "region")
            .values(v -> List.of(v[0], v[1]))
            .runningTotal("total", v -> 1)
            .build();
    assertThatThrownBy(() -> epochOf(wide))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("[region]")
        .hasMessageContaining("columns(\"campaign\")");
  }

  private Map<String, Long> totals() {
    Map<String, Long> out = new HashMap<>();
    for (Row r : cql("SELECT campaign, total FROM " + ks + ".totals")) {
      out.put(r.getString(0), r.getLong(1));
    }
    return out;
  }

  @Test
  void runningTotalsStayExactWhenABatchIsReplayedAfterAFailureBeforeTheOffsetCommit() {
    cql(
        "CREATE TABLE "
            + ks
            + ".totals (campaign text PRIMARY KEY, total bigint,"
            + " eos_applied map<text, bigint>)");
    CassandraSink<String> sink =
        CassandraSink.<String>idempotent("totals")
            .connection(settings)
            .table(ks + ".totals")
            .columns("campaign")
            .values(List::of)
            .runningTotal("total", campaign -> 1)
            .build();
    try (StreamHarness h = new StreamHarness("totals", 3)) {
      Map<String, Long> reference = new HashMap<>();
      List<String[]> kv = new ArrayList<>();
      for (int i = 0; i < 600; i++) {
        String campaign = "campaign-" + (i % 11);
        reference.merge(campaign, 1L, Long::sum);
        kv.add(new String[] {"k" + i, campaign});
      }
      h.send(kv);
      AtomicBoolean fired =
          FaultPoints.failOnce(
              FaultPoints.IDEMPOTENT_BEFORE_OFFSET_COMMIT, "driver lost after the writes");
      Map<TopicPartition, Long> end = h.endOffsets();
      Throwable failure =
          h.run(
              sink,
              s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
              () -> stored(sink).equals(end));
      assertThat(failure).hasMessageContaining("injected");
      assertThat(totals()).as("the failed batch was written").isEqualTo(reference);

      FaultPoints.clear();
      List<BatchResult> results = new ArrayList<>();
      assertThat(
              h.run(
                  sink,
                  s -> {
                    s.onBatch(results::add);
                    ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink);
                  },
                  () -> stored(sink).equals(end)))
          .isNull();
      assertThat(totals()).as("the replay added nothing").isEqualTo(reference);
      assertThat(results.stream().mapToLong(BatchResult::recordsIn).sum()).isEqualTo(600);
      assertThat(results.stream().mapToLong(BatchResult::rowsWritten).sum()).isZero();
    }
  }

  private static long total(Map<TopicPartition, Long> offsets) {
    return offsets.values().stream().mapToLong(Long::longValue).sum();
  }

  /** Records of partition 0 of topic t at offsets [from, until), each for campaign c1. */
  private static MappedPartition<String, String, Long> amounts(long from, long until) {
    List<ConsumerRecord<String, String>> records = new ArrayList<>();
    for (long o = from; o < until; o++) {
      records.add(new ConsumerRecord<>("t", 0, o, "c1", Long.toString(o)));
    }
    return new MappedPartition<String, String, Long>(
        records.iterator(),
        r -> List.of(Long.parseLong(r.value())),
        SourceRange.of("t", 0, from, until));
  }

  private static void writeAmounts(CassandraSink<Long> sink, long from, long until) {
    sink.write(SourceRange.of("t", 0, from, until), from, amounts(from, until));
  }

  /** A running total of {@code column} in campaign {@code campaign}'s row of by_campaign. */
  private static CassandraSink<Long> totalOf(
      String campaign, String pipeline, String column, AmountFunction<Long> amount) {
    return CassandraSink.<Long>idempotent(pipeline)
        .connection(settings)
        .table(ks + ".by_campaign")
        .columns("campaign")
        .values(v -> List.of(campaign))
        .runningTotal(column, amount)
        .build();
  }

  private static Row byCampaign(String campaign) {
    return cql("SELECT clicks, revenue FROM "
            + ks
            + ".by_campaign WHERE campaign = '"
            + campaign
            + "'")
        .get(0);
  }

  private static void createByCampaign() {
    cql(
        "CREATE TABLE "
            + ks
            + ".by_campaign (campaign text PRIMARY KEY, clicks bigint, revenue bigint,"
            + " eos_applied map<text, bigint>)");
  }

  @Test
  void twoPipelinesKeepingRunningTotalsOnOneTableEachAddEveryRecordOnce() {
    // Pipeline ids of their own: the next test's pipeline "clicks" shares the offsets table.
    CassandraSink<Long> clicks = totalOf("c1", "both-clicks", "clicks", offset -> 1);
    CassandraSink<Long> revenue = totalOf("c1", "both-revenue", "revenue", offset -> 100 + offset);
    epochOf(clicks);
    epochOf(revenue);

    writeAmounts(clicks, 0, 5);
    writeAmounts(revenue, 0, 3);
    writeAmounts(clicks, 5, 8);
    writeAmounts(revenue, 3, 8);
    // Replays of either pipeline's ranges add nothing.
    writeAmounts(clicks, 0, 5);
    writeAmounts(revenue, 0, 8);
    writeAmounts(clicks, 5, 8);

    Row row = byCampaign("c1");
    assertThat(row.isNull(0) ? null : row.getLong(0)).as("clicks").isEqualTo(8L);
    assertThat(row.isNull(1) ? null : row.getLong(1))
        .as("revenue")
        .isEqualTo(8 * 100L + (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7));
  }

  @Test
  void aRunningTotalWrittenBeforeAppliedOffsetsNamedThePipelineIsContinuedExactly() {
    // As an older version left it: offsets 0..4 of t-0 applied, keyed by topic-partition only.
    cql(
        "INSERT INTO "
            + ks
            + ".by_campaign (campaign, clicks, eos_applied) VALUES ('legacy', 5, {'t-0': 4})");
    CassandraSink<Long> clicks = totalOf("legacy", "clicks", "clicks", offset -> 1);
    epochOf(clicks);

    writeAmounts(clicks, 0, 8); // a replay of 0..4 with 5..7 new
    writeAmounts(clicks, 3, 8);

    assertThat(byCampaign("legacy").getLong(0)).isEqualTo(8L);
    assertThat(
            cql("SELECT eos_applied FROM " + ks + ".by_campaign WHERE campaign = 'legacy'")
                .get(0)
                .getMap(0, String.class, Long.class))
        .as("the entry is moved under the pipeline's key")
        .isEqualTo(Map.of("clicks/t-0", 7L));
  }

  private static Map<TopicPartition, Long> stored(CassandraSink<?> sink) {
    try (OffsetStore store = sink.openOffsetStore()) {
      return store.storedOffsets();
    }
  }

  @Test
  @Order(Integer.MAX_VALUE)
  void theJobResumesFromStoredOffsetsAndSurvivesCassandraKilledMidStream() throws Exception {
    cql(
        "CREATE TABLE "
            + ks
            + ".events (src_topic text, src_partition int, src_offset bigint,"
            + " src_index int, id text, PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
    CassandraSink<String> sink =
        CassandraSink.<String>idempotent("events")
            .connection(settings)
            .table(ks + ".events")
            .columns("id")
            .values(List::of)
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    // A rate limit spreads the input over many batches, so the kill lands mid-stream.
    try (StreamHarness h =
        new StreamHarness(
            "events", 4, Map.of("spark.streaming.kafka.maxRatePerPartition", "400"))) {
      List<String> ids = new ArrayList<>();
      List<String[]> kv = new ArrayList<>();
      for (int i = 0; i < 8000; i++) {
        ids.add("event-" + i);
        kv.add(new String[] {"k" + i, "event-" + i});
      }
      h.send(kv.subList(0, 4000));
      Map<TopicPartition, Long> firstEnd = h.endOffsets();
      assertThat(
              h.run(
                  sink,
                  s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
                  () -> stored(sink).equals(firstEnd)))
          .isNull();

      h.send(kv.subList(4000, 8000));
      Map<TopicPartition, Long> end = h.endOffsets();
      long firstTotal = total(firstEnd);
      long endTotal = total(end);
      java.util.concurrent.atomic.AtomicBoolean killedMidStream =
          new java.util.concurrent.atomic.AtomicBoolean();
      java.util.concurrent.atomic.AtomicReference<Throwable> chaosFailure =
          new java.util.concurrent.atomic.AtomicReference<>();
      Thread chaos =
          new Thread(
              () -> {
                try {
                  // Once a batch of the second half is committed, while more are to come.
                  await("a batch of the second half committed")
                      .atMost(Duration.ofSeconds(120))
                      .until(() -> total(stored(sink)) > firstTotal);
                  killedMidStream.set(total(stored(sink)) < endTotal);
                  cassandra.kill();
                  Outage.lasting(Duration.ofSeconds(1), cassandra.nativePort());
                  cassandra.restart();
                } catch (Throwable t) {
                  chaosFailure.set(t);
                }
              });
      chaos.start();
      Throwable failure =
          h.run(
              sink,
              s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
              () -> stored(sink).equals(end));
      chaos.join();
      assertThat(chaosFailure.get()).as("killing and restarting Cassandra").isNull();
      assertThat(killedMidStream).as("Cassandra was killed before the stream caught up").isTrue();
      if (failure != null) {
        // The outage outlasted Spark's task retries: the pipeline stopped. Once Cassandra answers
        // again, a restart resumes from the stored offsets.
        org.awaitility.Awaitility.await()
            .atMost(java.time.Duration.ofSeconds(60))
            .ignoreExceptions()
            .until(() -> stored(sink) != null);
        assertThat(
                h.run(
                    sink,
                    s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
                    () -> stored(sink).equals(end)))
            .isNull();
      }
      // A session of its own: the shared one may still be reconnecting to the restarted node.
      List<String> written =
          CassandraTestSupport.cql(cassandra, "SELECT id FROM " + ks + ".events").stream()
              .map(x -> x.getString(0))
              .toList();
      assertThat(written)
          .hasSize(8000)
          .doesNotHaveDuplicates()
          .containsExactlyInAnyOrderElementsOf(ids);
    }
  }
}
