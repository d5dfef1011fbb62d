package org.exactlyonce.spark;

import java.util.List;

/**
 * What one batch wrote for one sink, built on the driver from the commits of all its ranges.
 * Immutable.
 *
 * @param pipelineId the sink's pipeline id
 * @param batchTimeMs Spark's batch time (for logs only: identity comes from the ranges)
 * @param commits one entry per offset range of the batch
 * @param recordsIn Kafka records read by this attempt (replayed ranges count zero)
 * @param rowsWritten outputs written
 * @param millis wall time of the whole output operation on the driver
 */
public record BatchResult(
    PipelineId pipelineId,
    long batchTimeMs,
    List<PartitionCommit> commits,
    long recordsIn,
    long rowsWritten,
    long millis) {

  public BatchResult {
    commits = List.copyOf(commits);
  }

  /** A result whose records and rows are the sums over its per-range commits. */
  public static BatchResult ofRanges(
      PipelineId pipelineId, long batchTimeMs, List<PartitionCommit> commits, long millis) {
    return new BatchResult(
        pipelineId,
        batchTimeMs,
        commits,
        commits.stream().mapToLong(PartitionCommit::recordsIn).sum(),
        commits.stream().mapToLong(PartitionCommit::rowsWritten).sum(),
        millis);
  }

  /** Ranges skipped because they were already committed (replays). */
  public long replaysSkipped() {
    return count(CommitOutcome.ALREADY_COMMITTED);
  }

  /** Ranges of which a prefix had been committed by an older attempt. */
  public long rangesTrimmed() {
    return count(CommitOutcome.TRIMMED);
  }

  /** The slowest commit of the batch, in milliseconds. */
  public long maxCommitMillis() {
    return commits.stream().mapToLong(PartitionCommit::millis).max().orElse(0);
  }

  private long count(CommitOutcome outcome) {
    return commits.stream().filter(c -> c.outcome() == outcome).count();
  }

  /**
   * The one log line of a batch, for example {@code pipeline 'clicks' batch
   * 2026-12-01T10:15:30.500Z: records=1200 rows=1200 replaysSkipped=0 trimmed=0 ranges=4
   * maxCommitMs=35 took 120 ms} (batch time in ISO-8601 UTC).
   */
  @Override
  public String toString() {
    return "pipeline '"
        + pipelineId
        + "' batch "
        + java.time.Instant.ofEpochMilli(batchTimeMs)
        + ": records="
        + recordsIn
        + " rows="
        + rowsWritten
        + " replaysSkipped="
        + replaysSkipped()
        + " trimmed="
        + rangesTrimmed()
        + " ranges="
        + commits.size()
        + " maxCommitMs="
        + maxCommitMillis()
        + " took "
        + millis
        + " ms";
  }
}
