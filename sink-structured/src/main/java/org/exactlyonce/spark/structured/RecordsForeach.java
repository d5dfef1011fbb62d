package org.exactlyonce.spark.structured;

import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.BatchPlan;
import org.exactlyonce.spark.internal.IdempotentBatch;
import org.exactlyonce.spark.internal.NewPartitions;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.internal.TransactionalBatch;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.TransactionalSink;

/**
 * The {@code foreachBatch} function of a per-record sink: partition i of the batch is Kafka range
 * i, mapped record by record and written on its executor exactly as a DStream batch is, by the same
 * code: in one transaction with its range (strategy T, {@link TransactionalBatch}), or upserted and
 * its offsets advanced after the batch (strategy I, {@link IdempotentBatch}). Runs on the driver,
 * on the query's thread; a failure throws, which stops the query before Spark records the batch.
 */
final class RecordsForeach implements VoidFunction2<Dataset<Row>, Long> {
  private static final long serialVersionUID = 1L;

  /** Writes a batch's records, partition i as range i: the DStream path's own batch writer. */
  interface Writer {
    void commit(JavaRDD<ConsumerRecord<byte[], byte[]>> records, List<SourceRange> ranges, long at);
  }

  private final ExactlyOnceSink sink;
  private final long epoch;
  private final String checkpointLocation;
  private final transient Writer commit;
  private final transient PipelineGuard guard;

  RecordsForeach(
      ExactlyOnceSink sink,
      Writer commit,
      long epoch,
      String checkpointLocation,
      PipelineGuard guard) {
    this.sink = sink;
    this.epoch = epoch;
    this.checkpointLocation = checkpointLocation;
    this.commit = commit;
    this.guard = guard;
  }

  static <R> RecordsForeach transactional(
      TransactionalSink<R> sink,
      RecordMapper<byte[], byte[], R> mapper,
      long epoch,
      String checkpointLocation,
      PipelineGuard guard) {
    TransactionalBatch<byte[], byte[], R> batch =
        new TransactionalBatch<>(sink, mapper, epoch, guard);
    return new RecordsForeach(sink, batch::commit, epoch, checkpointLocation, guard);
  }

  static <R> RecordsForeach idempotent(
      IdempotentSink<R> sink,
      RecordMapper<byte[], byte[], R> mapper,
      long epoch,
      String checkpointLocation,
      PipelineGuard guard) {
    IdempotentBatch<byte[], byte[], R> batch = new IdempotentBatch<>(sink, mapper, epoch, guard);
    return new RecordsForeach(sink, batch::commit, epoch, checkpointLocation, guard);
  }

  @Override
  public void call(Dataset<Row> batch, Long batchId) {
    PipelineGuard guard = PipelineGuard.of(this.guard);
    guard.checkRunning();
    JavaRDD<Row> rows = batch.toJavaRDD();
    List<SourceRange> ranges;
    try {
      ranges = KafkaBatchRanges.perPartition(rows.rdd());
      // The executors decide each range; this driver-side look first refuses a checkpoint ahead
      // of the sink before any range of the batch commits.
      NewPartitions.storeStarts(sink, epoch, ranges, guard);
      CheckpointGaps.check(sink.pipelineId(), BatchPlan.of(sink, ranges), checkpointLocation);
    } catch (RuntimeException e) {
      guard.fail(sink.pipelineId(), e);
      throw e;
    }
    JavaRDD<ConsumerRecord<byte[], byte[]>> records = rows.map(new KafkaRows(batch.schema()));
    commit.commit(records, ranges, System.currentTimeMillis());
  }
}
