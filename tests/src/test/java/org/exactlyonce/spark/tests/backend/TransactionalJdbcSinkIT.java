package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.jdbc.JdbcWriter;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.jdbi.v3.core.statement.PreparedBatch;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Strategy T against a real PostgreSQL: the commit decision, replays, failures and fencing. */
class TransactionalJdbcSinkIT {
  private static final String TOPIC = "clicks";
  private static final TopicPartition TP = new TopicPartition(TOPIC, 0);

  private JdbcTestSupport db;
  private JdbcSink<Out> sink;
  private long epoch;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    sink = tableSink("p1");
    epoch = start(sink, 0);
  }

  private JdbcSink<Out> tableSink(String pipeline) {
    return JdbcSink.<Out>transactional(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .batchSize(100)
        .build();
  }

  /** What the driver does at start: validate, take an epoch, store the start offset. */
  private static long start(JdbcSink<?> s, long startOffset) {
    s.checkOutputs();
    try (OffsetStore store = s.openOffsetStore()) {
      store.validate();
      long e = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(TP, startOffset), e);
      return e;
    }
  }

  private PartitionCommit commit(long from, long until) {
    return sink.commit(
        epoch,
        SourceRange.of(TOPIC, 0, from, until),
        JdbcTestSupport.outputs(TOPIC, 0, from, until));
  }

  private static List<String> ids(long from, long until) {
    return LongStream.range(from, until).mapToObj(o -> TOPIC + "-0-" + o).toList();
  }

  /**
   * The COPY path (plain table mappings) must store exactly what batched INSERTs store, whatever
   * the text holds: quotes, commas, newlines, backslashes, empty strings versus NULL, bytes.
   */
  @Test
  void copyStoresTheSameValuesAsInsertsForAwkwardText() throws Exception {
    db.execute(
        "CREATE TABLE awkward (n int, txt text, bin bytea, ts timestamptz, ok boolean,"
            + " amount numeric, via text)");
    List<Object[]> values =
        List.of(
            new Object[] {
              1,
              "plain",
              new byte[] {0, 1, (byte) 255},
              java.time.Instant.parse("2026-11-24T10:15:30.123456Z"),
              true,
              new java.math.BigDecimal("12.50")
            },
            new Object[] {
              2,
              "quote \" comma , newline \n cr \r backslash \\ tab \t",
              new byte[0],
              null,
              false,
              null
            },
            new Object[] {
              3,
              "",
              null,
              java.time.OffsetDateTime.parse("2026-01-02T03:04:05+02:00"),
              null,
              new java.math.BigDecimal("-0.001")
            },
            new Object[] {
              4,
              null,
              "ünïcødé ✓".getBytes(java.nio.charset.StandardCharsets.UTF_8),
              null,
              true,
              java.math.BigDecimal.ZERO
            },
            new Object[] {5, "\\N", null, null, null, null});
    for (boolean copy : new boolean[] {true, false}) {
      JdbcSink<Object[]> awkward =
          JdbcSink.<Object[]>transactional(copy ? "copy" : "insert")
              .connection(db.settings)
              .table("awkward")
              .columns("n", "txt", "bin", "ts", "ok", "amount", "via")
              .values(
                  v -> {
                    List<Object> row = new java.util.ArrayList<>(java.util.Arrays.asList(v));
                    row.add(copy ? "copy" : "insert");
                    return row;
                  })
              .copy(copy)
              .build();
      long e = start(awkward, 0);
      assertThat(awkward.toString()).contains(copy ? ", COPY" : "batchSize");
      List<ConsumerRecord<String, String>> records = new java.util.ArrayList<>();
      for (int i = 0; i < values.size(); i++) {
        records.add(new ConsumerRecord<>(TOPIC, 0, i, "k", "v"));
      }
      PartitionCommit c =
          awkward.commit(
              e,
              SourceRange.of(TOPIC, 0, 0, values.size()),
              new org.exactlyonce.spark.internal.MappedPartition<String, String, Object[]>(
                  records.iterator(),
                  r -> List.<Object[]>of(values.get((int) r.offset())),
                  SourceRange.of(TOPIC, 0, 0, values.size())));
      assertThat(c.rowsWritten()).isEqualTo(values.size());
    }
    List<String> copied = new java.util.ArrayList<>();
    List<String> inserted = new java.util.ArrayList<>();
    try (var c = db.connect();
        var rs =
            c.createStatement()
                .executeQuery(
                    "SELECT via, n, txt, encode(bin, 'hex'), ts, ok, amount FROM awkward ORDER BY via, n")) {
      while (rs.next()) {
        String row =
            rs.getInt(2)
                + "|"
                + rs.getString(3)
                + "|"
                + rs.getString(4)
                + "|"
                + rs.getString(5)
                + "|"
                + rs.getString(6)
                + "|"
                + rs.getString(7);
        (rs.getString(1).equals("copy") ? copied : inserted).add(row);
      }
    }
    assertThat(copied).hasSize(values.size()).isEqualTo(inserted);
    assertThat(copied.get(1)).contains("quote \" comma , newline \n cr \r backslash \\ tab");
    assertThat(copied.get(2)).startsWith("3||"); // the empty string stays empty, not NULL
    assertThat(copied.get(3)).startsWith("4|null|");
  }

  @Test
  void freshRangeIsWrittenWithItsOffsetInOneCommit() {
    PartitionCommit c = commit(0, 250);

    assertThat(c.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(c.rowsWritten()).isEqualTo(250);
    assertThat(c.recordsIn()).isEqualTo(250);
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(ids(0, 250));
    assertThat(db.stored("p1")).containsEntry(TP, 250L);
  }

  @Test
  void replayedRangeIsASuccessThatWritesNothing() {
    commit(0, 100);
    commit(100, 200);

    PartitionCommit replay = commit(0, 100);

    assertThat(replay.outcome()).isEqualTo(CommitOutcome.ALREADY_COMMITTED);
    assertThat(replay.outcome().isSuccess()).isTrue();
    assertThat(replay.rowsWritten()).isZero();
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(ids(0, 200));
    assertThat(db.stored("p1")).containsEntry(TP, 200L);
  }

  @Test
  void rangeWhosePrefixAZombieCommittedWritesOnlyTheRest() {
    commit(0, 40); // the zombie's shorter attempt

    PartitionCommit c = commit(0, 100);

    assertThat(c.outcome()).isEqualTo(CommitOutcome.TRIMMED);
    assertThat(c.rowsWritten()).isEqualTo(60);
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(ids(0, 100));
    assertThat(db.stored("p1")).containsEntry(TP, 100L);
  }

  @Test
  void rangeAfterAGapIsRefusedAndWritesNothing() {
    commit(0, 100);

    PartitionCommit c = commit(150, 200);

    assertThat(c.outcome()).isEqualTo(CommitOutcome.GAP);
    assertThat(c.storedBefore()).isEqualTo(100);
    assertThat(db.count()).isEqualTo(100);
    assertThat(db.stored("p1")).containsEntry(TP, 100L);
  }

  @Test
  void concurrentCopiesOfOneRangeWriteItOnce() throws Exception {
    // A writer that stays inside its transaction until the second copy waits for the row lock
    // (a speculative task against the original), or has finished without waiting (which the
    // outcomes below then show).
    CountDownLatch firstIsWriting = new CountDownLatch(1);
    java.util.concurrent.atomic.AtomicReference<Future<PartitionCommit>> second =
        new java.util.concurrent.atomic.AtomicReference<>();
    JdbcWriter<Out> slow =
        (handle, rows) -> {
          PreparedBatch b =
              handle.prepareBatch(
                  "INSERT INTO out (id, topic, kafka_partition, src_offset) VALUES (?, ?, ?, ?)");
          rows.forEach(r -> b.add(JdbcTestSupport.values(r).toArray()));
          b.execute();
          if (firstIsWriting.getCount() > 0) {
            firstIsWriting.countDown();
            await("the second copy waits for the row lock, or is done")
                .atMost(Duration.ofSeconds(60))
                .until(
                    () ->
                        sessionsWaitingForALock() > 0
                            || (second.get() != null && second.get().isDone()));
          }
        };
    JdbcSink<Out> slowSink =
        JdbcSink.<Out>transactional("p1")
            .connection(db.settings)
            .writer(slow)
            .batchSize(100)
            .build();
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      SourceRange r = SourceRange.of(TOPIC, 0, 0, 500);
      Future<PartitionCommit> a =
          pool.submit(() -> slowSink.commit(epoch, r, JdbcTestSupport.outputs(TOPIC, 0, 0, 500)));
      assertThat(firstIsWriting.await(30, TimeUnit.SECONDS)).isTrue();
      Future<PartitionCommit> b =
          pool.submit(() -> slowSink.commit(epoch, r, JdbcTestSupport.outputs(TOPIC, 0, 0, 500)));
      second.set(b);

      List<CommitOutcome> outcomes =
          List.of(a.get(60, TimeUnit.SECONDS).outcome(), b.get(60, TimeUnit.SECONDS).outcome());
      assertThat(outcomes)
          .containsExactlyInAnyOrder(CommitOutcome.COMMITTED, CommitOutcome.ALREADY_COMMITTED);
    } finally {
      pool.shutdownNow();
    }
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(ids(0, 500));
  }

  @Test
  void taskFailingAfterHalfItsRowsLeavesNothingAndTheRetryCompletesTheRange() {
    AtomicInteger chunks = new AtomicInteger();
    JdbcWriter<Out> failsOnSecondChunkOnce =
        (handle, rows) -> {
          PreparedBatch b =
              handle.prepareBatch(
                  "INSERT INTO out (id, topic, kafka_partition, src_offset) VALUES (?, ?, ?, ?)");
          rows.forEach(r -> b.add(JdbcTestSupport.values(r).toArray()));
          b.execute();
          if (chunks.incrementAndGet() == 5) {
            throw new IllegalStateException("injected: executor lost after 500 of 1000 rows");
          }
        };
    JdbcSink<Out> flaky =
        JdbcSink.<Out>transactional("p1")
            .connection(db.settings)
            .writer(failsOnSecondChunkOnce)
            .batchSize(100)
            .build();
    SourceRange r = SourceRange.of(TOPIC, 0, 0, 1000);

    assertThatThrownBy(() -> flaky.commit(epoch, r, JdbcTestSupport.outputs(TOPIC, 0, 0, 1000)))
        .hasMessageContaining("injected");
    assertThat(db.count()).as("rows visible after the failed attempt").isZero();
    assertThat(db.stored("p1")).containsEntry(TP, 0L);

    PartitionCommit retry = flaky.commit(epoch, r, JdbcTestSupport.outputs(TOPIC, 0, 0, 1000));
    assertThat(retry.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(ids(0, 1000));
  }

  @Test
  void olderWriterIsFencedOnceANewerOneStartsAndWritesNothingMore() {
    commit(0, 100);
    long newer = start(tableSink("p1"), 0); // a second driver on the same pipeline id

    PartitionCommit old = commit(100, 200);
    assertThat(old.outcome()).isEqualTo(CommitOutcome.FENCED);
    assertThat(db.count()).isEqualTo(100);

    PartitionCommit fresh =
        sink.commit(
            newer, SourceRange.of(TOPIC, 0, 100, 200), JdbcTestSupport.outputs(TOPIC, 0, 100, 200));
    assertThat(fresh.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(newer).isGreaterThan(epoch);
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(ids(0, 200));
  }

  @Test
  void twoPipelinesKeepSeparateOffsets() {
    commit(0, 100);
    JdbcSink<Out> other = tableSink("p2");
    long otherEpoch = start(other, 0);
    other.commit(
        otherEpoch, SourceRange.of(TOPIC, 0, 0, 10), JdbcTestSupport.outputs(TOPIC, 0, 0, 10));

    assertThat(db.stored("p1")).containsEntry(TP, 100L);
    assertThat(db.stored("p2")).containsEntry(TP, 10L);
  }

  @Test
  void missingOutputTableIsNamedBeforeTheStreamStarts() {
    JdbcSink<Out> s =
        JdbcSink.<Out>transactional("p3")
            .connection(db.settings)
            .table("no_such_table")
            .columns("id")
            .values(o -> List.of(o.id()))
            .build();
    assertThatThrownBy(() -> start(s, 0))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("'no_such_table' does not exist");
  }

  @Test
  void missingColumnIsNamedWithTheColumnsTheTableHas() {
    JdbcSink<Out> s =
        JdbcSink.<Out>transactional("p3")
            .connection(db.settings)
            .table("out")
            .columns("id", "campaign")
            .values(o -> List.of(o.id(), "x"))
            .build();
    assertThatThrownBy(() -> start(s, 0))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("no column 'campaign'")
        .hasMessageContaining("src_offset");
  }

  @Test
  void offsetsTableOfTheWrongShapeIsRefused() {
    db.execute("CREATE TABLE bad_offsets (pipeline_id text, topic text, kafka_partition text)");
    JdbcSink<Out> s =
        JdbcSink.<Out>transactional("p3")
            .connection(db.settings)
            .offsetsTable("bad_offsets")
            .table("out")
            .columns("id")
            .values(o -> List.of(o.id()))
            .build();
    assertThatThrownBy(() -> start(s, 0))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("offsets table 'bad_offsets' has the wrong shape")
        .hasMessageContaining("kafka_partition");
  }

  /** Users have columns named like SQL keywords; the sink quotes every name it writes. */
  @Test
  void reservedWordsAsTableAndColumnNamesAreWrittenWithCopyAndInserts() {
    db.execute(
        "CREATE TABLE \"user\" (\"order\" text NOT NULL, \"select\" text, \"offset\" bigint)");
    for (boolean copy : new boolean[] {true, false}) {
      JdbcSink<Out> s =
          JdbcSink.<Out>transactional(copy ? "kw-copy" : "kw-insert")
              .connection(db.settings)
              .table("user")
              .columns("order", "select", "offset")
              .values(o -> List.of(o.id(), o.topic(), o.offset()))
              .copy(copy)
              .build();
      long e = start(s, 0);
      PartitionCommit c =
          s.commit(e, SourceRange.of(TOPIC, 0, 0, 10), JdbcTestSupport.outputs(TOPIC, 0, 0, 10));
      assertThat(c.outcome()).isEqualTo(CommitOutcome.COMMITTED);
    }
    assertThat(db.count("\"user\"")).isEqualTo(20);
  }

  /**
   * Statements find an unqualified table in the first schema of the search path that has it; the
   * check before the start must look in the same place, not in current_schema() only.
   */
  @Test
  void outputTableIsFoundWhereStatementsFindItOnTheSearchPath() {
    db.execute("CREATE SCHEMA app");
    db.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = app, public',"
            + " current_database()); END $$");
    // "out" lives in public only; current_schema() is app.
    JdbcSink<Out> s = tableSink("on-search-path");
    long e = start(s, 0);
    assertThat(
            s.commit(e, SourceRange.of(TOPIC, 0, 0, 5), JdbcTestSupport.outputs(TOPIC, 0, 0, 5))
                .outcome())
        .isEqualTo(CommitOutcome.COMMITTED);
    assertThat(db.count("public.out")).isEqualTo(5);
  }

  /** What the driver does at start, with the writers table {@code writers}. */
  private void startWithWritersTable(String writers) {
    start(
        JdbcSink.<Out>transactional("p3")
            .connection(db.settings)
            .writersTable(writers)
            .table("out")
            .columns("id")
            .values(o -> List.of(o.id()))
            .build(),
        0);
  }

  @Test
  void writersTableWithoutAUniqueKeyOnThePipelineIsRefusedNamingTheFix() {
    db.execute(
        "CREATE TABLE bad_writers (pipeline_id text, writer_epoch bigint NOT NULL, taken_at"
            + " timestamptz NOT NULL DEFAULT now(), taken_by text)");
    assertThatThrownBy(() -> startWithWritersTable("bad_writers"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("writers table 'bad_writers' has no unique index on exactly")
        .hasMessageContaining("CREATE UNIQUE INDEX ON \"bad_writers\" (\"pipeline_id\")");
  }

  /**
   * A dead-letter table that already exists with another shape (say, an application's own table of
   * that name) is refused at start, not at the first bad record, mid-stream.
   */
  @Test
  void deadLetterTableOfAnotherShapeIsRefusedAtStartNamingTheFix() {
    db.execute("CREATE TABLE bad_letters (pipeline_id text, topic text, message text)");
    JdbcSink<Out> s =
        JdbcSink.<Out>transactional("dl-shape")
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .deadLetterTable("bad_letters")
            .build();
    assertThatThrownBy(() -> start(s, 0))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("dead-letter table 'bad_letters' has the wrong shape")
        .hasMessageContaining("kafka_partition")
        .hasMessageContaining("drop this one");
  }

  @Test
  void writersTableWithoutTheColumnsTakingAnEpochSetsIsRefusedNamingTheFix() {
    db.execute("CREATE TABLE bad_writers (pipeline_id text PRIMARY KEY, writer_epoch bigint)");
    assertThatThrownBy(() -> startWithWritersTable("bad_writers"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("writers table 'bad_writers' has the wrong shape")
        .hasMessageContaining("taken_at")
        .hasMessageContaining("drop this one");
  }

  @Test
  void unreachableDatabaseIsAConfigurationErrorWithoutThePassword() {
    JdbcSink<Out> s =
        JdbcSink.<Out>transactional("p3")
            .connection(
                JdbcSettings.url("jdbc:postgresql://127.0.0.1:1/nope")
                    .user("app")
                    .password("s3cret"))
            .table("out")
            .columns("id")
            .values(o -> List.of(o.id()))
            .build();
    assertThatThrownBy(() -> start(s, 0))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("cannot connect")
        .hasMessageNotContaining("s3cret");
  }

  @Test
  void offsetTablesAreCreatedOnDemand() {
    List<String> tables;
    try (var c = db.connect();
        var rs =
            c.createStatement()
                .executeQuery(
                    "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'eos_%'")) {
      tables = new java.util.ArrayList<>();
      while (rs.next()) {
        tables.add(rs.getString(1));
      }
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e);
    }
    assertThat(tables).containsExactlyInAnyOrder("eos_offsets", "eos_writers");
    assertThat(db.allIds().stream().collect(Collectors.toSet())).isEmpty();
  }

  /** Sessions of the test's database that wait for a lock held by another transaction. */
  private long sessionsWaitingForALock() throws java.sql.SQLException {
    try (java.sql.Connection c = db.connect();
        java.sql.ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        + " AND wait_event_type = 'Lock'")) {
      rs.next();
      return rs.getLong(1);
    }
  }
}
