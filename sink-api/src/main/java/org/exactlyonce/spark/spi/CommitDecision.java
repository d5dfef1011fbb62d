package org.exactlyonce.spark.spi;

import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;

/** The one decision every strategy makes: compare the stored offset with the range to commit. */
public final class CommitDecision {
  private CommitDecision() {}

  /**
   * Decides what committing {@code range} over the stored offset {@code stored} does. Every commit
   * is a compare-and-set on the range's start: a stored offset before it is a {@code GAP}, never a
   * silent jump, because Spark's direct stream moves on after a failed batch.
   */
  public static CommitOutcome decide(long stored, SourceRange range) {
    if (stored < range.from()) {
      return CommitOutcome.GAP;
    }
    if (stored == range.from()) {
      return CommitOutcome.COMMITTED;
    }
    if (stored < range.until()) {
      return CommitOutcome.TRIMMED;
    }
    return CommitOutcome.ALREADY_COMMITTED;
  }
}
