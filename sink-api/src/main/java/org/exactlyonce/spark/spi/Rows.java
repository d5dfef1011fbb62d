package org.exactlyonce.spark.spi;

import java.util.List;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.RowValues;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;

/** The column values of an output, checked against the sink's columns. */
public final class Rows {
  private Rows() {}

  /**
   * {@code values} of {@code output}, one per column.
   *
   * @throws ExactlyOnceException naming the output's position and the columns if the count is off
   */
  public static <R> List<?> valuesOf(RowValues<R> values, Positioned<R> output, List<?> columns) {
    List<?> v = values.values(output.value());
    if (v == null || v.size() != columns.size()) {
      throw new ExactlyOnceException(
          "values(...) returned "
              + (v == null ? "null" : v.size() + " values")
              + " for an output of "
              + output.topic()
              + "-"
              + output.partition()
              + "@"
              + output.offset()
              + ", but the sink has columns "
              + columns
              + ": return one value per column, in column order");
    }
    return v;
  }
}
