package org.exactlyonce.spark.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.util.LongAccumulator;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.BatchSink;
import org.exactlyonce.spark.spi.CommitDecision;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;

/**
 * The driver's plan for one batch of a per-batch sink, before anything is computed: per range, what
 * the sink already committed. Another sink on the same stream may be behind this one (a stream
 * starts at the lowest offset over its sinks), and a Structured Streaming query may replay batches
 * from a checkpoint behind the sink, so a batch can hold ranges this sink committed, wholly or in
 * part. Those are skipped or trimmed here, so the sink's all-or-nothing commit sees only ranges it
 * has not committed.
 *
 * @param ranges every range of the batch
 * @param skipped the non-empty ranges already committed, reported as such
 * @param pending the ranges to compute and commit (trimmed to the stored offset where partly
 *     committed; a {@code GAP} stays as it is, for the sink to report)
 * @param floors per partition, the first offset to compute (absent: the range's start)
 * @param stored the sink's stored offsets the plan was made with
 */
public record BatchPlan(
    List<SourceRange> ranges,
    List<PartitionCommit> skipped,
    List<SourceRange> pending,
    Map<TopicPartition, Long> floors,
    Map<TopicPartition, Long> stored) {

  public BatchPlan {
    ranges = List.copyOf(ranges);
    skipped = List.copyOf(skipped);
    pending = List.copyOf(pending);
    floors = Map.copyOf(floors);
    stored = Map.copyOf(stored);
  }

  private long storedOf(SourceRange r) {
    return stored.getOrDefault(r.topicPartition(), CommitDecision.NONE);
  }

  /** Plans {@code ranges} against the offsets {@code sink} has stored now. */
  public static BatchPlan of(ExactlyOnceSink sink, List<SourceRange> ranges) {
    Map<TopicPartition, Long> stored;
    try (OffsetStore store = sink.openOffsetStore()) {
      stored = store.storedOffsets();
    }
    List<PartitionCommit> skipped = new ArrayList<>();
    List<SourceRange> pending = new ArrayList<>();
    Map<TopicPartition, Long> floors = new HashMap<>();
    for (SourceRange r : ranges) {
      long s = stored.getOrDefault(r.topicPartition(), CommitDecision.NONE);
      CommitOutcome o = CommitDecision.decide(s, r);
      if (o == CommitOutcome.ALREADY_COMMITTED && !r.isEmpty()) {
        skipped.add(new PartitionCommit(r, o, s, 0, 0, 0));
        floors.put(r.topicPartition(), r.until()); // none of its records are computed
      } else if (o == CommitOutcome.TRIMMED) {
        pending.add(SourceRange.of(r.topic(), r.partition(), s, r.until()));
        floors.put(r.topicPartition(), s);
      } else {
        pending.add(r); // COMMITTED, an empty range, or a GAP the sink reports
      }
    }
    return new BatchPlan(ranges, skipped, pending, floors, stored);
  }

  /** Whether anything is left to compute and commit. */
  public boolean writes() {
    return pending.stream().anyMatch(r -> !r.isEmpty());
  }

  /**
   * Commits the batch through {@code sink}: the pending ranges with {@code results}; or, for a
   * replay that writes nothing, the skipped ranges with {@code none} (an empty RDD), because the
   * sink's commit checks the writer epoch before it finds them committed: a driver fenced by a
   * newer one must stop, not go on skipping replays as if it still held the pipeline.
   */
  public <R> BatchSink.BatchCommit commit(
      BatchSink<R> sink, long epoch, JavaRDD<R> results, JavaRDD<R> none) {
    if (writes()) {
      return sink.commitBatch(epoch, pending, results);
    }
    if (!skipped.isEmpty()) {
      return sink.commitBatch(epoch, skipped.stream().map(PartitionCommit::range).toList(), none);
    }
    return new BatchSink.BatchCommit(List.of(), 0);
  }

  /**
   * The partitions whose stored offset lies before their range's start (or that have none): a
   * {@code GAP}, the records in between never written. Empty if there are none.
   */
  public List<PartitionCommit> gaps() {
    return pending.stream()
        .filter(r -> !r.isEmpty())
        .filter(r -> CommitDecision.decide(storedOf(r), r) == CommitOutcome.GAP)
        .map(r -> new PartitionCommit(r, CommitOutcome.GAP, storedOf(r), 0, 0, 0))
        .toList();
  }

  /**
   * The end every per-batch writer shares: {@link #commit}, the outcomes checked (a fenced or
   * mismatched range throws, failing the batch), and the batch's result published.
   *
   * @param sink the batch's sink
   * @param epoch this driver's writer epoch
   * @param results the batch's results (used if the plan {@link #writes()})
   * @param none an empty result set, committed when the batch only replays
   * @param guard the stream's guard, to which outcomes and the result go
   * @param read the records the batch's computation read, counted while the commit runs it
   * @param batchTime the batch's time, as listeners see it
   * @param started when the batch started (epoch millis), for its duration
   */
  public <R> void commitAndPublish(
      BatchSink<R> sink,
      long epoch,
      JavaRDD<R> results,
      JavaRDD<R> none,
      PipelineGuard guard,
      LongAccumulator read,
      long batchTime,
      long started) {
    BatchSink.BatchCommit commit = commit(sink, epoch, results, none);
    List<PartitionCommit> commits = outcomes(commit);
    Outcomes.check(guard, sink.pipelineId(), epoch, commits);
    guard.publish(
        new BatchResult(
            sink.pipelineId(),
            batchTime,
            commits,
            read.value(),
            commit.rowsWritten(),
            System.currentTimeMillis() - started),
        0);
  }

  /** The first offset of {@code range}'s partition to compute. */
  public long floorOf(SourceRange range) {
    return Math.max(range.from(), floors.getOrDefault(range.topicPartition(), range.from()));
  }

  /**
   * The batch's outcomes: the skipped ranges, then the sink's commits, a range committed from past
   * its start reported as the batch's range, {@code TRIMMED}.
   */
  public List<PartitionCommit> outcomes(BatchSink.BatchCommit commit) {
    if (!writes()) {
      // A replay went through the sink's commit with the skipped ranges (see commit).
      return commit.commits().isEmpty() ? skipped : commit.commits();
    }
    List<PartitionCommit> commits = new ArrayList<>(skipped);
    for (PartitionCommit c : commit.commits()) {
      SourceRange whole = rangeOf(c.range().topicPartition());
      commits.add(
          c.outcome() == CommitOutcome.COMMITTED && c.range().from() > whole.from()
              ? new PartitionCommit(
                  whole,
                  CommitOutcome.TRIMMED,
                  c.storedBefore(),
                  c.recordsIn(),
                  c.rowsWritten(),
                  c.millis())
              : c);
    }
    return commits;
  }

  private SourceRange rangeOf(TopicPartition tp) {
    return ranges.stream().filter(r -> r.topicPartition().equals(tp)).findFirst().orElseThrow();
  }
}
