package org.exactlyonce.spark.cassandra.internal;

import com.datastax.oss.driver.api.core.AllNodesFailedException;
import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.DriverTimeoutException;
import com.datastax.oss.driver.api.core.cql.BatchStatement;
import com.datastax.oss.driver.api.core.cql.BatchStatementBuilder;
import com.datastax.oss.driver.api.core.cql.BatchType;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.cassandra.internal.CqlSchema.Column;
import org.exactlyonce.spark.spi.CommitProtocol;
import org.exactlyonce.spark.spi.CommitUnit;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;

/**
 * Offsets in a Cassandra table, one partition per pipeline: a row per Kafka partition with its next
 * offset, and the writer epoch as a static column. Every change is a lightweight transaction
 * conditioned on the epoch, and a commit of several ranges is one conditional batch on that
 * partition: all offsets advance together, or none.
 */
public final class CassandraOffsetStore implements OffsetStore {
  private final CassandraSpec<?> spec;
  private final PipelineId pipeline;
  private CqlSession session;
  private final String offsets;

  public CassandraOffsetStore(CassandraSpec<?> spec) {
    this.spec = spec;
    this.pipeline = spec.pipelineId();
    this.session = Sessions.get(spec.settings());
    this.offsets = spec.offsetsTable().cql();
  }

  private ConsistencyLevel serial() {
    return com.datastax.oss.driver.api.core.DefaultConsistencyLevel.valueOf(
        spec.settings().serialConsistency());
  }

  /** Runs a {@code CREATE ... IF NOT EXISTS}, once more on a new session if this one is stuck. */
  private void ddl(String cql) {
    session = CqlSchema.ddl(spec.settings(), session, cql);
  }

  /** The offsets table only: the outputs are {@link CassandraOutputCheck}'s. */
  @Override
  public void validate() {
    CqlSchema.requireKeyspace(session, spec.offsetsTable().keyspace());
    ddl(
        "CREATE TABLE IF NOT EXISTS "
            + offsets
            + " (pipeline_id text, topic text, kafka_partition int, until_offset bigint,"
            + " high_water bigint, writer_epoch bigint STATIC,"
            + " PRIMARY KEY ((pipeline_id), topic, kafka_partition))");
    Map<String, Column> t = CqlSchema.columnsOf(session, spec.offsetsTable());
    // The shape first: a table of another shape (another tool's, or an output table named by
    // mistake) is refused before anything changes it.
    checkOffsetsShape(t);
    if (!t.containsKey("high_water")) {
      // A table of an earlier version: the mark starts with each partition's next commit.
      try {
        ddl("ALTER TABLE " + offsets + " ADD high_water bigint");
      } catch (com.datastax.oss.driver.api.core.servererrors.InvalidQueryException e) {
        // Another driver added it first ("conflicts with an existing column"): read it below.
      }
      t = CqlSchema.columnsOf(session, spec.offsetsTable());
    }
    CqlSchema.expect(spec.offsetsTable(), t, "high_water", "bigint", "offsets table");
  }

  /**
   * Refuses an offsets table of another shape, naming the table, what differs and the fix.
   *
   * @throws SinkConfigurationException if a column or the key differs from the table the sink
   *     creates
   */
  private void checkOffsetsShape(Map<String, Column> t) {
    List<String> wrong = new ArrayList<>();
    for (String column : List.of("until_offset", "writer_epoch")) {
      Column c = t.get(column);
      if (c == null || !c.type().equals("bigint")) {
        wrong.add(
            "column '"
                + column
                + "' should be bigint but is "
                + (c == null ? "missing" : c.type()));
      }
    }
    Column epoch = t.get("writer_epoch");
    if (epoch != null && !epoch.kind().equals("static")) {
      wrong.add("column 'writer_epoch' should be STATIC");
    }
    Column pk = t.get("pipeline_id");
    if (pk == null
        || !pk.kind().equals("partition_key")
        || t.values().stream().filter(c -> c.kind().equals("partition_key")).count() != 1) {
      wrong.add("the primary key should be ((pipeline_id), topic, kafka_partition)");
    }
    if (!wrong.isEmpty()) {
      throw new SinkConfigurationException(
          "offsets table '"
              + spec.offsetsTable()
              + "' has the wrong shape: "
              + String.join("; ", wrong)
              + ". Nothing was changed. Point the sink at another table (offsetsTable(...)), or"
              + " drop this one and let the sink create it (see the DDL in the README)");
    }
  }

  private Long readEpoch() {
    Row row =
        session
            .execute(
                SimpleStatement.newInstance(
                        "SELECT writer_epoch FROM " + offsets + " WHERE pipeline_id = ? LIMIT 1",
                        pipeline.value())
                    .setConsistencyLevel(serial()))
            .one();
    return row == null || row.isNull(0) ? null : row.getLong(0);
  }

  @Override
  public long takeWriterEpoch() {
    for (int attempt = 0; attempt < 20; attempt++) {
      Long current = readEpoch();
      long next = current == null ? 1 : current + 1;
      SimpleStatement cas =
          current == null
              ? SimpleStatement.newInstance(
                  "UPDATE "
                      + offsets
                      + " SET writer_epoch = ? WHERE pipeline_id = ? IF writer_epoch = null",
                  next,
                  pipeline.value())
              : SimpleStatement.newInstance(
                  "UPDATE "
                      + offsets
                      + " SET writer_epoch = ? WHERE pipeline_id = ? IF writer_epoch = ?",
                  next,
                  pipeline.value(),
                  current);
      if (session.execute(cas.setSerialConsistencyLevel(serial())).wasApplied()) {
        return next;
      }
    }
    throw new WriterFencedException(
        "pipeline '" + pipeline + "': could not take a writer epoch: other drivers keep taking it");
  }

  @Override
  public Map<TopicPartition, Long> storedOffsets() {
    return perPartition("until_offset");
  }

  @Override
  public Map<TopicPartition, Long> highWaterMarks() {
    return perPartition("high_water");
  }

  /** Column {@code column} of every partition of this pipeline where it is set. */
  private Map<TopicPartition, Long> perPartition(String column) {
    Map<TopicPartition, Long> out = new HashMap<>();
    for (Row r :
        session.execute(
            SimpleStatement.newInstance(
                    "SELECT topic, kafka_partition, "
                        + column
                        + " FROM "
                        + offsets
                        + " WHERE pipeline_id = ?",
                    pipeline.value())
                .setConsistencyLevel(serial()))) {
      if (!r.isNull(0) && !r.isNull(2)) {
        out.put(new TopicPartition(r.getString(0), r.getInt(1)), r.getLong(2));
      }
    }
    return out;
  }

  private BatchStatementBuilder guardedBatch(long epoch) {
    return BatchStatement.builder(BatchType.LOGGED)
        .setSerialConsistencyLevel(serial())
        .addStatement(
            SimpleStatement.newInstance(
                "UPDATE "
                    + offsets
                    + " SET writer_epoch = ? WHERE pipeline_id = ? IF writer_epoch = ?",
                epoch,
                pipeline.value(),
                epoch));
  }

  /**
   * {@code --cassandra}, {@code --cassandra-dc}, {@code --keyspace}, the table if not the default,
   * and {@code --user} with {@code --password-env} (the tool reads the password from the
   * environment only; the variable's name is the user's to fill in).
   */
  @Override
  public String offsetsToolResetOptions() {
    StringBuilder o =
        new StringBuilder("--cassandra ")
            .append(String.join(",", spec.settings().contactPoints()))
            .append(" --cassandra-dc ")
            .append(spec.settings().localDatacenter())
            .append(" --keyspace ")
            .append(spec.offsetsTable().keyspace());
    if (!"eos_offsets".equals(spec.offsetsTable().name())) {
      o.append(" --offsets-table ").append(spec.offsetsTable().name());
    }
    if (spec.settings().user() != null) {
      o.append(" --user ").append(spec.settings().user()).append(" --password-env <VARIABLE>");
    }
    return o.toString();
  }

  @Override
  public boolean canRewind() {
    return true;
  }

  @Override
  public void rewind(Map<TopicPartition, Long> to, long epoch) {
    refuseAddedPartitions(storedOffsets(), to.keySet());
    if (!session.execute(offsetsBatch(to, epoch, "")).wasApplied()) {
      throw new WriterFencedException(
          "pipeline '" + pipeline + "': another instance took over during the rewind");
    }
  }

  /**
   * Sets offset and high-water mark of every partition of {@code to}, each update under {@code
   * condition} (empty: none), in one batch that also checks {@code epoch}.
   */
  private BatchStatement offsetsBatch(Map<TopicPartition, Long> to, long epoch, String condition) {
    BatchStatementBuilder b = guardedBatch(epoch);
    to.forEach(
        (tp, o) ->
            b.addStatement(
                SimpleStatement.newInstance(
                    "UPDATE "
                        + offsets
                        + " SET until_offset = ?, high_water = ? WHERE pipeline_id = ? AND topic = ?"
                        + " AND kafka_partition = ?"
                        + condition,
                    o,
                    o,
                    pipeline.value(),
                    tp.topic(),
                    tp.partition())));
    return b.build();
  }

  @Override
  public void checkBeforeEpoch(java.util.Collection<TopicPartition> streamPartitions) {
    checkOrderable(storedOffsets(), streamPartitions);
  }

  @Override
  public Map<TopicPartition, Long> storedOffsetsAtStart(
      java.util.Collection<TopicPartition> streamPartitions, long epoch) {
    Map<TopicPartition, Long> stored = storedOffsets();
    checkOrderable(stored, streamPartitions);
    return stored;
  }

  /**
   * With the source offset as write timestamp: one topic only, and no partition added after the
   * pipeline stored its offsets.
   */
  private void checkOrderable(
      Map<TopicPartition, Long> stored, java.util.Collection<TopicPartition> streamPartitions) {
    if (spec.mode() == CassandraSpec.Mode.NATURAL_KEY_OFFSET_TIMESTAMP) {
      Set<String> topics = new TreeSet<>();
      streamPartitions.forEach(tp -> topics.add(tp.topic()));
      stored.keySet().forEach(tp -> topics.add(tp.topic()));
      if (topics.size() > 1) {
        throw offsetsCannotOrder(
            "the stream reads several topics " + topics + " (stored or read now)",
            "offsets of different topics do not say which record is newer");
      }
      refuseAddedPartitions(stored, streamPartitions);
    }
  }

  /**
   * With the source offset as write timestamp a partition added to a topic this pipeline already
   * stored cannot be written: a key the producer now hashes to it would get small offsets as its
   * timestamps and lose to its old value forever.
   */
  private void refuseAddedPartitions(
      Map<TopicPartition, Long> stored, java.util.Collection<TopicPartition> partitions) {
    if (spec.mode() != CassandraSpec.Mode.NATURAL_KEY_OFFSET_TIMESTAMP || stored.isEmpty()) {
      return;
    }
    Set<String> added = new TreeSet<>();
    for (TopicPartition tp : partitions) {
      if (!stored.containsKey(tp)) {
        added.add(tp.toString());
      }
    }
    if (!added.isEmpty()) {
      throw offsetsCannotOrder(
          "partitions "
              + added
              + " were added after it stored "
              + new TreeSet<>(stored.keySet().stream().map(TopicPartition::toString).toList()),
          "a key moved to a new partition would get smaller offsets as timestamps and lose to"
              + " its old value");
    }
  }

  private SinkConfigurationException offsetsCannotOrder(String what, String why) {
    return new SinkConfigurationException(
        "sink '"
            + pipeline
            + "' (timestampFromSourceOffset(), table "
            + spec.table()
            + "): "
            + what
            + "; "
            + why
            + ". Nothing was written for them. Order the versions by the record instead:"
            + " timestampFrom(...) with an event time, or keyedBySourcePosition(...), with a new"
            + " table and pipeline id");
  }

  @Override
  public void storeStartOffsets(Map<TopicPartition, Long> start, long epoch) {
    refuseAddedPartitions(storedOffsets(), start.keySet());
    storeStarts(start, epoch);
  }

  private void storeStarts(Map<TopicPartition, Long> start, long epoch) {
    if (!session.execute(offsetsBatch(start, epoch, " IF until_offset = null")).wasApplied()) {
      Long current = readEpoch();
      if (current == null || current != epoch) {
        throw new WriterFencedException(
            "pipeline '"
                + pipeline
                + "': another instance took writer epoch "
                + current
                + " while this one (epoch "
                + epoch
                + ") was starting; this one stops");
      }
      // Another instance of the same epoch cannot exist; a row appeared: keep what is stored.
      Map<TopicPartition, Long> stored = storedOffsets();
      Map<TopicPartition, Long> missing = new HashMap<>(start);
      missing.keySet().removeAll(stored.keySet());
      if (!missing.isEmpty()) {
        storeStarts(missing, epoch);
      }
    }
  }

  /**
   * Reached when a commit's outcome is unknown (a timeout, no replica reachable) and the store is
   * about to read the offsets again. Tests hook the end of an outage here.
   */
  public static final String COMMIT_OUTCOME_UNKNOWN = "cassandra.commit-outcome-unknown";

  /** Reached just before the conditional batch that advances a commit's offsets is sent. */
  public static final String BEFORE_OFFSETS_BATCH = "cassandra.before-offsets-batch";

  /**
   * How long a commit keeps re-reading and re-deciding while the offsets' replicas cannot be
   * reached or do not answer in time; then the batch fails and the restart decides from what is
   * stored.
   */
  static final Duration UNREACHABLE_WAIT = Duration.ofMinutes(2);

  @Override
  public List<PartitionCommit> commitRanges(long epoch, List<SourceRange> ranges) {
    long started = System.nanoTime();
    long deadline = started + UNREACHABLE_WAIT.toNanos();
    // Ranges of a conditional batch whose outcome is unknown, with the outcome decided then: if
    // the re-read finds them at their end, that batch applied and this driver committed them.
    Map<SourceRange, CommitUnit.Advance> unknown = new HashMap<>();
    long backoff = 100;
    while (true) {
      try {
        List<PartitionCommit> commits =
            CommitProtocol.advanceRanges(new ConditionalUnit(unknown), epoch, ranges);
        long millis = (System.nanoTime() - started) / 1_000_000;
        return commits.stream()
            .map(c -> CommitProtocol.afterUnknownOutcome(c, unknown.get(c.range())))
            .map(c -> new PartitionCommit(c.range(), c.outcome(), c.storedBefore(), 0, 0, millis))
            .toList();
      } catch (RuntimeException e) {
        if (!isTransient(e)) {
          throw e;
        }
        if (System.nanoTime() > deadline) {
          throw new org.exactlyonce.spark.ExactlyOnceException(
              "pipeline '"
                  + pipeline
                  + "': Cassandra did not answer the offsets commit of "
                  + ranges
                  + " for "
                  + UNREACHABLE_WAIT
                  + " ("
                  + e
                  + "); the batch fails and the restart decides from the stored offsets, whether"
                  + " or not this commit applied",
              e);
        }
        // The conditional batch may have applied: read again (at serial consistency, which
        // finishes an in-progress round) and decide again.
        FaultPoints.reach(COMMIT_OUTCOME_UNKNOWN);
        sleep(backoff);
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
  }

  /**
   * The protocol's primitive in Cassandra, which has no locks: one conditional (LWT) batch that
   * advances every range only if the writer epoch and every stored offset are still those read. If
   * it does not apply, the protocol reads and decides again.
   */
  private final class ConditionalUnit implements CommitUnit {
    private final Map<SourceRange, Advance> unknown;

    ConditionalUnit(Map<SourceRange, Advance> unknown) {
      this.unknown = unknown;
    }

    @Override
    public boolean epochIsCurrent(long epoch) {
      return Long.valueOf(epoch).equals(readEpoch());
    }

    @Override
    public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
      return storedOffsets(); // not a lock: the batch's conditions check them again
    }

    @Override
    public boolean advance(List<Advance> advances, long epoch) {
      BatchStatementBuilder b = guardedBatch(epoch);
      for (Advance a : advances) {
        SourceRange r = a.range();
        b.addStatement(
            SimpleStatement.newInstance(
                "UPDATE "
                    + offsets
                    + " SET until_offset = ?, high_water = ? WHERE pipeline_id = ?"
                    + " AND topic = ? AND kafka_partition = ? IF until_offset = ?",
                r.until(),
                r.until(), // from the stored offset, which is never above the mark
                pipeline.value(),
                r.topic(),
                r.partition(),
                a.expected()));
      }
      FaultPoints.reach(BEFORE_OFFSETS_BATCH);
      try {
        return session.execute(b.build()).wasApplied();
      } catch (RuntimeException e) {
        if (isTransient(e)) {
          advances.forEach(a -> unknown.putIfAbsent(a.range(), a));
        }
        throw e;
      }
    }
  }

  /**
   * Failures after which the commit's outcome is unknown or the replicas were briefly unreachable:
   * the store reads again rather than stop the pipeline.
   */
  private static boolean isTransient(RuntimeException e) {
    // AllNodesFailedException covers NoNodeAvailableException; QueryConsistencyException covers
    // read and write timeouts and failures, CAS contention and CASWriteUnknownException.
    return e instanceof DriverTimeoutException
        || e instanceof AllNodesFailedException
        || e instanceof com.datastax.oss.driver.api.core.servererrors.QueryConsistencyException
        || e instanceof com.datastax.oss.driver.api.core.servererrors.UnavailableException
        || e instanceof com.datastax.oss.driver.api.core.servererrors.OverloadedException
        || e instanceof com.datastax.oss.driver.api.core.servererrors.BootstrappingException;
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new org.exactlyonce.spark.ExactlyOnceException(
          "interrupted during an offsets commit", e);
    }
  }

  @Override
  public void close() {
    // The session is shared by this JVM's sinks; it closes at JVM exit.
  }
}
