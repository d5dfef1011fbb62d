package org.exactlyonce.spark.tool;

import java.time.Instant;
import java.util.List;
import org.apache.kafka.common.TopicPartition;

/**
 * What a store records of one pipeline.
 *
 * @param pipeline the pipeline id
 * @param writerEpoch the latest writer epoch taken, null if none
 * @param epochTakenAt when it was taken, null where the store does not record it
 * @param takenBy which process took it, null where the store does not record it
 * @param partitions the stored offsets, ordered by topic and partition
 */
record PipelineState(
    String pipeline,
    Long writerEpoch,
    Instant epochTakenAt,
    String takenBy,
    List<PipelineState.Stored> partitions) {

  /**
   * One stored offset.
   *
   * @param offset the next offset to process
   * @param epoch the writer epoch that wrote it, null where the store does not record it
   * @param committedAt when it was last written, null where the store does not record it
   * @param note what the store says about it beyond the offset, or null
   */
  record Stored(TopicPartition tp, long offset, Long epoch, Instant committedAt, String note) {}
}
