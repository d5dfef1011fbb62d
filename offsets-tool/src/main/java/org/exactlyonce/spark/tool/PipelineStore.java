package org.exactlyonce.spark.tool;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.exactlyonce.spark.spi.ExactlyOnceSink;

/** One backend's offsets, as the tool reads them; changes go through the library's rewind. */
interface PipelineStore extends AutoCloseable {

  /** Where the offsets are, for messages (no secrets). */
  String describe();

  /** The pipelines the store holds ({@code pipeline} only, if not null), ordered by id. */
  List<PipelineState> read(String pipeline);

  /**
   * A sink of {@code pipeline} that writes nothing, for {@link
   * org.exactlyonce.spark.ExactlyOnce#rewind}: only its offset store is used.
   */
  ExactlyOnceSink rewindSink(String pipeline);

  /**
   * Why a driver may still hold {@code pipeline} (it took its writer epoch or committed within
   * {@code idleFor}), or empty if the store shows it idle for longer.
   */
  Optional<String> heldBecause(String pipeline, Duration idleFor);

  /**
   * What the store itself shows that would stop or surprise the next start of {@code state}'s
   * pipeline, beyond its offsets against the log (which {@code doctor} checks for every store).
   *
   * @param end the end offset of each existing stored partition
   * @param lastRecordMillis the timestamp of each existing stored partition's latest record, -1 if
   *     unknown
   * @param idleFor how long without a commit counts as idle
   */
  List<Finding> diagnose(
      PipelineState state,
      java.util.Map<org.apache.kafka.common.TopicPartition, Long> end,
      java.util.Map<org.apache.kafka.common.TopicPartition, Long> lastRecordMillis,
      Duration idleFor);

  @Override
  void close();
}
