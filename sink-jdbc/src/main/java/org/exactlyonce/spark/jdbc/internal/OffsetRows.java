package org.exactlyonce.spark.jdbc.internal;

import java.util.Optional;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitDecision;
import org.jdbi.v3.core.Handle;

/** Reads and advances offset rows inside a caller's transaction. */
final class OffsetRows {
  private OffsetRows() {}

  /**
   * Whether {@code epoch} is the pipeline's current writer epoch; holds a shared lock on it until
   * the transaction ends, so a newer driver's epoch cannot be taken in between.
   */
  static boolean epochIsCurrent(
      Handle h, PostgresDialect dialect, PipelineId pipeline, long epoch) {
    Optional<Long> current =
        h.createQuery(dialect.lockEpoch())
            .bind("pipeline", pipeline.value())
            .mapTo(Long.class)
            .findOne();
    return current.isPresent() && current.get() == epoch;
  }

  /**
   * Locks and reads the stored offset of the range's partition, or {@link CommitDecision#NONE}
   * where it has no row: only the driver stores where a partition starts, so no row is a {@code
   * GAP}, never a start taken from the range in front of it.
   */
  static long lock(Handle h, PostgresDialect dialect, PipelineId pipeline, SourceRange range) {
    return select(h, dialect, pipeline, range).orElse(CommitDecision.NONE);
  }

  private static Optional<Long> select(
      Handle h, PostgresDialect dialect, PipelineId pipeline, SourceRange range) {
    return h.createQuery(dialect.lockOffset())
        .bind("pipeline", pipeline.value())
        .bind("topic", range.topic())
        .bind("partition", range.partition())
        .mapTo(Long.class)
        .findOne();
  }

  /** Compare-and-set from {@code expected} to the range's end; the row must be locked. */
  static void advance(
      Handle h,
      PostgresDialect dialect,
      PipelineId pipeline,
      long epoch,
      SourceRange range,
      long expected) {
    int updated =
        h.createUpdate(dialect.advanceOffset())
            .bind("until", range.until())
            .bind("epoch", epoch)
            .bind("pipeline", pipeline.value())
            .bind("topic", range.topic())
            .bind("partition", range.partition())
            .bind("expected", expected)
            .execute();
    if (updated != 1) {
      // Cannot happen while the row lock is held; if it does, roll everything back.
      throw new ExactlyOnceException(
          "the offset row of "
              + range.topicPartition()
              + " changed under its lock (expected "
              + expected
              + "); rolling back");
    }
  }
}
