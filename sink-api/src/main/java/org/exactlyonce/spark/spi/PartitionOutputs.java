package org.exactlyonce.spark.spi;

import java.util.Iterator;

/**
 * The outputs of one RDD partition, produced lazily from its Kafka records. Read at most once.
 *
 * @param <R> the output type
 */
public interface PartitionOutputs<R> {

  /**
   * Maps the records at or after {@code offset} (earlier ones are already committed) and returns
   * their outputs in offset order, each with its source position: the record's topic, partition and
   * offset, and its index among the outputs of that record. The position is a deterministic key: a
   * replay produces the same positions.
   */
  Iterator<Positioned<R>> positionedFrom(long offset);

  /** The records read so far. */
  long recordsRead();

  /**
   * The records the mapper failed on, read so far, when the sink routes them to dead letters
   * ({@link ExactlyOnceSink#routesBadRecordsToDeadLetters()}); otherwise such a record fails the
   * task. Write them in the same exactly-once unit as the outputs.
   */
  java.util.List<org.exactlyonce.spark.DeadLetter> deadLetters();

  /**
   * An output and where it came from.
   *
   * @param value the output
   * @param topic the source record's topic
   * @param partition the source record's partition
   * @param offset the source record's offset
   * @param index the output's index among the outputs of its record (0 for the first)
   */
  record Positioned<R>(R value, String topic, int partition, long offset, int index) {}
}
