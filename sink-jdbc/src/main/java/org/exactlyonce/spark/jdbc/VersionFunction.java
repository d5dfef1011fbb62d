package org.exactlyonce.spark.jdbc;

import java.io.Serializable;

/**
 * The version of an output for a versioned upsert, taken from the output itself (for example its
 * event time in milliseconds, with a tie-breaker folded in). A stored row is only replaced by an
 * output with a higher version. Must be deterministic.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface VersionFunction<R> extends Serializable {
  /** The version of {@code output}. */
  long version(R output);
}
