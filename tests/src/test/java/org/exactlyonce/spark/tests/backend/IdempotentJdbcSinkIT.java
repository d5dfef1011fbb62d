package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaRDD;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.internal.IdempotentBatch;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.internal.StreamMetrics;
import org.exactlyonce.spark.jdbc.JdbcIdempotentSink;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Strategy I on PostgreSQL: upserts under deterministic keys, offsets after the batch. */
class IdempotentJdbcSinkIT {
  /** A profile update: the newest name of a user wins. */
  record Profile(String user, String name, long eventTime) implements java.io.Serializable {}

  private JdbcTestSupport db;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    db.execute(
        "CREATE TABLE profiles (user_id text PRIMARY KEY, name text NOT NULL, version bigint NOT"
            + " NULL, source_position text)");
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
  }

  private String nameOf(String user) {
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery("SELECT name FROM profiles WHERE user_id = '" + user + "'")) {
      return rs.next() ? rs.getString(1) : null;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Writes the record at {@code offset} of partition 0 (user u1, the given name) through the sink.
   */
  private static void write(
      JdbcIdempotentSink<Profile> sink, long offset, String name, long eventTime) {
    ConsumerRecord<String, String> r = new ConsumerRecord<>("profiles", 0, offset, "u1", name);
    sink.write(
        SourceRange.of("profiles", 0, offset, offset + 1),
        offset,
        new MappedPartition<String, String, Profile>(
            List.of(r).iterator(),
            rec -> List.of(new Profile(rec.key(), rec.value(), eventTime)),
            SourceRange.of("profiles", 0, offset, offset + 1)));
  }

  private JdbcIdempotentSink.Builder<Profile> profiles() {
    return JdbcSink.<Profile>idempotent("profiles")
        .connection(db.settings)
        .table("profiles")
        .columns("user_id", "name")
        .values(p -> List.of(p.user(), p.name()))
        .upsertOn("user_id");
  }

  /**
   * A driver fenced by a newer one whose next batch holds only ranges the newer one committed
   * writes nothing, and must still stop: the replayed ranges go through the store's commit, which
   * checks the writer epoch. (Left out of it, the fenced driver went on running while the newer one
   * wrote.)
   */
  @Test
  void aFencedDriverWhoseBatchHoldsOnlyRangesTheNewerOneCommittedStops() {
    JdbcIdempotentSink<Profile> sink = profiles().versionFromSourceOffset("version").build();
    TopicPartition p0 = new TopicPartition("profiles", 0);
    SourceRange range = SourceRange.of("profiles", 0, 0, 10);
    long older;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      older = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(p0, 0L), older);
      long newer = store.takeWriterEpoch();
      assertThat(store.commitRanges(newer, List.of(range)))
          .extracting(c -> c.outcome())
          .containsOnly(CommitOutcome.COMMITTED); // the newer driver wrote the range
    }
    PipelineGuard guard = PipelineGuard.withoutContext(new StreamMetrics(List.of(), false));
    guard.markStored(sink.pipelineId(), List.of(p0));
    IdempotentBatch<String, String, Profile> batch =
        new IdempotentBatch<>(sink, rec -> List.of(), older, guard);
    try (StreamHarness h = new StreamHarness("idempotent-fenced", 1)) {
      JavaRDD<ConsumerRecord<String, String>> replay = h.sc.parallelize(List.of(), 1);

      assertThatThrownBy(() -> batch.commit(replay, List.of(range), 0L))
          .isInstanceOf(WriterFencedException.class);
    }
  }

  @Test
  void anUpsertReplayedWithOlderDataLeavesTheNewerValue() {
    JdbcIdempotentSink<Profile> sink = profiles().versionFromSourceOffset("version").build();
    validate(sink);

    write(sink, 7, "newer", 0);
    write(sink, 3, "older", 0); // a replay of an earlier range arrives late
    write(sink, 7, "newer", 0); // and the same range again

    assertThat(nameOf("u1")).isEqualTo("newer");
    assertThat(db.count("profiles")).isEqualTo(1);
  }

  @Test
  void anEventTimeVersionKeepsTheLatestEventWhateverTheOffsetOrder() {
    JdbcIdempotentSink<Profile> sink =
        profiles().versionFrom("version", Profile::eventTime).build();
    validate(sink);

    write(sink, 1, "at-2000", 2000);
    write(sink, 2, "at-1000", 1000); // later offset, older event (another partition's key)

    assertThat(nameOf("u1")).isEqualTo("at-2000");
  }

  /**
   * Writes the records of {@code values} at offsets 0, 1, ... of partition 0 in one range; each
   * record (one string) becomes the outputs {@code toOutputs} makes of it.
   */
  private static void writeRange(
      JdbcIdempotentSink<Profile> sink,
      List<String> values,
      Function<String, List<Profile>> toOutputs) {
    List<ConsumerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < values.size(); i++) {
      records.add(new ConsumerRecord<>("profiles", 0, i, "u1", values.get(i)));
    }
    SourceRange range = SourceRange.of("profiles", 0, 0, values.size());
    sink.write(
        range,
        0,
        new MappedPartition<String, String, Profile>(
            records.iterator(), rec -> toOutputs.apply(rec.value()), range));
  }

  /** The stored name of u1 after writing one range with the given batch size, in a fresh table. */
  private String equalVersionsWinner(
      int batchSize,
      UnaryOperator<JdbcIdempotentSink.Builder<Profile>> versioned,
      List<String> values,
      Function<String, List<Profile>> toOutputs) {
    db.execute("TRUNCATE profiles");
    JdbcIdempotentSink<Profile> sink = versioned.apply(profiles()).batchSize(batchSize).build();
    validate(sink);
    writeRange(sink, values, toOutputs);
    assertThat(db.count("profiles")).isEqualTo(1);
    return nameOf("u1");
  }

  @Test
  void outputsOfOneRecordWithTheSameSourceOffsetVersionGiveOneResultWhateverTheBatchSize() {
    // One record, two outputs of one key: both carry the record's offset as their version.
    var byOffset =
        (UnaryOperator<JdbcIdempotentSink.Builder<Profile>>)
            b -> b.versionFromSourceOffset("version");
    Function<String, List<Profile>> twoOutputs =
        v -> List.of(new Profile("u1", "first", 0), new Profile("u1", "second", 0));
    String oneChunk = equalVersionsWinner(1000, byOffset, List.of("r"), twoOutputs);
    String chunkPerRow = equalVersionsWinner(1, byOffset, List.of("r"), twoOutputs);

    assertThat(chunkPerRow).as("batchSize 1 vs 1000").isEqualTo(oneChunk).isEqualTo("second");
  }

  @Test
  void recordsWithTheSameEventTimeVersionGiveOneResultWhateverTheBatchSize() {
    // Two records of one key with the same event time: the later source position wins.
    var byEventTime =
        (UnaryOperator<JdbcIdempotentSink.Builder<Profile>>)
            b -> b.versionFrom("version", Profile::eventTime);
    Function<String, List<Profile>> sameTime = v -> List.of(new Profile("u1", v, 5000));
    String oneChunk = equalVersionsWinner(1000, byEventTime, List.of("first", "second"), sameTime);
    String chunkPerRow = equalVersionsWinner(1, byEventTime, List.of("first", "second"), sameTime);

    assertThat(chunkPerRow).as("batchSize 1 vs 1000").isEqualTo(oneChunk).isEqualTo("second");
  }

  @Test
  void aReplayOfAnEarlierPositionWithTheSameVersionLeavesTheLaterOne() {
    JdbcIdempotentSink<Profile> sink =
        profiles().versionFrom("version", Profile::eventTime).batchSize(1).build();
    validate(sink);

    write(sink, 8, "later", 5000);
    write(sink, 3, "earlier", 5000); // a replay of an earlier range arrives late
    write(sink, 8, "later", 5000); // and the same range again

    assertThat(nameOf("u1")).isEqualTo("later");
  }

  @Test
  void aRowWrittenBeforeTheTieBreakerExistedGivesWayToTheNextOutputOfItsVersion() {
    db.execute("INSERT INTO profiles (user_id, name, version) VALUES ('u1', 'old', 5000)");
    JdbcIdempotentSink<Profile> sink =
        profiles().versionFrom("version", Profile::eventTime).build();
    validate(sink);

    write(sink, 3, "new", 5000);
    write(sink, 2, "earlier", 5000);

    assertThat(nameOf("u1")).isEqualTo("new");
  }

  @Test
  void aVersionedUpsertOnATableWithoutTheTieBreakerColumnIsRefusedWithTheDdl() {
    db.execute(
        "CREATE TABLE old_profiles (user_id text PRIMARY KEY, name text, version bigint NOT NULL)");
    JdbcIdempotentSink<Profile> sink =
        JdbcSink.<Profile>idempotent("old-profiles")
            .connection(db.settings)
            .table("old_profiles")
            .columns("user_id", "name")
            .values(p -> List.of(p.user(), p.name()))
            .upsertOn("user_id")
            .versionFromSourceOffset("version")
            .build();
    assertThatThrownBy(() -> validate(sink))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("has no column 'source_position'")
        .hasMessageContaining("ALTER TABLE \"old_profiles\" ADD COLUMN \"source_position\" text")
        .hasMessageContaining("tieBreakerColumn(...)");

    db.execute("ALTER TABLE old_profiles ADD COLUMN source_position text");
    validate(sink);
  }

  @Test
  void aTableWithoutAUniqueIndexOnTheKeyIsRefusedBeforeTheStreamStarts() {
    db.execute(
        "CREATE TABLE loose (user_id text, name text, version bigint, source_position text)");
    JdbcIdempotentSink<Profile> sink =
        JdbcSink.<Profile>idempotent("loose")
            .connection(db.settings)
            .table("loose")
            .columns("user_id", "name")
            .values(p -> List.of(p.user(), p.name()))
            .upsertOn("user_id")
            .versionFromSourceOffset("version")
            .build();
    assertThatThrownBy(() -> validate(sink))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("no unique index on exactly [user_id]")
        .hasMessageContaining("CREATE UNIQUE INDEX ON \"loose\" (\"user_id\")");
  }

  /** Users have columns named like SQL keywords; the sink quotes every name it writes. */
  @Test
  void reservedWordsAsTableAndColumnNamesAreUpsertedWithTheirVersions() {
    db.execute(
        "CREATE TABLE \"order\" (\"user\" text PRIMARY KEY, \"select\" text NOT NULL,"
            + " \"offset\" bigint, \"group\" text)");
    JdbcIdempotentSink<Profile> sink =
        JdbcSink.<Profile>idempotent("orders")
            .connection(db.settings)
            .table("order")
            .columns("user", "select")
            .values(p -> List.of(p.user(), p.name()))
            .upsertOn("user")
            .versionFrom("offset", Profile::eventTime)
            .tieBreakerColumn("group")
            .build();
    validate(sink);

    write(sink, 0, "first", 1);
    write(sink, 2, "newer", 3);
    write(sink, 1, "older", 2);

    assertThat(db.count("\"order\"")).isEqualTo(1);
    try (var c = db.connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT \"select\" FROM \"order\"")) {
      rs.next();
      assertThat(rs.getString(1)).isEqualTo("newer");
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A table whose only unique index on the key is {@code index}: ON CONFLICT cannot use it. */
  private JdbcIdempotentSink<Profile> sinkOnKeyIndexedBy(String index) {
    db.execute(
        "CREATE TABLE keyed (user_id text, name text, version bigint, source_position text)");
    db.execute(index);
    return JdbcSink.<Profile>idempotent("keyed")
        .connection(db.settings)
        .table("keyed")
        .columns("user_id", "name")
        .values(p -> List.of(p.user(), p.name()))
        .upsertOn("user_id")
        .versionFromSourceOffset("version")
        .build();
  }

  @Test
  void aPartialUniqueIndexOnTheKeyIsRefusedNamingTheIndex() {
    JdbcIdempotentSink<Profile> sink =
        sinkOnKeyIndexedBy(
            "CREATE UNIQUE INDEX keyed_partial ON keyed (user_id) WHERE name IS NOT NULL");
    assertThatThrownBy(() -> validate(sink))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("keyed_partial")
        .hasMessageContaining("partial")
        .hasMessageContaining("CREATE UNIQUE INDEX ON \"keyed\" (\"user_id\")");
  }

  @Test
  void anExpressionUniqueIndexOnTheKeyIsRefusedNamingTheIndex() {
    JdbcIdempotentSink<Profile> sink =
        sinkOnKeyIndexedBy("CREATE UNIQUE INDEX keyed_expr ON keyed (user_id, lower(name))");
    assertThatThrownBy(() -> validate(sink))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("keyed_expr")
        .hasMessageContaining("expression")
        .hasMessageContaining("CREATE UNIQUE INDEX ON \"keyed\" (\"user_id\")");
  }

  @Test
  void aDeferrableUniqueConstraintOnTheKeyIsRefusedNamingTheConstraint() {
    JdbcIdempotentSink<Profile> sink =
        sinkOnKeyIndexedBy(
            "ALTER TABLE keyed ADD CONSTRAINT keyed_deferrable UNIQUE (user_id) DEFERRABLE");
    assertThatThrownBy(() -> validate(sink))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("keyed_deferrable")
        .hasMessageContaining("deferrable")
        .hasMessageContaining("NOT DEFERRABLE");
  }

  /** Columns an index only carries (INCLUDE) are not part of its key: ON CONFLICT can use it. */
  @Test
  void aUniqueIndexOnTheKeyThatIncludesOtherColumnsIsAccepted() {
    JdbcIdempotentSink<Profile> sink =
        sinkOnKeyIndexedBy("CREATE UNIQUE INDEX keyed_covering ON keyed (user_id) INCLUDE (name)");
    org.assertj.core.api.Assertions.assertThatCode(() -> validate(sink)).doesNotThrowAnyException();
  }

  private static void validate(JdbcIdempotentSink<?> sink) {
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
    }
  }

  @Test
  void everyRecordIsWrittenOnceWhenTheDriverFailsBetweenWritingAndCommittingOffsets() {
    db.execute(
        "CREATE TABLE events (id text NOT NULL, src_topic text, src_partition int, src_offset bigint,"
            + " src_index int, UNIQUE (src_topic, src_partition, src_offset, src_index))");
    try (StreamHarness h = new StreamHarness("events", 4)) {
      JdbcIdempotentSink<String> sink =
          JdbcSink.<String>idempotent("events-to-postgres")
              .connection(db.settings)
              .table("events")
              .columns("id")
              .values(List::of)
              .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
              .build();
      List<String> ids = new ArrayList<>();
      List<String[]> kv = new ArrayList<>();
      for (int i = 0; i < 2000; i++) {
        ids.add("event-" + i);
        kv.add(new String[] {"k" + i, "event-" + i});
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
              () -> db.stored("events-to-postgres").equals(end));
      assertThat(failure).hasMessageContaining("injected");
      long writtenBeforeRestart = db.count("events");
      assertThat(writtenBeforeRestart).as("the failed batch did write").isPositive();

      FaultPoints.clear();
      assertThat(
              h.run(
                  sink,
                  s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
                  () -> db.stored("events-to-postgres").equals(end)))
          .isNull();

      List<String> written = db.allIds("events");
      assertThat(written)
          .hasSize(2000)
          .doesNotHaveDuplicates()
          .containsExactlyInAnyOrderElementsOf(ids);
    }
  }
}
