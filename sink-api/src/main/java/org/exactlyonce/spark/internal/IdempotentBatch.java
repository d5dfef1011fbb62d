package org.exactlyonce.spark.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.streaming.Time;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitDecision;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.OffsetStore;

/**
 * The body of {@code foreachRDD} for an idempotent sink: decide each range against the stored
 * offsets, let the executors upsert, then advance every offset at once on the driver.
 */
public final class IdempotentBatch<K, V, R>
    implements VoidFunction2<JavaRDD<ConsumerRecord<K, V>>, Time> {
  private static final long serialVersionUID = 1L;

  private final IdempotentSink<R> sink;
  private final RecordMapper<K, V, R> mapper;
  private final long epoch;
  private final transient PipelineGuard guard;

  public IdempotentBatch(
      IdempotentSink<R> sink, RecordMapper<K, V, R> mapper, long epoch, PipelineGuard guard) {
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
   * Writes partition i of {@code rdd} as range i of {@code given} on the executors, then advances
   * the stored offsets on the driver; stops the pipeline on the first failure. For a Structured
   * Streaming batch too, whose rows the caller turned into records, partition for partition.
   *
   * @param given the ranges, partition i's at i; null for a direct-stream RDD's own
   */
  public void commit(JavaRDD<ConsumerRecord<K, V>> rdd, List<SourceRange> given, long batchTime) {
    PipelineGuard guard = PipelineGuard.of(this.guard);
    guard.checkRunning();
    long started = System.currentTimeMillis();
    try {
      SourceRange[] ranges =
          (given != null
                  ? given
                  : TransactionalBatch.sourceRanges(TransactionalBatch.rangesOf(rdd)))
              .toArray(new SourceRange[0]);
      if (ranges.length != rdd.getNumPartitions()) {
        throw new org.exactlyonce.spark.ExactlyOnceException(
            "the batch has "
                + rdd.getNumPartitions()
                + " partitions for "
                + ranges.length
                + " offset ranges, so its partitions do not map to ranges; nothing was written");
      }
      NewPartitions.storeStarts(sink, epoch, List.of(ranges), guard);
      write(rdd, batchTime, ranges, guard, started);
    } catch (Throwable e) {
      // Not only RuntimeException: Spark's SparkException ("Job aborted") is a checked exception
      // that Scala throws undeclared, and it is the usual way a batch fails.
      guard.fail(sink.pipelineId(), e);
      throw e;
    }
  }

  private void write(
      JavaRDD<ConsumerRecord<K, V>> rdd,
      long batchTime,
      SourceRange[] ranges,
      PipelineGuard guard,
      long started) {
    try (OffsetStore store = sink.openOffsetStore()) {
      Map<TopicPartition, Long> stored = store.storedOffsets();
      long[] from = new long[ranges.length];
      List<PartitionCommit> decided = new ArrayList<>();
      List<SourceRange> toCommit = new ArrayList<>();
      for (int i = 0; i < ranges.length; i++) {
        SourceRange r = ranges[i];
        long s = stored.getOrDefault(r.topicPartition(), CommitDecision.NONE);
        CommitOutcome o = r.isEmpty() ? CommitOutcome.COMMITTED : CommitDecision.decide(s, r);
        from[i] = o == CommitOutcome.COMMITTED || o == CommitOutcome.TRIMMED ? s : -1;
        if (!r.isEmpty() && (from[i] >= 0 || o == CommitOutcome.ALREADY_COMMITTED)) {
          // A replayed range too: nothing of it is written, but committing it again checks the
          // writer epoch, so a driver fenced by a newer one stops instead of skipping replays on.
          toCommit.add(r);
        } else {
          decided.add(new PartitionCommit(r, o, r.isEmpty() ? -1 : s, 0, 0, 0));
        }
      }
      // A gap fails the batch before anything is written.
      Outcomes.check(
          guard,
          sink.pipelineId(),
          epoch,
          decided.stream().filter(c -> !c.outcome().isSuccess()).toList());

      List<long[]> written =
          rdd.mapPartitionsWithIndex(new WritePartition<>(sink, mapper, ranges, from), false)
              .collect();
      FaultPoints.reach(FaultPoints.IDEMPOTENT_BEFORE_OFFSET_COMMIT);

      Map<SourceRange, long[]> counts = new HashMap<>();
      long deadLetters = 0;
      for (long[] w : written) {
        counts.put(ranges[(int) w[0]], w);
        deadLetters += w[4];
      }
      List<PartitionCommit> commits = new ArrayList<>(decided);
      for (PartitionCommit c : store.commitRanges(epoch, toCommit)) {
        long[] w = counts.get(c.range());
        commits.add(
            new PartitionCommit(
                c.range(), c.outcome(), c.storedBefore(), w[1], w[2], c.millis() + w[3]));
      }
      Outcomes.check(guard, sink.pipelineId(), epoch, commits);
      guard.publish(
          BatchResult.ofRanges(
              sink.pipelineId(), batchTime, commits, System.currentTimeMillis() - started),
          deadLetters);
    }
  }

  /**
   * Runs on executors: upserts partition i from its decided offset; returns its index, records
   * read, rows written, milliseconds and dead letters.
   */
  private static final class WritePartition<K, V, R>
      implements Function2<Integer, Iterator<ConsumerRecord<K, V>>, Iterator<long[]>> {
    private static final long serialVersionUID = 1L;
    private final IdempotentSink<R> sink;
    private final RecordMapper<K, V, R> mapper;
    private final SourceRange[] ranges;
    private final long[] from;

    WritePartition(
        IdempotentSink<R> sink, RecordMapper<K, V, R> mapper, SourceRange[] ranges, long[] from) {
      this.sink = sink;
      this.mapper = mapper;
      this.ranges = ranges;
      this.from = from;
    }

    @Override
    public Iterator<long[]> call(Integer index, Iterator<ConsumerRecord<K, V>> records) {
      SourceRange range = ranges[index];
      if (from[index] < 0 || range.isEmpty()) {
        return List.of(new long[] {index, 0, 0, 0, 0}).iterator();
      }
      long started = System.nanoTime();
      MappedPartition<K, V, R> outputs =
          new MappedPartition<>(records, mapper, range, sink.routesBadRecordsToDeadLetters());
      long rows;
      FaultPoints.inRange(range);
      try {
        FaultPoints.reach(FaultPoints.TASK_BEFORE_WRITE);
        rows = sink.write(range, from[index], outputs);
        FaultPoints.reach(FaultPoints.TASK_AFTER_COMMIT);
      } finally {
        FaultPoints.leaveRange();
      }
      // An idempotent write is committed when it returns; the stored offsets follow on the driver.
      ExecutorMetrics.taskCommitted(
          CommitOutcome.COMMITTED,
          outputs.recordsRead(),
          rows,
          (System.nanoTime() - started) / 1_000_000);
      return List.of(
              new long[] {
                index,
                outputs.recordsRead(),
                rows,
                (System.nanoTime() - started) / 1_000_000,
                outputs.deadLetters().size()
              })
          .iterator();
    }
  }
}
