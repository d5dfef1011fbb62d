package org.exactlyonce.spark.internal;

import java.util.Iterator;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.streaming.Time;
import org.apache.spark.streaming.kafka010.HasOffsetRanges;
import org.apache.spark.streaming.kafka010.OffsetRange;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.TransactionalSink;

/**
 * The body of {@code foreachRDD} for a transactional sink: partition i of the batch commits offset
 * range i on its executor; the driver collects the outcomes, publishes them and stops the pipeline
 * on the first failure.
 */
public final class TransactionalBatch<K, V, R>
    implements VoidFunction2<JavaRDD<ConsumerRecord<K, V>>, Time> {
  private static final long serialVersionUID = 1L;

  private final TransactionalSink<R> sink;
  private final RecordMapper<K, V, R> mapper;
  private final long epoch;
  // Driver-only state. foreachRDD functions are not serialised unless Spark checkpointing is on,
  // which this library does not need (offsets live in the sink).
  private final transient PipelineGuard guard;

  public TransactionalBatch(
      TransactionalSink<R> sink, RecordMapper<K, V, R> mapper, long epoch, PipelineGuard guard) {
    this.sink = sink;
    this.mapper = mapper;
    this.epoch = epoch;
    this.guard = guard;
  }

  @Override
  public void call(JavaRDD<ConsumerRecord<K, V>> rdd, Time time) {
    commit(rdd, null, time.milliseconds());
  }

  /**
   * Commits partition i of {@code rdd} with range i of {@code ranges} on the executors, then checks
   * and publishes the outcomes on the driver; stops the pipeline on the first failure. For a
   * Structured Streaming batch too, whose rows the caller turned into records, partition for
   * partition.
   *
   * @param given the ranges, partition i's at i; null for a direct-stream RDD's own
   * @throws ExactlyOnceException if the partitions and ranges differ in number
   */
  public void commit(JavaRDD<ConsumerRecord<K, V>> rdd, List<SourceRange> given, long batchTime) {
    PipelineGuard guard = PipelineGuard.of(this.guard);
    guard.checkRunning();
    long started = System.currentTimeMillis();
    try {
      List<SourceRange> ranges = given != null ? given : sourceRanges(rangesOf(rdd));
      if (ranges.size() != rdd.getNumPartitions()) {
        throw new ExactlyOnceException(
            "the batch has "
                + rdd.getNumPartitions()
                + " partitions for "
                + ranges.size()
                + " offset ranges, so its partitions do not map to ranges; nothing was written");
      }
      NewPartitions.storeStarts(sink, epoch, ranges, guard);
      List<Committed> committed =
          rdd.mapPartitionsWithIndex(
                  new CommitPartition<>(sink, mapper, epoch, ranges.toArray(new SourceRange[0])),
                  false)
              .collect();
      BatchResult result =
          BatchResult.ofRanges(
              sink.pipelineId(),
              batchTime,
              committed.stream().map(Committed::commit).toList(),
              System.currentTimeMillis() - started);
      Outcomes.check(guard, sink.pipelineId(), epoch, result.commits());
      guard.publish(result, committed.stream().mapToLong(Committed::deadLetters).sum());
    } catch (Throwable e) {
      // Not only RuntimeException: Spark's SparkException ("Job aborted") is a checked exception
      // that Scala throws undeclared, and it is the usual way a batch fails.
      guard.fail(sink.pipelineId(), e);
      throw e;
    }
  }

  /**
   * The offset ranges of a direct-stream RDD, partition i holding range i.
   *
   * @throws ExactlyOnceException if the RDD no longer maps its partitions to offset ranges
   */
  public static OffsetRange[] rangesOf(JavaRDD<?> rdd) {
    if (!(rdd.rdd() instanceof HasOffsetRanges)) {
      throw new ExactlyOnceException(
          "the RDD "
              + rdd.rdd()
              + " does not come straight from the Kafka direct stream, so its partitions no longer"
              + " map to offset ranges (a shuffle, repartition or transformation came between):"
              + " per-record exactly-once output needs the direct stream's own RDD. For results"
              + " computed after a shuffle, use a per-batch sink.");
    }
    OffsetRange[] ranges = ((HasOffsetRanges) rdd.rdd()).offsetRanges();
    if (ranges.length != rdd.getNumPartitions()) {
      throw new ExactlyOnceException(
          "the RDD has "
              + rdd.getNumPartitions()
              + " partitions for "
              + ranges.length
              + " offset ranges; use a per-batch sink for results computed after a shuffle");
    }
    return ranges;
  }

  /** The ranges of a batch as value types. */
  public static List<SourceRange> sourceRanges(OffsetRange[] ranges) {
    return java.util.Arrays.stream(ranges).map(SourceRange::of).toList();
  }

  /** The commit of one range and the dead letters it wrote (none unless it wrote its outputs). */
  private record Committed(PartitionCommit commit, long deadLetters)
      implements java.io.Serializable {}

  /** Runs on executors: commits range i of partition i. Holds no reference to the driver. */
  private static final class CommitPartition<K, V, R>
      implements Function2<Integer, Iterator<ConsumerRecord<K, V>>, Iterator<Committed>> {
    private static final long serialVersionUID = 1L;
    private final TransactionalSink<R> sink;
    private final RecordMapper<K, V, R> mapper;
    private final long epoch;
    private final SourceRange[] ranges;

    CommitPartition(
        TransactionalSink<R> sink, RecordMapper<K, V, R> mapper, long epoch, SourceRange[] ranges) {
      this.sink = sink;
      this.mapper = mapper;
      this.epoch = epoch;
      this.ranges = ranges;
    }

    @Override
    public Iterator<Committed> call(Integer index, Iterator<ConsumerRecord<K, V>> records) {
      SourceRange range = ranges[index];
      if (range.isEmpty()) {
        // Nothing to write: no need to open a transaction (idle topics would pay one per batch).
        return List.of(
                new Committed(new PartitionCommit(range, CommitOutcome.COMMITTED, -1, 0, 0, 0), 0))
            .iterator();
      }
      FaultPoints.inRange(range);
      try {
        FaultPoints.reach(FaultPoints.TASK_BEFORE_WRITE);
        MappedPartition<K, V, R> outputs =
            new MappedPartition<>(records, mapper, range, sink.routesBadRecordsToDeadLetters());
        PartitionCommit commit = sink.commit(epoch, range, outputs);
        FaultPoints.reach(FaultPoints.TASK_AFTER_COMMIT);
        ExecutorMetrics.taskCommitted(
            commit.outcome(), commit.recordsIn(), commit.rowsWritten(), commit.millis());
        boolean wrote =
            commit.outcome() == CommitOutcome.COMMITTED
                || commit.outcome() == CommitOutcome.TRIMMED;
        return List.of(new Committed(commit, wrote ? outputs.deadLetters().size() : 0)).iterator();
      } finally {
        FaultPoints.leaveRange();
      }
    }
  }
}
