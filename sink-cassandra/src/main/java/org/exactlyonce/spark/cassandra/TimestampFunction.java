package org.exactlyonce.spark.cassandra;

import java.io.Serializable;

/**
 * The write timestamp of an output in microseconds (Cassandra's {@code USING TIMESTAMP}), taken
 * from the output itself, for example its event time. The newer timestamp wins, so a replay of
 * older data never overwrites a newer value. Must be deterministic.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface TimestampFunction<R> extends Serializable {
  /** The write timestamp of {@code output}, in microseconds. */
  long micros(R output);
}
