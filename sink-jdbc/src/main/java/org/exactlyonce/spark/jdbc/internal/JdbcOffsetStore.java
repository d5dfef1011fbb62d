package org.exactlyonce.spark.jdbc.internal;

import java.lang.management.ManagementFactory;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
  private final DriverConnection connection;

  /**
   * Connects to the database.
   *
   * @throws SinkConfigurationException if the database cannot be reached with these settings
   * @throws org.exactlyonce.spark.BackendUnavailableException if it was reachable from this JVM and
   *     stays away longer than {@link JdbcSettings#reconnectTimeout()}
   */
  public JdbcOffsetStore(JdbcSpec<?> spec) {
    this.pipeline = spec.pipelineId();
    this.settings = spec.settings();
    this.dialect = spec.dialect();
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

  /** The offsets and writers tables only: the outputs are {@link JdbcOutputCheck}'s. */
  private void validate(Handle handle) {
    SchemaChecks.createIfMissing(handle, dialect.createOffsetsTable());
    SchemaChecks.createIfMissing(handle, dialect.createWritersTable());
    SchemaChecks.checkShape(
        handle, dialect, dialect.offsetsTable(), PostgresDialect.OFFSETS_COLUMNS, "offsets table");
    SchemaChecks.checkShape(
        handle, dialect, dialect.writersTable(), PostgresDialect.WRITERS_COLUMNS, "writers table");
    SchemaChecks.checkUniqueKey(
        handle, dialect, dialect.offsetsTable(), PostgresDialect.OFFSETS_KEY, "offsets table");
    SchemaChecks.checkUniqueKey(
        handle, dialect, dialect.writersTable(), PostgresDialect.WRITERS_KEY, "writers table");
    if (!SchemaChecks.columnsOf(handle, dialect, dialect.offsetsTable())
        .containsKey("high_water")) {
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
