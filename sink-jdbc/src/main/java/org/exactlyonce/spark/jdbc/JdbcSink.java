package org.exactlyonce.spark.jdbc;

import java.util.List;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.internal.JdbcOffsetStore;
import org.exactlyonce.spark.jdbc.internal.JdbcOutputCheck;
import org.exactlyonce.spark.jdbc.internal.JdbcSpec;
import org.exactlyonce.spark.jdbc.internal.TransactionalCommit;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.OutputColumn;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.spi.TransactionalSink;

/**
 * PostgreSQL sinks. Three strategies, the guarantee in the name:
 *
 * <ul>
 *   <li>{@link #transactional(String)}: each Kafka offset range and its offset in one database
 *       transaction; a replayed range finds its offset stored and writes nothing. Per-record
 *       outputs, any write (including running totals).
 *   <li>{@link #perBatch(String)}: results of a whole batch (after a shuffle: aggregates) and the
 *       offsets of all its ranges in one transaction.
 *   <li>{@link #idempotent(String)}: upserts keyed by source position or by a natural key with a
 *       version, offsets stored after the batch; no transaction spans the batch.
 * </ul>
 *
 * <p>This class is the transactional sink. Offsets live in a table (default {@code eos_offsets})
 * keyed by (pipeline id, topic, partition), and the writer epoch of each pipeline in another
 * (default {@code eos_writers}); both are created when missing, and their DDL is in the README.
 * Immutable, serialisable configuration; connections are pooled per executor JVM.
 *
 * @param <R> the output type
 */
public final class JdbcSink<R> implements TransactionalSink<R> {
  private static final long serialVersionUID = 1L;

  private final JdbcSpec<R> spec;

  private JdbcSink(JdbcSpec<R> spec) {
    this.spec = spec;
  }

  /**
   * Starts building a transactional sink for pipeline {@code pipelineId}: outputs and offsets of
   * each range are committed in one transaction.
   *
   * @throws SinkConfigurationException if the id is not valid
   */
  public static <R> Builder<R> transactional(String pipelineId) {
    return new Builder<>(PipelineId.of(pipelineId));
  }

  /**
   * Starts building a per-batch sink: the results of a whole batch and the offsets of all its
   * ranges in one transaction.
   *
   * @see JdbcBatchSink
   */
  public static <R> JdbcBatchSink.Builder<R> perBatch(String pipelineId) {
    return new JdbcBatchSink.Builder<>(PipelineId.of(pipelineId));
  }

  /**
   * Starts building an idempotent sink: every output is an upsert under a deterministic key.
   *
   * @see JdbcIdempotentSink
   */
  public static <R> JdbcIdempotentSink.Builder<R> idempotent(String pipelineId) {
    return new JdbcIdempotentSink.Builder<>(PipelineId.of(pipelineId));
  }

  @Override
  public PipelineId pipelineId() {
    return spec.pipelineId();
  }

  /** The connection settings. */
  public JdbcSettings settings() {
    return spec.settings();
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
  public PartitionCommit commit(long epoch, SourceRange range, PartitionOutputs<R> outputs) {
    return TransactionalCommit.commit(spec, epoch, range, outputs);
  }

  @Override
  public boolean routesBadRecordsToDeadLetters() {
    return spec.deadLetters() != null;
  }

  @Override
  public String toString() {
    return spec.describe("transactional");
  }

  /**
   * Builds a transactional {@link JdbcSink}.
   *
   * @param <R> the output type
   */
  public static final class Builder<R> extends JdbcSinkBuilder<R, Builder<R>> {
    private Builder(PipelineId pipelineId) {
      super(pipelineId);
    }

    @Override
    Builder<R> self() {
      return this;
    }

    /**
     * Validates the configuration (the database itself is checked when the stream is created).
     *
     * @throws SinkConfigurationException naming the setting and the fix
     */
    public JdbcSink<R> build() {
      return new JdbcSink<>(spec());
    }
  }
}
