package org.exactlyonce.spark;

/** What an attempt to commit one offset range did. */
public enum CommitOutcome {
  /** The stored offset was the range's start: the outputs were written and the offset advanced. */
  COMMITTED(true),
  /**
   * The stored offset was already at or past the range's end: a replay (task retry, speculative
   * copy, restart). Nothing was written; this is a success, not a failure.
   */
  ALREADY_COMMITTED(true),
  /**
   * The stored offset was inside the range: an older attempt committed a prefix. Only the outputs
   * of the records at or after the stored offset were written.
   */
  TRIMMED(true),
  /**
   * The stored offset is before the range's start: committing would lose the records in between.
   * Nothing was written; the pipeline stops.
   */
  GAP(false),
  /**
   * The stored offset moved backwards (below an offset this driver saw committed). Nothing was
   * written; the pipeline stops.
   */
  REGRESSION(false),
  /** A newer driver took over this pipeline id. Nothing was written; this driver must stop. */
  FENCED(false);

  private final boolean success;

  CommitOutcome(boolean success) {
    this.success = success;
  }

  /** Whether the range is now committed (by this attempt or an earlier one). */
  public boolean isSuccess() {
    return success;
  }
}
