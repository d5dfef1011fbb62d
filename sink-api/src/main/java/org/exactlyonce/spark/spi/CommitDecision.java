package org.exactlyonce.spark.spi;

import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;

/** The one decision every strategy makes: compare the stored offset with the range to commit. */
public final class CommitDecision {
  /**
   * The stored offset of a partition that has none. Only the driver stores where a partition starts
   * (before the first batch that holds it); an executor that finds no stored offset decides {@code
   * GAP} rather than trust the range in front of it.
   */
  public static final long NONE = -1;

  private CommitDecision() {}

  /**
   * Decides what committing {@code range} over the stored offset {@code stored} does. Every commit
   * is a compare-and-set on the range's start: a stored offset before it is a {@code GAP}, never a
   * silent jump, because Spark's direct stream moves on after a failed batch. {@code stored} is
   * {@link #NONE} where the partition has no stored offset, which is a {@code GAP}.
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
