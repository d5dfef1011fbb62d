package org.exactlyonce.spark;

import java.io.Serializable;

/**
 * What the commit of one offset range did. Immutable; created on an executor and sent to the
 * driver.
 *
 * @param range the range the task was given
 * @param outcome what the commit did
 * @param storedBefore the stored offset seen before the commit, or -1 if none was stored
 * @param recordsIn the Kafka records read (after trimming the already committed prefix)
 * @param rowsWritten the outputs written
 * @param millis the time the commit took, transaction included
 */
public record PartitionCommit(
    SourceRange range,
    CommitOutcome outcome,
    long storedBefore,
    long recordsIn,
    long rowsWritten,
    long millis)
    implements Serializable {

  /**
   * A commit whose {@code millis} run from {@code startedNanos} ({@link System#nanoTime()}) to now.
   */
  public static PartitionCommit since(
      long startedNanos,
      SourceRange range,
      CommitOutcome outcome,
      long storedBefore,
      long recordsIn,
      long rowsWritten) {
    return new PartitionCommit(
        range,
        outcome,
        storedBefore,
        recordsIn,
        rowsWritten,
        (System.nanoTime() - startedNanos) / 1_000_000);
  }

  /** A readable one-liner, for example {@code clicks-3[100, 200) COMMITTED stored=100 rows=100}. */
  @Override
  public String toString() {
    return range
        + " "
        + outcome
        + " stored="
        + (storedBefore < 0 ? "none" : storedBefore)
        + " records="
        + recordsIn
        + " rows="
        + rowsWritten
        + " ms="
        + millis;
  }
}
