package org.exactlyonce.spark.spi;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SourceRange;

/**
 * The exactly-once commit protocol, written once for every backend: check the writer epoch, lock
 * and read the stored offsets, decide each range ({@link CommitDecision}), advance the stored
 * offsets with a compare-and-set, write the outputs. A backend supplies the primitive ({@link
 * CommitUnit}) and its write path, opens the unit before calling the protocol and commits it after;
 * no backend makes a decision of its own.
 *
 * <p>Three shapes, one per strategy:
 *
 * <ul>
 *   <li>{@link #commitRange}: strategy T, one range with its outputs in one unit, on an executor;
 *   <li>{@link #commitBatch}: strategy T-batch, every range of a batch with the batch's results in
 *       one unit, all or nothing;
 *   <li>{@link #advanceRanges}: the offsets alone, after outputs that a replay overwrites were
 *       written (strategy I) or committed elsewhere.
 * </ul>
 */
public final class CommitProtocol {
  private CommitProtocol() {}

  /** Writes the outputs of one range from a stored offset on, inside the backend's unit. */
  @FunctionalInterface
  public interface OutputWriter<R, X extends Exception> {
    /**
     * Writes {@code outputs.positionedFrom(from)} and {@code outputs.deadLetters()}.
     *
     * @return the outputs written
     */
    long write(PartitionOutputs<R> outputs, long from) throws X;
  }

  /** Writes the results of a whole batch, inside the backend's unit. */
  @FunctionalInterface
  public interface BatchWriter<X extends Exception> {
    /**
     * @return the results written
     */
    long write() throws X;
  }

  /** The fixed lock order of every unit: topic, then partition, so two units never deadlock. */
  public static final Comparator<SourceRange> LOCK_ORDER =
      Comparator.comparing(SourceRange::topic).thenComparing(SourceRange::partition);

  /**
   * Strategy T: commits {@code range} and the outputs {@code writer} writes, for writer {@code
   * epoch}, in {@code unit}. A replay ({@code ALREADY_COMMITTED}), a {@code GAP} or a fenced writer
   * returns without writing; a partly committed range ({@code TRIMMED}) writes only the outputs of
   * offsets past the stored one. Reaches {@link FaultPoints#TASK_BEFORE_COMMIT} after writing,
   * before the backend commits the unit.
   *
   * @throws X from the writer; the backend then aborts the unit
   */
  public static <R, X extends Exception> PartitionCommit commitRange(
      CommitUnit unit,
      long epoch,
      SourceRange range,
      PartitionOutputs<R> outputs,
      OutputWriter<R, X> writer)
      throws X {
    long started = System.nanoTime();
    if (!unit.epochIsCurrent(epoch)) {
      return PartitionCommit.since(started, range, CommitOutcome.FENCED, -1, 0, 0);
    }
    long stored = storedOf(unit.lockStoredOffsets(List.of(range)), range);
    CommitOutcome outcome = CommitDecision.decide(stored, range);
    if (!writes(outcome)) {
      return PartitionCommit.since(started, range, outcome, stored, 0, 0);
    }
    advanceLocked(unit, List.of(new CommitUnit.Advance(range, stored)), epoch);
    long rows = writer.write(outputs, stored);
    FaultPoints.reach(FaultPoints.TASK_BEFORE_COMMIT);
    return PartitionCommit.since(started, range, outcome, stored, outputs.recordsRead(), rows);
  }

  /**
   * Strategy T-batch: commits every range of {@code ranges} (empty ones are left out) together with
   * the results {@code writer} writes, for writer {@code epoch}, in {@code unit}. All or nothing:
   * if every range is already committed the batch is a replay and nothing is written; if every
   * range is a {@code GAP} they are returned for the driver to report; any other mix is refused.
   * Reaches {@link FaultPoints#BATCH_BEFORE_COMMIT} after writing.
   *
   * @throws OffsetMismatchException if the ranges are partly committed (nothing is written)
   * @throws X from the writer; the backend then aborts the unit
   */
  public static <X extends Exception> BatchSink.BatchCommit commitBatch(
      CommitUnit unit,
      PipelineId pipeline,
      long epoch,
      List<SourceRange> ranges,
      BatchWriter<X> writer)
      throws X {
    long started = System.nanoTime();
    List<SourceRange> ordered =
        ranges.stream().filter(r -> !r.isEmpty()).sorted(LOCK_ORDER).toList();
    if (ordered.isEmpty()) {
      return new BatchSink.BatchCommit(List.of(), 0);
    }
    if (!unit.epochIsCurrent(epoch)) {
      return new BatchSink.BatchCommit(fenced(ordered), 0);
    }
    Map<org.apache.kafka.common.TopicPartition, Long> stored = unit.lockStoredOffsets(ordered);
    List<PartitionCommit> decided = new ArrayList<>();
    for (SourceRange r : ordered) {
      long s = storedOf(stored, r);
      decided.add(new PartitionCommit(r, CommitDecision.decide(s, r), s, 0, 0, 0));
    }
    if (all(decided, CommitOutcome.ALREADY_COMMITTED) || all(decided, CommitOutcome.GAP)) {
      return new BatchSink.BatchCommit(decided, 0); // a replay; or gaps the driver reports
    }
    if (!all(decided, CommitOutcome.COMMITTED)) {
      throw new OffsetMismatchException(
          "pipeline '"
              + pipeline
              + "': the ranges of this batch are partly committed, so it can be"
              + " neither written nor skipped as a whole: "
              + decided
              + ". Nothing was written. A per-batch sink and another writer (or a"
              + " per-record sink) share this pipeline id, or offsets were edited:"
              + " give each sink its own pipeline id.",
          decided);
    }
    advanceLocked(
        unit,
        decided.stream().map(c -> new CommitUnit.Advance(c.range(), c.storedBefore())).toList(),
        epoch);
    long rows = writer.write();
    FaultPoints.reach(FaultPoints.BATCH_BEFORE_COMMIT);
    long millis = (System.nanoTime() - started) / 1_000_000;
    List<PartitionCommit> done =
        decided.stream()
            .map(c -> new PartitionCommit(c.range(), c.outcome(), c.storedBefore(), 0, 0, millis))
            .toList();
    return new BatchSink.BatchCommit(done, rows);
  }

  /**
   * Advances the stored offsets of {@code ranges} for writer {@code epoch}, in {@code unit}, each a
   * compare-and-set on its range's start, for outputs already written. A range at or past its end
   * is {@code ALREADY_COMMITTED}; a range partly committed is {@code TRIMMED} and advanced; a range
   * whose stored offset is before its start (or absent) is a {@code GAP} and is not advanced, while
   * the others are (their outputs are written, so every outcome returned is true). A unit that does
   * not lock and reports a changed offset is read and decided again, up to {@code attempts} times.
   *
   * @return one commit per range, in lock order; {@code FENCED} for all if {@code epoch} is not
   *     current
   * @throws org.exactlyonce.spark.WriterFencedException if the offsets keep changing under a unit
   *     that does not lock
   */
  public static List<PartitionCommit> advanceRanges(
      CommitUnit unit, long epoch, List<SourceRange> ranges) {
    long started = System.nanoTime();
    List<SourceRange> ordered = ranges.stream().sorted(LOCK_ORDER).toList();
    for (int attempt = 1; ; attempt++) {
      if (!unit.epochIsCurrent(epoch)) {
        return fenced(ordered);
      }
      Map<org.apache.kafka.common.TopicPartition, Long> stored = unit.lockStoredOffsets(ordered);
      List<PartitionCommit> decided = new ArrayList<>();
      List<CommitUnit.Advance> advances = new ArrayList<>();
      for (SourceRange r : ordered) {
        long s = storedOf(stored, r);
        CommitOutcome o = CommitDecision.decide(s, r);
        if (writes(o)) {
          advances.add(new CommitUnit.Advance(r, s));
        }
        decided.add(new PartitionCommit(r, o, s, 0, 0, 0));
      }
      if (advances.isEmpty() || unit.advance(advances, epoch)) {
        long millis = (System.nanoTime() - started) / 1_000_000;
        return decided.stream()
            .map(c -> new PartitionCommit(c.range(), c.outcome(), c.storedBefore(), 0, 0, millis))
            .toList();
      }
      if (attempt >= CONTENDED_ATTEMPTS) {
        throw new org.exactlyonce.spark.WriterFencedException(
            "the stored offsets of "
                + ordered
                + " keep changing under this writer's commits (epoch "
                + epoch
                + "): another writer of the same epoch is committing them");
      }
    }
  }

  /**
   * For a unit whose advance can fail with an unknown outcome (a timeout of a conditional write
   * that may still apply): the commit of a range that an earlier attempt tried to advance with
   * {@code earlier}, given what the protocol decided now ({@code now}). A range found exactly at
   * its end was advanced by that attempt, so its outcome is what that attempt decided; otherwise
   * {@code now} stands.
   */
  public static PartitionCommit afterUnknownOutcome(
      PartitionCommit now, CommitUnit.Advance earlier) {
    if (earlier == null
        || now.outcome() != CommitOutcome.ALREADY_COMMITTED
        || now.storedBefore() != now.range().until()
        || !earlier.range().equals(now.range())) {
      return now;
    }
    CommitOutcome o =
        earlier.expected() == earlier.range().from()
            ? CommitOutcome.COMMITTED
            : CommitOutcome.TRIMMED;
    return new PartitionCommit(
        now.range(), o, earlier.expected(), now.recordsIn(), now.rowsWritten(), now.millis());
  }

  /** How often {@link #advanceRanges} decides again after a compare-and-set found a change. */
  static final int CONTENDED_ATTEMPTS = 10;

  /** Whether an outcome writes outputs and advances the offset. */
  public static boolean writes(CommitOutcome outcome) {
    return outcome == CommitOutcome.COMMITTED || outcome == CommitOutcome.TRIMMED;
  }

  private static void advanceLocked(CommitUnit unit, List<CommitUnit.Advance> advances, long e) {
    if (!unit.advance(advances, e)) {
      // The unit locked the offsets: a change under the lock means the unit is broken. Throwing
      // makes the backend abort, and Spark retries the task.
      throw new org.exactlyonce.spark.ExactlyOnceException(
          "the stored offsets of "
              + advances.stream().map(CommitUnit.Advance::range).toList()
              + " changed under their lock; nothing was committed");
    }
  }

  private static long storedOf(
      Map<org.apache.kafka.common.TopicPartition, Long> stored, SourceRange r) {
    Long s = stored.get(r.topicPartition());
    return s == null ? CommitDecision.NONE : s;
  }

  private static boolean all(List<PartitionCommit> commits, CommitOutcome outcome) {
    return commits.stream().allMatch(c -> c.outcome() == outcome);
  }

  private static List<PartitionCommit> fenced(List<SourceRange> ranges) {
    return ranges.stream()
        .map(r -> new PartitionCommit(r, CommitOutcome.FENCED, -1, 0, 0, 0))
        .toList();
  }
}
