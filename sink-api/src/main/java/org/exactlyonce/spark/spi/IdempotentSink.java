package org.exactlyonce.spark.spi;

import org.exactlyonce.spark.SourceRange;

/**
 * A sink whose every write is an idempotent upsert keyed by the source position or a natural key
 * (strategy I of the design): a replay rewrites the same keys and never overwrites a newer value
 * with an older one. Offsets are stored by the driver only after every partition of the batch has
 * written ({@link OffsetStore#commitRanges}); a crash in between only causes a replay.
 *
 * @param <R> the output type
 */
public interface IdempotentSink<R> extends ExactlyOnceSink {

  /**
   * Runs on an executor: upserts the outputs of the records of {@code range} at or after {@code
   * fromOffset}.
   *
   * @return the outputs written
   * @throws RuntimeException on failure; Spark retries the task, which rewrites the same keys
   */
  long write(SourceRange range, long fromOffset, PartitionOutputs<R> outputs);
}
