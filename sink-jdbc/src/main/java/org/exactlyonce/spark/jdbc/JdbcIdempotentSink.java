package org.exactlyonce.spark.jdbc;

import java.util.List;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.internal.Databases;
import org.exactlyonce.spark.jdbc.internal.JdbcOffsetStore;
import org.exactlyonce.spark.jdbc.internal.JdbcOutputCheck;
import org.exactlyonce.spark.jdbc.internal.JdbcSpec;
import org.exactlyonce.spark.jdbc.internal.TableMapping.VersionSource;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.OutputColumn;
import org.exactlyonce.spark.spi.PartitionOutputs;

/**
 * A PostgreSQL sink whose every write is an upsert under a deterministic key (strategy I): a replay
 * rewrites the same rows and never replaces a newer value with an older one. Offsets are stored
 * after every partition of the batch has written. Choose the key explicitly:
 *
 * <ul>
 *   <li>{@link Builder#keyedBySourcePosition}: one row per output, keyed by (topic, partition,
 *       offset, index);
 *   <li>{@link Builder#upsertOn} with {@link Builder#versionFromSourceOffset}: a natural key whose
 *       records all come from one Kafka partition (the natural key is the Kafka key), so the source
 *       offset orders its versions;
 *   <li>{@link Builder#upsertOn} with {@link Builder#versionFrom}: a natural key fed from several
 *       partitions, versioned by the record (event time plus a tie-breaker).
 * </ul>
 *
 * <p>A versioned upsert keeps, of the outputs of one key, the one with the highest version and,
 * among equal versions, the latest source position (topic, partition, offset, output index), which
 * the sink stores in a text column ({@link Builder#tieBreakerColumn}, default {@code
 * source_position}). So the stored row is the same whatever the batch size, the batch boundaries or
 * the order replays arrive in.
 *
 * <p>Accumulating writes ({@code total = total + x}) are refused: a replay would add twice. Use
 * {@link JdbcSink#transactional} or {@link JdbcSink#perBatch} for them. Immutable, serialisable.
 *
 * @param <R> the output type
 */
public final class JdbcIdempotentSink<R> implements IdempotentSink<R> {
  private static final long serialVersionUID = 1L;

  private final JdbcSpec<R> spec;

  private JdbcIdempotentSink(JdbcSpec<R> spec) {
    this.spec = spec;
  }

  @Override
  public PipelineId pipelineId() {
    return spec.pipelineId();
  }

  /** The output table and the dead-letter table (created if missing). */
  @Override
  public void checkOutputs() {
    JdbcOutputCheck.run(spec, null);
  }

  @Override
  public List<OutputColumn> columnsByName() {
    return JdbcOutputCheck.columnsByName(spec);
  }

  @Override
  public OffsetStore openOffsetStore() {
    return new JdbcOffsetStore(spec);
  }

  @Override
  public long write(SourceRange range, long fromOffset, PartitionOutputs<R> outputs) {
    try {
      // One transaction per partition is not needed for correctness (every write is an upsert),
      // but it makes a failed task leave nothing half-visible.
      return Databases.jdbi(spec.settings())
          .inTransaction(
              h -> {
                long rows = spec.writeAll(h, outputs.positionedFrom(fromOffset));
                spec.writeDeadLetters(h, outputs.deadLetters());
                return rows;
              });
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new ExactlyOnceException("writing " + range + " failed: " + e, e);
    }
  }

  @Override
  public boolean routesBadRecordsToDeadLetters() {
    return spec.deadLetters() != null;
  }

  @Override
  public String toString() {
    return spec.describe("idempotent");
  }

  /**
   * Builds a {@link JdbcIdempotentSink}.
   *
   * @param <R> the output type
   */
  public static final class Builder<R> extends JdbcSinkBuilder<R, Builder<R>> {
    Builder(PipelineId pipelineId) {
      super(pipelineId);
    }

    @Override
    Builder<R> self() {
      return this;
    }

    /**
     * Keys every output by its source position: the table gets these four columns (text, integer,
     * bigint, integer) with a unique index on them, filled by the sink.
     */
    public Builder<R> keyedBySourcePosition(
        String topicColumn, String partitionColumn, String offsetColumn, String indexColumn) {
      this.positionColumns = List.of(topicColumn, partitionColumn, offsetColumn, indexColumn);
      return this;
    }

    /**
     * Versions the rows of {@link #upsertOn} by the source offset, in {@code versionColumn}
     * (bigint, filled by the sink). Correct only when every record of a key comes from one Kafka
     * partition (the natural key is the Kafka key): offsets of different partitions do not order
     * anything. Outputs of one record share its offset; the later output index wins (see {@link
     * #tieBreakerColumn}).
     */
    public Builder<R> versionFromSourceOffset(String versionColumn) {
      this.versionColumn = versionColumn;
      this.versionSource = VersionSource.SOURCE_OFFSET;
      return this;
    }

    /**
     * Versions the rows of {@link #upsertOn} by {@code version} of each output (for example event
     * time), in {@code versionColumn} (bigint, filled by the sink). Of outputs with equal versions
     * the later source position wins (see {@link #tieBreakerColumn}).
     */
    public Builder<R> versionFrom(String versionColumn, VersionFunction<R> version) {
      this.versionColumn = versionColumn;
      this.versionSource = VersionSource.FUNCTION;
      this.versionFunction = version;
      return this;
    }

    /**
     * The column (text) where a versioned upsert stores each row's source position, default {@code
     * source_position}. Of two outputs of one key with the same version, the one with the later
     * source position (topic, partition, offset, output index) wins, inside a JDBC batch, across
     * batches and on replay alike. The table must have the column: a missing one is reported before
     * the stream starts, with the {@code ALTER TABLE} to run. Rows written before the column
     * existed hold NULL there and give way to the next output of their version.
     */
    public Builder<R> tieBreakerColumn(String column) {
      this.tieBreakerColumn = column;
      return this;
    }

    /**
     * Validates the configuration (the database itself is checked when the stream is created).
     *
     * @throws SinkConfigurationException naming the setting and the fix
     */
    public JdbcIdempotentSink<R> build() {
      if (!accumulating.isEmpty()) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': accumulating "
                + accumulating
                + " (total = total + x) is not idempotent: a replayed batch would add twice. Use"
                + " JdbcSink.transactional(...) for per-record outputs or JdbcSink.perBatch(...)"
                + " for aggregates; both commit the write with its offsets");
      }
      if (writer != null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': an idempotent sink cannot check that a custom writer(...) is idempotent; map"
                + " outputs to a table with keyedBySourcePosition(...) or upsertOn(...), or use"
                + " JdbcSink.transactional(...) with your writer");
      }
      boolean positional = !positionColumns.isEmpty();
      boolean versioned = versionSource != VersionSource.NONE;
      JdbcSpec<R> spec = spec();
      boolean hasKey = !spec.mapping().conflictKey().isEmpty();
      if (positional && versioned) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': choose one key: keyedBySourcePosition(...) or upsertOn(...) with a version");
      }
      if (!positional && !(hasKey && versioned)) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': an idempotent sink needs a deterministic key: keyedBySourcePosition(...), or"
                + " upsertOn(...) with versionFromSourceOffset(...) (all of a key's records in one"
                + " Kafka partition) or versionFrom(...) (a version taken from the record), so a"
                + " replay never overwrites a newer value");
      }
      return new JdbcIdempotentSink<>(spec);
    }
  }
}
