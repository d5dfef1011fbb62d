package org.exactlyonce.spark.jdbc.internal;

import java.lang.management.ManagementFactory;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.spi.CommitProtocol;
import org.exactlyonce.spark.spi.CommitUnit;
import org.exactlyonce.spark.spi.OffsetStore;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.statement.PreparedBatch;

/**
 * The driver's view of the offsets and writer epochs kept in PostgreSQL, on a pooled connection at
 * READ COMMITTED ({@link DriverConnection}) that waits out a short outage of a database that was
 * reachable. Not thread-safe.
 */
public final class JdbcOffsetStore implements OffsetStore {
  private final PipelineId pipeline;
  private final JdbcSettings settings;
  private final PostgresDialect dialect;
  private final TableMapping<?> mapping;
  private final DriverConnection connection;
  private final List<String> extraDdl;
  private final SqlIdentifier deadLetters;
  private final List<Consumer<Handle>> extraChecks = new ArrayList<>();

  /**
   * Connects to the database.
   *
   * @throws SinkConfigurationException if the database cannot be reached with these settings
   * @throws org.exactlyonce.spark.BackendUnavailableException if it was reachable from this JVM and
   *     stays away longer than {@link JdbcSettings#reconnectTimeout()}
   */
  public JdbcOffsetStore(JdbcSpec<?> spec) {
    this(spec, List.of());
  }

  /**
   * Connects to the database; {@link #validate()} also runs {@code extraDdl} (for example a staging
   * table) after checking the output table.
   */
  public JdbcOffsetStore(JdbcSpec<?> spec, List<String> extraDdl) {
    List<String> ddl = new ArrayList<>(extraDdl);
    if (spec.deadLetters() != null) {
      ddl.add(spec.dialect().createDeadLetterTable(spec.deadLetters()));
    }
    this.extraDdl = List.copyOf(ddl);
    this.deadLetters = spec.deadLetters();
    this.pipeline = spec.pipelineId();
    this.settings = spec.settings();
    this.dialect = spec.dialect();
    this.mapping = spec.mapping();
    this.connection = new DriverConnection(settings);
  }

  /**
   * {@code --jdbc-url} (without URL parameters, which may hold secrets), {@code --user}, {@code
   * --password-env} (the tool reads the password from the environment only) and the tables when
   * they are not the defaults.
   */
  @Override
  public String offsetsToolResetOptions() {
    StringBuilder o = new StringBuilder("--jdbc-url ").append(settings.safeUrl());
    if (settings.user() != null) {
      o.append(" --user ").append(settings.user());
      o.append(" --password-env ")
          .append(settings.passwordEnv() != null ? settings.passwordEnv() : "<VARIABLE>");
    }
    if (!"eos_offsets".equals(dialect.offsetsTable().toString())) {
      o.append(" --offsets-table ").append(dialect.offsetsTable());
    }
    if (!"eos_writers".equals(dialect.writersTable().toString())) {
      o.append(" --writers-table ").append(dialect.writersTable());
    }
    return o.toString();
  }

  @Override
  public void validate() {
    // Creates and checks; every step may run again after a lost connection.
    connection.call(
        handle -> {
          validate(handle);
          return null;
        });
  }

  private void validate(Handle handle) {
    createIfMissing(handle, dialect.createOffsetsTable());
    createIfMissing(handle, dialect.createWritersTable());
    checkShape(handle, dialect.offsetsTable(), PostgresDialect.OFFSETS_COLUMNS, "offsets table");
    checkShape(handle, dialect.writersTable(), PostgresDialect.WRITERS_COLUMNS, "writers table");
    checkUniqueKey(handle, dialect.offsetsTable(), PostgresDialect.OFFSETS_KEY, "offsets table");
    checkUniqueKey(handle, dialect.writersTable(), PostgresDialect.WRITERS_KEY, "writers table");
    if (!columnsOf(handle, dialect.offsetsTable()).containsKey("high_water")) {
      // An offsets table of an earlier version (its shape checked above), once: ALTER TABLE
      // needs the owner and an exclusive lock, so it never runs when the column is there. The
      // mark starts at the stored offset, which no earlier version let fall below what it
      // committed.
      handle.useTransaction(
          h -> {
            h.execute(dialect.addHighWater());
            h.execute(dialect.backfillHighWater());
          });
    }
    if (mapping != null) {
      SqlIdentifier table = mapping.table();
      Map<String, String> actual = columnsOf(handle, table);
      if (actual.isEmpty()) {
        throw new SinkConfigurationException(
            "output table '"
                + table
                + "' does not exist (or is not visible to user "
                + settings.user()
                + "): create it before starting the job");
      }
      mapping.checkColumns(actual);
      for (SqlIdentifier c : mapping.allColumns()) {
        if (!actual.containsKey(c.name())) {
          throw new SinkConfigurationException(
              "output table '"
                  + table
                  + "' has no column '"
                  + c.name()
                  + "' (it has "
                  + actual.keySet()
                  + "): fix the sink's columns(...) or the table");
        }
      }
      checkUniqueKey(
          handle,
          table,
          mapping.conflictKey().stream().map(SqlIdentifier::name).toList(),
          "output table");
    }
    for (String ddl : extraDdl) {
      createIfMissing(handle, ddl);
    }
    if (deadLetters != null) {
      // An existing table of that name is not replaced by CREATE IF NOT EXISTS: check it here,
      // or the first bad record would fail mid-stream.
      checkShape(handle, deadLetters, PostgresDialect.DEAD_LETTER_COLUMNS, "dead-letter table");
      checkUniqueKey(handle, deadLetters, PostgresDialect.DEAD_LETTER_KEY, "dead-letter table");
    }
    for (Consumer<Handle> check : extraChecks) {
      check.accept(handle);
    }
  }

  /**
   * Adds a check that {@link #validate()} runs last, after the extra DDL (for example of the
   * staging table that DDL created); it throws {@link SinkConfigurationException} to refuse.
   *
   * @return this store
   */
  public JdbcOffsetStore alsoValidating(Consumer<Handle> check) {
    extraChecks.add(check);
    return this;
  }

  /** A unique index of a table, as {@link PostgresDialect#uniqueIndexes()} reads it. */
  private record UniqueIndex(String name, List<String> columns, List<String> unusableBecause) {}

  /**
   * ON CONFLICT needs a unique index on exactly the key columns that it can infer: not partial, no
   * expressions, checked immediately. Otherwise the first write fails, after the stream started.
   */
  private void checkUniqueKey(Handle handle, SqlIdentifier table, List<String> key, String what) {
    if (key.isEmpty()) {
      return;
    }
    List<String> wanted = key.stream().sorted().toList();
    List<UniqueIndex> unique =
        handle
            .createQuery(dialect.uniqueIndexes())
            .bind("table", table.sql())
            .map(
                (rs, ctx) -> {
                  List<String> why = new ArrayList<>();
                  if (rs.getBoolean(3)) {
                    why.add("has an expression among its columns");
                  }
                  if (rs.getBoolean(4)) {
                    why.add("is partial (it has a WHERE clause)");
                  }
                  if (rs.getBoolean(5)) {
                    why.add("is a deferrable constraint (checked at commit)");
                  }
                  if (rs.getBoolean(6)) {
                    why.add("is invalid (a failed CREATE INDEX CONCURRENTLY)");
                  }
                  return new UniqueIndex(
                      rs.getString(1), List.of((String[]) rs.getArray(2).getArray()), why);
                })
            .list();
    List<UniqueIndex> onKey = unique.stream().filter(i -> i.columns().equals(wanted)).toList();
    if (onKey.stream().anyMatch(i -> i.unusableBecause().isEmpty())) {
      return;
    }
    String create =
        "CREATE UNIQUE INDEX ON "
            + table.sql()
            + " ("
            + wanted.stream().map(SqlIdentifier::quote).collect(Collectors.joining(", "))
            + ")";
    if (!onKey.isEmpty()) {
      UniqueIndex i = onKey.get(0);
      throw new SinkConfigurationException(
          what
              + " '"
              + table
              + "' has unique index "
              + i.name()
              + " on "
              + wanted
              + ", but it "
              + String.join(" and ", i.unusableBecause())
              + ": INSERT ... ON CONFLICT ("
              + String.join(", ", wanted)
              + ") cannot use it, so the first write would fail. Add a plain one: "
              + create
              + (i.unusableBecause().stream().anyMatch(w -> w.contains("deferrable"))
                  ? " (or add the constraint again as NOT DEFERRABLE)"
                  : ""));
    }
    throw new SinkConfigurationException(
        what
            + " '"
            + table
            + "' has no unique index on exactly "
            + wanted
            + " (it has "
            + unique.stream().map(i -> i.name() + " " + i.columns()).toList()
            + "), so "
            + ("output table".equals(what)
                ? "a replay could not find and overwrite the rows it wrote before"
                : "the sink's INSERT ... ON CONFLICT would fail")
            + ". Add one: "
            + create);
  }

  private void createIfMissing(Handle handle, String ddl) {
    try {
      handle.execute(ddl);
    } catch (RuntimeException e) {
      if (DriverConnection.isConnectionLost(e)) {
        throw e; // an outage, not the DDL: DriverConnection.call runs validate again
      }
      // Two drivers creating the same table at once: one loses the race on the catalog; the
      // table exists either way, and checkShape below verifies it.
      if (!rootMessage(e).contains("already exists") && !rootMessage(e).contains("duplicate key")) {
        throw new SinkConfigurationException(
            "cannot create the table with: " + ddl + " (" + rootMessage(e) + ")", e);
      }
    }
  }

  private void checkShape(
      Handle handle, SqlIdentifier t, List<List<String>> expected, String what) {
    Map<String, String> actual = columnsOf(handle, t);
    for (List<String> col : expected) {
      String type = actual.get(col.get(0));
      if (type == null || !col.subList(1, col.size()).contains(type)) {
        throw new SinkConfigurationException(
            what
                + " '"
                + t
                + "' has the wrong shape: column '"
                + col.get(0)
                + "' should be "
                + col.subList(1, col.size())
                + " but is "
                + (type == null ? "missing" : type)
                + ". Point the sink at another table name, or drop this one and let the sink create"
                + " it (see the DDL in the README)");
      }
    }
  }

  private Map<String, String> columnsOf(Handle handle, SqlIdentifier t) {
    Map<String, String> out = new HashMap<>();
    handle
        .createQuery(dialect.columnsOf())
        .bind("table", t.sql())
        .map((rs, ctx) -> Map.entry(rs.getString(1), rs.getString(2)))
        .forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  @Override
  public long takeWriterEpoch() {
    // Run again after a lost COMMIT it takes one more epoch: still newer than every other.
    return inTransaction(
        h ->
            h.createQuery(dialect.takeEpoch())
                .bind("pipeline", pipeline.value())
                .bind("by", ManagementFactory.getRuntimeMXBean().getName())
                .mapTo(Long.class)
                .one());
  }

  @Override
  public Map<TopicPartition, Long> storedOffsets() {
    return perPartition(dialect.storedOffsets());
  }

  @Override
  public Map<TopicPartition, Long> highWaterMarks() {
    return perPartition(dialect.highWaterMarks());
  }

  /** Rows of (topic, partition, offset) of this pipeline, from {@code sql}. */
  private Map<TopicPartition, Long> perPartition(String sql) {
    return connection.call(
        handle -> {
          Map<TopicPartition, Long> out = new HashMap<>();
          handle
              .createQuery(sql)
              .bind("pipeline", pipeline.value())
              .map(
                  (rs, ctx) ->
                      Map.entry(new TopicPartition(rs.getString(1), rs.getInt(2)), rs.getLong(3)))
              .forEach(e -> out.put(e.getKey(), e.getValue()));
          return out;
        });
  }

  @Override
  public boolean canRewind() {
    return true;
  }

  @Override
  public void rewind(Map<TopicPartition, Long> offsets, long epoch) {
    writeOffsets(dialect.rewindOffset(), offsets, epoch, "rewinding");
  }

  @Override
  public void storeStartOffsets(Map<TopicPartition, Long> offsets, long epoch) {
    writeOffsets(dialect.insertOffsetIfAbsent(), offsets, epoch, "starting");
  }

  /**
   * Runs {@code sql} for every offset in one transaction, while {@code epoch} is current. Both
   * statements set offsets to given values, so running it again after a lost COMMIT is harmless.
   */
  private void writeOffsets(
      String sql, Map<TopicPartition, Long> offsets, long epoch, String doing) {
    inTransaction(
        h -> {
          long current =
              h.createQuery(dialect.lockEpoch())
                  .bind("pipeline", pipeline.value())
                  .mapTo(Long.class)
                  .one();
          if (current != epoch) {
            throw new WriterFencedException(
                "pipeline '"
                    + pipeline
                    + "': another instance took writer epoch "
                    + current
                    + " while this one (epoch "
                    + epoch
                    + ") was "
                    + doing
                    + "; this one stops");
          }
          PreparedBatch batch = h.prepareBatch(sql);
          offsets.forEach(
              (tp, o) ->
                  batch
                      .bind("pipeline", pipeline.value())
                      .bind("topic", tp.topic())
                      .bind("partition", tp.partition())
                      .bind("offset", o)
                      .bind("epoch", epoch)
                      .add());
          batch.execute();
          return null;
        });
  }

  @Override
  public List<PartitionCommit> commitRanges(long epoch, List<SourceRange> ranges) {
    // Safe to run again after a lost COMMIT: every advance is a compare-and-set on the range's
    // start, so the second run finds the ranges ALREADY_COMMITTED and changes nothing.
    return inTransaction(h -> CommitProtocol.advanceRanges(unit(h), epoch, ranges));
  }

  /** The protocol's primitive over {@code h}, a transaction of this store's pipeline. */
  public CommitUnit unit(Handle h) {
    return new JdbcCommitUnit(h, dialect, pipeline);
  }

  /**
   * Runs {@code work} in a transaction on the store's connection; if the connection is lost (the
   * database restarts), runs it again on a new one, for up to {@link
   * JdbcSettings#reconnectTimeout()}. {@code work} must be safe to run again after a failure whose
   * outcome is unknown: check the stored offsets (a compare-and-set) before writing, in the same
   * transaction.
   *
   * @throws org.exactlyonce.spark.BackendUnavailableException if the database stays unreachable
   */
  public <T, X extends Exception> T inTransaction(HandleCallback<T, X> work) throws X {
    return connection.call(handle -> handle.inTransaction(work));
  }

  /** The open connection, as it is now (no reconnecting): for tests and diagnostics. */
  public Handle handle() {
    return connection.handle();
  }

  @Override
  public void close() {
    connection.close();
  }

  static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t instanceof SQLException || t.getMessage() != null
        ? String.valueOf(t.getMessage())
        : t.toString();
  }
}
