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
   * their outputs in offset order.
   */
  Iterator<R> from(long offset);

  /** The records read so far by the iterator {@link #from(long)} returned. */
  long recordsRead();
}
