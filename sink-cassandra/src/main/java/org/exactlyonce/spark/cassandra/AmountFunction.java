package org.exactlyonce.spark.cassandra;

import java.io.Serializable;

/**
 * The amount an output adds to its key's running total. Must be deterministic.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface AmountFunction<R> extends Serializable {
  /** The amount {@code output} adds. */
  long amount(R output);
}
