package org.exactlyonce.spark;

import java.util.List;

/**
 * The stored offsets and the ranges of a batch disagree: committing would lose records ({@link
 * CommitOutcome#GAP}) or the stored offset moved backwards ({@link CommitOutcome#REGRESSION}).
 * Nothing of the affected ranges was written. Fatal: the message names the pipeline, the
 * partitions, the stored offsets and the ranges, so an operator can decide (for example reset the
 * stored offset after Kafka's retention deleted records).
 */
public class OffsetMismatchException extends ExactlyOnceException {
  private static final long serialVersionUID = 1L;

  private final List<PartitionCommit> commits;

  public OffsetMismatchException(String message, List<PartitionCommit> commits) {
    super(message);
    this.commits = List.copyOf(commits);
  }

  /** The commits that failed, each with its range, outcome and the stored offset seen. */
  public List<PartitionCommit> commits() {
    return commits;
  }
}
