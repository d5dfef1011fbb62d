package org.exactlyonce.spark.spi;

import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;

/**
 * A sink that writes the outputs of one offset range and advances the stored offset in one atomic
 * step (strategy T of the design): a replay of the same range finds the offset already advanced and
 * writes nothing.
 *
 * @param <R> the output type
 */
public interface TransactionalSink<R> extends ExactlyOnceSink {

  /**
   * Runs on an executor: commits {@code range} for writer {@code epoch}, writing the outputs that
   * {@code outputs} yields for the offsets not yet committed. Outcomes that write nothing (replay,
   * gap, fenced) are returned, not thrown; a failure while writing is thrown after rolling back, so
   * that Spark retries the task.
   */
  PartitionCommit commit(long epoch, SourceRange range, PartitionOutputs<R> outputs);
}
