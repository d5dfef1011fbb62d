package org.exactlyonce.spark.jdbc;

import java.util.Iterator;
import java.util.List;
import java.util.UUID;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function2;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SinkProperties;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.internal.Databases;
import org.exactlyonce.spark.jdbc.internal.JdbcOffsetStore;
import org.exactlyonce.spark.jdbc.internal.JdbcOutputCheck;
import org.exactlyonce.spark.jdbc.internal.JdbcSpec;
import org.exactlyonce.spark.jdbc.internal.SqlIdentifier;
import org.exactlyonce.spark.jdbc.internal.Staging;
import org.exactlyonce.spark.jdbc.internal.TableMapping;
import org.exactlyonce.spark.spi.BatchSink;
import org.exactlyonce.spark.spi.CommitProtocol;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.OutputColumn;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;

/**
 * A PostgreSQL sink that commits the results of a whole batch together with the offsets of every
 * range of the batch, in one transaction (strategy T-batch): for aggregates computed after a
 * shuffle. All or nothing: a replayed batch writes nothing, and a batch whose ranges are partly
 * committed is an error naming them.
 *
 * <p>By default the results stream to the driver one partition at a time and are written there.
 * With {@link Builder#staged()} the executors write them to a staging table and the driver's
 * transaction moves them into the output table, so millions of rows never pass through the driver.
 * Immutable, serialisable.
 *
 * @param <R> the result type
 */
public final class JdbcBatchSink<R> implements BatchSink<R> {
  private static final long serialVersionUID = 1L;

  private final JdbcSpec<R> spec;
  private final Staging staging;

  private JdbcBatchSink(JdbcSpec<R> spec, Staging staging) {
    this.spec = spec;
    this.staging = staging;
  }

  @Override
  public PipelineId pipelineId() {
    return spec.pipelineId();
  }

  /** The output table, and the staging table of {@link Builder#staged()} (created if missing). */
  @Override
  public void checkOutputs() {
    JdbcOutputCheck.run(spec, staging);
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
  public BatchCommit commitBatch(long epoch, List<SourceRange> ranges, JavaRDD<R> results) {
    if (ranges.stream().allMatch(SourceRange::isEmpty)) {
      return new BatchCommit(List.of(), 0);
    }
    try (JdbcOffsetStore store = new JdbcOffsetStore(spec)) {
      String attempt = UUID.randomUUID().toString();
      long staged = staging == null ? 0 : stage(results, attempt);
      FaultPoints.reach(FaultPoints.BATCH_BEFORE_PUBLISH);
      // Run again on a new connection if the database restarts meanwhile: the protocol locks and
      // checks every range first, so after a lost COMMIT it finds them ALREADY_COMMITTED and
      // writes nothing.
      return store.inTransaction(
          h ->
              CommitProtocol.commitBatch(
                  store.unit(h),
                  spec.pipelineId(),
                  epoch,
                  ranges,
                  () ->
                      staging == null
                          ? spec.writeAll(h, positioned(results.toLocalIterator()))
                          : staging.publish(h, spec.pipelineId().value(), attempt, staged)));
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new ExactlyOnceException(
          "writing the batch " + ranges + " failed and was rolled back: " + e, e);
    }
  }

  private long stage(JavaRDD<R> results, String attempt) {
    List<Long> counts =
        results
            .mapPartitionsWithIndex(new StagePartition<>(spec, staging, attempt), false)
            .collect();
    return counts.stream().mapToLong(Long::longValue).sum();
  }

  /** Runs on executors: stages one result partition in its own transaction. */
  private static final class StagePartition<R>
      implements Function2<Integer, Iterator<R>, Iterator<Long>> {
    private static final long serialVersionUID = 1L;
    private final JdbcSpec<R> spec;
    private final Staging staging;
    private final String attempt;

    StagePartition(JdbcSpec<R> spec, Staging staging, String attempt) {
      this.spec = spec;
      this.staging = staging;
      this.attempt = attempt;
    }

    @Override
    public Iterator<Long> call(Integer part, Iterator<R> rows) {
      long n =
          Databases.jdbi(spec.settings())
              .inTransaction(
                  h ->
                      staging.stage(
                          h,
                          spec.pipelineId().value(),
                          attempt,
                          part,
                          spec.mapping(),
                          positioned(rows),
                          spec.batchSize()));
      return List.of(n).iterator();
    }
  }

  /** Results of a batch have no single source position. */
  private static <R> Iterator<Positioned<R>> positioned(Iterator<R> rows) {
    return new Iterator<>() {
      @Override
      public boolean hasNext() {
        return rows.hasNext();
      }

      @Override
      public Positioned<R> next() {
        return new Positioned<>(rows.next(), null, -1, -1, 0);
      }
    };
  }

  @Override
  public String toString() {
    return spec.describe(
        staging == null ? "perBatch" : "perBatch(staged in " + staging.table() + ")");
  }

  /**
   * Builds a {@link JdbcBatchSink}.
   *
   * @param <R> the result type
   */
  public static final class Builder<R> extends JdbcSinkBuilder<R, Builder<R>> {
    private boolean staged;
    private String stagingTable;

    Builder(PipelineId pipelineId) {
      super(pipelineId);
    }

    @Override
    Builder<R> self() {
      return this;
    }

    /**
     * Writes results through a staging table on the executors instead of through the driver (for
     * results of millions of rows). The staging table (default {@code <table>_eos_staging}) is
     * created with the output columns' types. Needs a table mapping, not a custom writer.
     */
    public Builder<R> staged() {
      this.staged = true;
      return this;
    }

    @Override
    void applyStrategySettings(SinkProperties p) {
      p.ifPresent(JdbcProperties.STAGING_TABLE, n -> stagingTable(checkedName("staging table", n)));
    }

    /** The staging table of {@link #staged()}, {@code name} or {@code schema.name}. */
    public Builder<R> stagingTable(String name) {
      this.staged = true;
      this.stagingTable = name;
      return this;
    }

    /**
     * Validates the configuration (the database itself is checked when the stream is created).
     *
     * @throws SinkConfigurationException naming the setting and the fix
     */
    public JdbcBatchSink<R> build() {
      if (deadLetterTable != null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': deadLetterTable(...) routes records a per-record mapper fails on; a per-batch"
                + " computation sees the whole RDD, so handle bad records inside it (or use"
                + " JdbcSink.transactional(...) with a dead-letter table)");
      }
      JdbcSpec<R> spec = spec();
      if (!staged) {
        return new JdbcBatchSink<>(spec, null);
      }
      TableMapping<R> mapping = spec.mapping();
      if (mapping == null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': staged() writes through a staging table shaped like the output table: map"
                + " outputs with table/columns/values instead of writer(...)");
      }
      String name =
          stagingTable != null
              ? stagingTable
              : (mapping.table().schema() == null ? "" : mapping.table().schema() + ".")
                  + mapping.table().name()
                  + "_eos_staging";
      return new JdbcBatchSink<>(
          spec, new Staging(SqlIdentifier.parse("staging table", name, true), mapping));
    }
  }
}
