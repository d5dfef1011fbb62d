package org.exactlyonce.spark.spi;

import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;

/**
 * A sink that writes the results of a whole batch and advances the offsets of <em>all</em> its
 * ranges in one atomic step (strategy T-batch of the design), for results computed after a shuffle,
 * whose partitions no longer map to offset ranges. All or nothing: a batch whose ranges are partly
 * committed is an error.
 *
 * @param <R> the result type
 */
public interface BatchSink<R> extends ExactlyOnceSink {

  /**
   * Runs on the driver: commits {@code ranges} (every range of the batch) together with {@code
   * results}, for writer {@code epoch}. Returns one commit per range; if the batch was already
   * committed (a replay) every range is {@code ALREADY_COMMITTED} and nothing is written.
   *
   * @throws org.exactlyonce.spark.OffsetMismatchException if the ranges are partly committed
   */
  BatchCommit commitBatch(long epoch, List<SourceRange> ranges, JavaRDD<R> results);

  /**
   * What a batch commit did.
   *
   * @param commits one per range
   * @param rowsWritten results written (zero for a replay)
   */
  record BatchCommit(List<PartitionCommit> commits, long rowsWritten) {
    public BatchCommit {
      commits = List.copyOf(commits);
    }
  }
}
