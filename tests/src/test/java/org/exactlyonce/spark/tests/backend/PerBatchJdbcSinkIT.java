package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.internal.BatchPlan;
import org.exactlyonce.spark.internal.Outcomes;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.internal.StreamMetrics;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.BatchSink.BatchCommit;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import scala.Tuple2;

/** Strategy T-batch: aggregates after a shuffle, committed with every range of the batch. */
class PerBatchJdbcSinkIT {
  private StreamHarness h;
  private JdbcTestSupport db;
  private final Map<String, Long> reference = new HashMap<>();
  private int produced;

  @BeforeEach
  void setUp() {
    h = new StreamHarness("conversions", 4);
    db = new JdbcTestSupport();
    db.execute("CREATE TABLE conversions (campaign text PRIMARY KEY, total bigint NOT NULL)");
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
    h.close();
  }

  private JdbcBatchSink.Builder<Tuple2<String, Long>> builder() {
    return JdbcSink.<Tuple2<String, Long>>perBatch("conversions-per-campaign")
        .connection(db.settings)
        .table("conversions")
        .columns("campaign", "total")
        .values(t -> List.of(t._1(), t._2()))
        .upsertOn("campaign")
        .accumulating("total");
  }

  /** Conversions: value = campaign; the reference counts them. */
  private void produce(int n) {
    List<String[]> kv = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String campaign = "campaign-" + (produced * 7 + i * 13) % 23;
      reference.merge(campaign, 1L, Long::sum);
      kv.add(new String[] {"conversion-" + produced++, campaign});
    }
    h.send(kv);
  }

  private Map<String, Long> totals() {
    Map<String, Long> out = new HashMap<>();
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement().executeQuery("SELECT campaign, total FROM conversions")) {
      while (rs.next()) {
        out.put(rs.getString(1), rs.getLong(2));
      }
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
    return out;
  }

  private Throwable runUntilCaughtUp(JdbcBatchSink<Tuple2<String, Long>> sink) {
    return h.run(
        sink,
        stream ->
            ExactlyOnce.foreachBatch(
                stream,
                rdd ->
                    rdd.mapToPair(r -> new Tuple2<>(r.value(), 1L))
                        .reduceByKey(Long::sum)
                        .map(t -> t),
                sink),
        () -> db.stored("conversions-per-campaign").equals(h.endOffsets()));
  }

  private void runningTotalsSurviveAFailureBetweenWritingAndCommitting(
      JdbcBatchSink<Tuple2<String, Long>> sink, String faultPoint) {
    produce(1500);
    assertThat(runUntilCaughtUp(sink)).isNull();
    assertThat(totals()).isEqualTo(reference);

    produce(1500);
    AtomicBoolean fired = FaultPoints.failOnce(faultPoint, "crash between writing and committing");
    Map<String, Long> before = totals();
    Throwable failure = runUntilCaughtUp(sink);
    assertThat(fired).isTrue();
    assertThat(failure).hasMessageContaining("injected");
    assertThat(totals()).as("nothing of the failed batch is visible").isEqualTo(before);

    FaultPoints.clear();
    assertThat(runUntilCaughtUp(sink)).isNull(); // the restarted job replays the failed batch
    produce(1000);
    assertThat(runUntilCaughtUp(sink)).isNull();

    assertThat(totals()).isEqualTo(reference);
    assertThat(reference.values().stream().mapToLong(Long::longValue).sum()).isEqualTo(4000);
  }

  @Test
  void collectedRunningTotalsEqualTheInputsCountsDespiteAFailureBeforeCommit() {
    runningTotalsSurviveAFailureBetweenWritingAndCommitting(
        builder().build(), FaultPoints.BATCH_BEFORE_COMMIT);
  }

  @Test
  void stagedRunningTotalsEqualTheInputsCountsDespiteAFailureBeforePublish() {
    runningTotalsSurviveAFailureBetweenWritingAndCommitting(
        builder().staged().build(), FaultPoints.BATCH_BEFORE_PUBLISH);
    assertThat(db.count("conversions_eos_staging")).as("staging rows left").isZero();
  }

  @Test
  void aReplayedBatchWritesNothingAndAPartlyCommittedOneIsAnErrorNamingItsRanges() {
    JdbcBatchSink<Tuple2<String, Long>> sink = builder().build();
    TopicPartition p0 = new TopicPartition(h.topic, 0);
    TopicPartition p1 = new TopicPartition(h.topic, 1);
    long epoch;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      epoch = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(p0, 0L, p1, 0L), epoch);
    }
    List<SourceRange> batch =
        List.of(SourceRange.of(h.topic, 0, 0, 10), SourceRange.of(h.topic, 1, 0, 10));
    var results =
        h.sc.parallelize(
            List.of(new Tuple2<>("campaign-1", 5L), new Tuple2<>("campaign-2", 3L)), 2);

    BatchCommit first = sink.commitBatch(epoch, batch, results);
    BatchCommit replay = sink.commitBatch(epoch, batch, results);

    assertThat(first.commits()).extracting(c -> c.outcome()).containsOnly(CommitOutcome.COMMITTED);
    assertThat(replay.commits())
        .extracting(c -> c.outcome())
        .containsOnly(CommitOutcome.ALREADY_COMMITTED);
    assertThat(replay.rowsWritten()).isZero();
    assertThat(totals()).containsOnly(Map.entry("campaign-1", 5L), Map.entry("campaign-2", 3L));

    List<SourceRange> next =
        List.of(SourceRange.of(h.topic, 0, 10, 20), SourceRange.of(h.topic, 1, 10, 20));
    db.execute(
        "UPDATE eos_offsets SET until_offset = 20 WHERE topic = '"
            + h.topic
            + "' AND kafka_partition = 0");
    assertThatThrownBy(() -> sink.commitBatch(epoch, next, results))
        .isInstanceOf(OffsetMismatchException.class)
        .hasMessageContaining("partly committed")
        .hasMessageContaining(h.topic + "-0[10, 20)")
        .hasMessageContaining(h.topic + "-1[10, 20)");
    assertThat(totals()).containsOnly(Map.entry("campaign-1", 5L), Map.entry("campaign-2", 3L));
  }

  /**
   * A driver fenced by a newer one whose next batch holds only ranges the newer one committed has
   * nothing to write, and must still stop: its batch plan skips those ranges through the sink's
   * commit, which checks the writer epoch first. (Skipped without a commit, the fenced driver went
   * on running while the newer one wrote.) The same plan serves the DStream and the Structured
   * Streaming per-batch paths.
   */
  @Test
  void aFencedDriverWhoseBatchHoldsOnlyRangesTheNewerOneCommittedStops() {
    JdbcBatchSink<Tuple2<String, Long>> sink = builder().build();
    TopicPartition p0 = new TopicPartition(h.topic, 0);
    long older;
    long newer;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      older = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(p0, 0L), older);
      newer = store.takeWriterEpoch();
    }
    List<SourceRange> batch = List.of(SourceRange.of(h.topic, 0, 0, 10));
    var results = h.sc.parallelize(List.of(new Tuple2<>("campaign-1", 10L)), 1);
    assertThat(sink.commitBatch(newer, batch, results).commits())
        .extracting(c -> c.outcome())
        .containsOnly(CommitOutcome.COMMITTED);

    BatchPlan plan = BatchPlan.of(sink, batch); // the older driver's view of the same range
    BatchCommit commit = plan.commit(sink, older, h.sc.emptyRDD(), h.sc.emptyRDD());
    var outcomes = plan.outcomes(commit);

    assertThat(plan.writes()).isFalse();
    assertThat(outcomes).extracting(c -> c.outcome()).containsOnly(CommitOutcome.FENCED);
    PipelineGuard guard = PipelineGuard.withoutContext(new StreamMetrics(List.of(), false));
    assertThatThrownBy(() -> Outcomes.check(guard, sink.pipelineId(), older, outcomes))
        .isInstanceOf(WriterFencedException.class);
    assertThat(totals()).containsOnly(Map.entry("campaign-1", 10L));
  }

  /** A staged per-batch sink on campaign_stats: the total of {@code column} per campaign. */
  private JdbcBatchSink<Tuple2<String, Long>> stagedTotalOf(String column) {
    return totalOf(column).staged().build();
  }

  /** A per-batch sink on campaign_stats (collected unless made staged): {@code column}'s total. */
  private JdbcBatchSink.Builder<Tuple2<String, Long>> totalOf(String column) {
    return JdbcSink.<Tuple2<String, Long>>perBatch(column + "-per-campaign")
        .connection(db.settings)
        .table("campaign_stats")
        .columns("campaign", column)
        .values(t -> List.of(t._1(), t._2()))
        .upsertOn("campaign")
        .accumulating(column);
  }

  /**
   * A row whose accumulating column holds NULL (written by another program, or before the column
   * was filled) takes the amount added, staged or collected, instead of staying NULL for good (in
   * SQL, NULL + 4 is NULL).
   */
  @Test
  void anAccumulatingColumnHoldingNullTakesTheAmountAdded() {
    db.execute(
        "CREATE TABLE campaign_stats (campaign text PRIMARY KEY, clicks bigint, revenue bigint)");
    db.execute("INSERT INTO campaign_stats VALUES ('c1', NULL, NULL)");

    startAndCommit(stagedTotalOf("clicks"), List.of(new Tuple2<>("c1", 4L)));
    startAndCommit(totalOf("revenue").build(), List.of(new Tuple2<>("c1", 700L)));

    try (var c = db.connect();
        ResultSet rs =
            c.createStatement().executeQuery("SELECT clicks, revenue FROM campaign_stats")) {
      rs.next();
      assertThat(rs.getObject(1)).as("clicks (staged)").isEqualTo(4L);
      assertThat(rs.getObject(2)).as("revenue (collected)").isEqualTo(700L);
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Validates, starts at offset 0 of partition 0 and commits [0, 10) with {@code results}. */
  private BatchCommit startAndCommit(
      JdbcBatchSink<Tuple2<String, Long>> sink, List<Tuple2<String, Long>> results) {
    long epoch;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      epoch = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(new TopicPartition(h.topic, 0), 0L), epoch);
    }
    return sink.commitBatch(
        epoch, List.of(SourceRange.of(h.topic, 0, 0, 10)), h.sc.parallelize(results, 2));
  }

  /**
   * Both sinks stage through the default staging table of campaign_stats, which the first created
   * with its own columns only.
   */
  @Test
  void twoStagedPipelinesWithOtherColumnsOfOneTableShareItsStagingTable() {
    db.execute(
        "CREATE TABLE campaign_stats (campaign text PRIMARY KEY, clicks bigint NOT NULL DEFAULT 0,"
            + " revenue bigint NOT NULL DEFAULT 0)");

    BatchCommit clicks = startAndCommit(stagedTotalOf("clicks"), List.of(new Tuple2<>("c1", 4L)));
    BatchCommit revenue =
        startAndCommit(stagedTotalOf("revenue"), List.of(new Tuple2<>("c1", 700L)));

    assertThat(clicks.commits()).extracting(c -> c.outcome()).containsOnly(CommitOutcome.COMMITTED);
    assertThat(revenue.commits())
        .extracting(c -> c.outcome())
        .containsOnly(CommitOutcome.COMMITTED);
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement().executeQuery("SELECT clicks, revenue FROM campaign_stats")) {
      rs.next();
      assertThat(rs.getLong(1)).isEqualTo(4L);
      assertThat(rs.getLong(2)).isEqualTo(700L);
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void aStagingTableWhoseColumnTypeDiffersFromTheOutputIsRefusedNamingTheColumn() {
    db.execute("CREATE TABLE campaign_stats (campaign text PRIMARY KEY, clicks bigint)");
    db.execute(
        "CREATE TABLE campaign_stats_eos_staging (campaign text, clicks integer, eos_pipeline"
            + " varchar(200), eos_attempt varchar(64), eos_part integer)");
    assertThatThrownBy(stagedTotalOf("clicks")::checkOutputs)
        .isInstanceOf(org.exactlyonce.spark.SinkConfigurationException.class)
        .hasMessageContaining("staging table 'campaign_stats_eos_staging'")
        .hasMessageContaining("'clicks'")
        .hasMessageContaining("DROP TABLE \"campaign_stats_eos_staging\"");
  }

  /**
   * Staged upserts with an accumulating column reduce the batch per key in SQL, taking max() of the
   * other columns; PostgreSQL has no max() of boolean or json, so the first publish would fail.
   */
  @Test
  void aStagedColumnWithoutMaxIsRefusedBeforeTheStreamNamingIt() {
    db.execute("CREATE TABLE flagged (campaign text PRIMARY KEY, total bigint, active boolean)");
    JdbcBatchSink<Tuple2<String, Long>> sink =
        JdbcSink.<Tuple2<String, Long>>perBatch("flagged-per-campaign")
            .connection(db.settings)
            .table("flagged")
            .columns("campaign", "total", "active")
            .values(t -> List.of(t._1(), t._2(), true))
            .upsertOn("campaign")
            .accumulating("total")
            .staged()
            .build();
    assertThatThrownBy(sink::checkOutputs)
        .isInstanceOf(org.exactlyonce.spark.SinkConfigurationException.class)
        .hasMessageContaining("'active'")
        .hasMessageContaining("boolean")
        .hasMessageContaining("max()");
  }

  /**
   * The check above must refuse only columns without max(): a text column beside an accumulating
   * one has max(), and the sink starts (the check once failed for every type, since its probe query
   * asked Jdbi for a mapper of Object).
   */
  @Test
  void aStagedColumnWithMaxBesideAnAccumulatingOneIsAccepted() {
    db.execute("CREATE TABLE labelled (campaign text PRIMARY KEY, total bigint, label text)");
    JdbcBatchSink<Tuple2<String, Long>> sink =
        JdbcSink.<Tuple2<String, Long>>perBatch("labelled-per-campaign")
            .connection(db.settings)
            .table("labelled")
            .columns("campaign", "total", "label")
            .values(t -> List.of(t._1(), t._2(), "label"))
            .upsertOn("campaign")
            .accumulating("total")
            .staged()
            .build();
    sink.checkOutputs();
  }
}
