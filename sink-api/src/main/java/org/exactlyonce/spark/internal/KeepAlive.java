package org.exactlyonce.spark.internal;

import java.time.Duration;
import java.util.List;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a sink's stored offsets alive between batches, on the driver, for stores whose offsets
 * expire when not written (a Kafka consumer group's, after {@code offsets.retention.minutes}).
 *
 * <p>Why every partition of the batch and not only the idle ones: the offsets of a partition that
 * receives nothing are never written by a batch (an empty range commits nothing), so without this
 * its progress would vanish while its neighbours advance, and the next start would take it for a
 * partition added to the topic. The ranges of a batch name every partition the stream reads.
 */
final class KeepAlive {
  private static final Logger LOG = LoggerFactory.getLogger(KeepAlive.class);

  private KeepAlive() {}

  /** Runs the sink's keep-alive if it is due. */
  static void ifDue(
      ExactlyOnceSink sink, long epoch, List<SourceRange> ranges, PipelineGuard guard) {
    Duration interval = sink.progressKeepAlive();
    if (interval.isZero() || ranges.isEmpty() || !guard.keepAliveDue(sink.pipelineId(), interval)) {
      return;
    }
    long started = System.nanoTime();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.keepAlive(ranges.stream().map(SourceRange::topicPartition).distinct().toList(), epoch);
    }
    LOG.info(
        "pipeline '{}': kept the stored offsets of {} partitions alive ({} ms)",
        sink.pipelineId(),
        ranges.size(),
        (System.nanoTime() - started) / 1_000_000);
  }
}
