package org.exactlyonce.spark.kafka;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.exactlyonce.spark.kafka.internal.Progress;

/**
 * How a Kafka sink's progress is laid out in consumer groups, for tools that read it (the offsets
 * tool's {@code show} and {@code lag}): the progress group holds one committed offset per source
 * partition, each stamped with the writer epoch that wrote it; the epoch group beside it holds the
 * pipeline's latest writer epoch. Read-only: offsets are changed through {@link
 * org.exactlyonce.spark.ExactlyOnce#rewind}, never by writing these groups directly (the start
 * refuses offsets without the library's stamp).
 */
public final class ProgressGroups {
  private ProgressGroups() {}

  /** The progress group of {@code pipelineId} when the sink sets no {@code progressGroup(...)}. */
  public static String defaultProgressGroup(String pipelineId) {
    return "eos-progress-" + pipelineId;
  }

  /** The group that holds the latest writer epoch of the pipeline whose progress group is given. */
  public static String epochGroup(String progressGroup) {
    return progressGroup + ".epoch";
  }

  /**
   * The writer epoch stamped on a committed offset of the progress or the epoch group; 0 if it
   * carries none (or is null).
   */
  public static long writerEpoch(OffsetAndMetadata offset) {
    return Progress.epochOf(offset);
  }

  /**
   * Whether the library wrote {@code offset}; an offset set by another tool (for example {@code
   * kafka-consumer-groups --reset-offsets}) is refused at the next start until rewound through the
   * library.
   */
  public static boolean writtenByTheLibrary(OffsetAndMetadata offset) {
    return Progress.writtenByTheLibrary(offset);
  }
}
