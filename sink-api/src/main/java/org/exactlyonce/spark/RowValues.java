package org.exactlyonce.spark;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The column values of one output, in the order of the sink's columns. Must be deterministic.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface RowValues<R> extends Serializable {
  /** The values of {@code row}, one per column, in column order. */
  List<?> values(R row);

  /**
   * Values read from each output's field of the same name as the sink's column, so that no list in
   * column order is needed: the sink binds it to its columns when it is built. For Spark SQL rows,
   * {@code org.exactlyonce.spark.structured.SparkRows.byName()} (module sink-structured); a
   * PostgreSQL sink given it to a per-batch Structured Streaming query has the query's rows checked
   * against its columns' types. Cassandra sinks refuse values by name so far.
   *
   * @param field reads the field {@code name} of an output
   */
  static <R> ByName<R> byName(Field<R> field) {
    return new ByName<>(Objects.requireNonNull(field, "field"), null);
  }

  /**
   * Reads one named field of an output.
   *
   * @param <R> the output type
   */
  @FunctionalInterface
  interface Field<R> extends Serializable {
    /** The value of field {@code name} of {@code output}. */
    Object get(R output, String name);
  }

  /**
   * Values by column name ({@link #byName}); a sink's builder binds it to the sink's columns.
   *
   * @param <R> the output type
   */
  final class ByName<R> implements RowValues<R> {
    private static final long serialVersionUID = 1L;
    private final Field<R> field;
    private final List<String> columns;

    private ByName(Field<R> field, List<String> columns) {
      this.field = field;
      this.columns = columns;
    }

    /** These values for a sink whose columns are {@code columns}, in that order. */
    public ByName<R> bind(List<String> columns) {
      return new ByName<>(field, List.copyOf(columns));
    }

    /** The columns this is bound to, in order; empty before {@link #bind}. */
    public List<String> columns() {
      return columns == null ? List.of() : columns;
    }

    @Override
    public List<?> values(R row) {
      if (columns == null) {
        throw new IllegalStateException(
            "RowValues.byName(...) was not bound to a sink's columns: pass it to a sink builder's"
                + " values(...)");
      }
      List<Object> out = new ArrayList<>(columns.size());
      for (String c : columns) {
        out.add(field.get(row, c));
      }
      return out;
    }
  }
}
