package org.exactlyonce.spark.tool;

import org.apache.kafka.common.TopicPartition;

/**
 * One thing {@code doctor} found that would stop or surprise the next start of a pipeline.
 *
 * @param severity how it affects the next start
 * @param partition the source partition it concerns, null if it concerns the whole pipeline
 * @param topic the topic it concerns (the partition's, or a whole topic's), null if none
 * @param what what was found, and what it does to the next start
 * @param fix the command (or, where no command can, the action) that resolves it
 */
record Finding(
    Finding.Severity severity, String topic, TopicPartition partition, String what, String fix) {

  /** How a finding affects the next start. */
  enum Severity {
    /** The next start refuses to run. */
    ERROR,
    /** The next start runs, but not as the operator may expect (replays, stalls, lost offsets). */
    WARN,
    /** Worth knowing; nothing goes wrong because of it. */
    INFO
  }

  static Finding of(Severity severity, TopicPartition tp, String what, String fix) {
    return new Finding(severity, tp == null ? null : tp.topic(), tp, what, fix);
  }
}
