package org.exactlyonce.spark.internal;

import java.time.Duration;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;
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
public final class KeepAlive {
  private static final Logger LOG = LoggerFactory.getLogger(KeepAlive.class);

  private KeepAlive() {}

  /**
   * Runs the sink's keep-alive if it is due, for the partitions of a batch's ranges and every other
   * partition this driver knows the pipeline stored: a Structured Streaming batch holds no range
   * for a partition with nothing new, so its ranges alone would leave an idle partition's offset to
   * expire while the batches reset the interval.
   */
  static void ifDue(
      ExactlyOnceSink sink, long epoch, List<SourceRange> ranges, PipelineGuard guard) {
    Set<TopicPartition> partitions = new LinkedHashSet<>();
    ranges.forEach(r -> partitions.add(r.topicPartition()));
    partitions.addAll(guard.storedPartitions(sink.pipelineId()));
    ifDue(sink, epoch, partitions, guard);
  }

  /**
   * Runs the sink's keep-alive for {@code partitions} if it is due. The caller makes sure no batch
   * of the pipeline writes meanwhile: a keep-alive re-writes offsets a batch may be advancing.
   */
  public static void ifDue(
      ExactlyOnceSink sink,
      long epoch,
      Collection<TopicPartition> partitions,
      PipelineGuard guard) {
    Duration interval = sink.progressKeepAlive();
    if (interval.isZero()
        || partitions.isEmpty()
        || !guard.keepAliveDue(sink.pipelineId(), interval)) {
      return;
    }
    long started = System.nanoTime();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.keepAlive(List.copyOf(partitions), epoch);
    }
    guard.keptAlive(sink.pipelineId());
    LOG.info(
        "pipeline '{}': kept the stored offsets of {} partitions alive ({} ms)",
        sink.pipelineId(),
        partitions.size(),
        (System.nanoTime() - started) / 1_000_000);
  }
}
