package org.exactlyonce.spark;

import java.io.Serializable;
import java.util.List;

/**
 * The column values of one output, in the order of the sink's columns. Must be deterministic.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface RowValues<R> extends Serializable {
  /** The values of {@code row}, one per column, in column order. */
  List<?> values(R row);
}
