package org.exactlyonce.spark.internal;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stores the start of partitions the stream discovered while running (added to a topic), on the
 * driver, before the first batch that holds them writes anything.
 *
 * <p>Only the driver may decide where a partition starts. An executor that found no stored offset
 * and trusted the range in front of it would accept whichever range of that partition arrived
 * first, so a later batch committing first would make an earlier one look already committed and its
 * records would be lost. Executors therefore treat "no stored offset" as a {@code GAP}. The driver
 * runs one output operation at a time ({@code spark.streaming.concurrentJobs=1} is enforced), so
 * the first batch that holds a new partition starts it where Spark started reading it: its earliest
 * offset ({@code auto.offset.reset=earliest}).
 */
public final class NewPartitions {
  private static final Logger LOG = LoggerFactory.getLogger(NewPartitions.class);

  private NewPartitions() {}

  /**
   * The driver's bookkeeping before a batch writes: stores {@code range.from()} for every partition
   * of {@code ranges} not yet stored, and keeps the stored offsets alive when the sink's store
   * needs it ({@link ExactlyOnceSink#progressKeepAlive()}).
   */
  public static void storeStarts(
      ExactlyOnceSink sink, long epoch, List<SourceRange> ranges, PipelineGuard guard) {
    storeNew(sink, epoch, ranges, guard);
    KeepAlive.ifDue(sink, epoch, ranges, guard);
  }

  private static void storeNew(
      ExactlyOnceSink sink, long epoch, List<SourceRange> ranges, PipelineGuard guard) {
    Map<TopicPartition, Long> fresh = new LinkedHashMap<>();
    for (SourceRange r : ranges) {
      if (!guard.isStored(sink.pipelineId(), r.topicPartition())) {
        fresh.put(r.topicPartition(), r.from());
      }
    }
    if (fresh.isEmpty()) {
      return;
    }
    try (OffsetStore store = sink.openOffsetStore()) {
      // Insert-if-absent, checked against the epoch: a partition another instance stored keeps
      // its offset, and a fenced driver stores nothing.
      store.storeStartOffsets(fresh, epoch);
    }
    guard.markStored(sink.pipelineId(), fresh.keySet());
    LOG.info(
        "pipeline '{}': partitions added while running start at their earliest offsets {}",
        sink.pipelineId(),
        fresh);
  }
}
