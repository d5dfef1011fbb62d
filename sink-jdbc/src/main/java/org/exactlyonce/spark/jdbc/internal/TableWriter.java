package org.exactlyonce.spark.jdbc.internal;

import java.util.List;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.jdbc.JdbcWriter;
import org.exactlyonce.spark.jdbc.RowValues;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.statement.PreparedBatch;

/** Writes outputs as batched positional INSERTs into a validated table and columns. */
public final class TableWriter<R> implements JdbcWriter<R> {
  private static final long serialVersionUID = 1L;

  private final String insert;
  private final int columns;
  private final RowValues<R> values;

  public TableWriter(SqlIdentifier table, List<SqlIdentifier> columns, RowValues<R> values) {
    this.insert = PostgresDialect.insert(table, columns);
    this.columns = columns.size();
    this.values = values;
  }

  @Override
  public void write(Handle handle, List<R> rows) {
    PreparedBatch batch = handle.prepareBatch(insert);
    for (R row : rows) {
      List<?> v = values.values(row);
      if (v == null || v.size() != columns) {
        throw new ExactlyOnceException(
            "values(...) returned "
                + (v == null ? "null" : v.size() + " values")
                + " for an output, but the sink has "
                + columns
                + " columns: return one value per column, in column order");
      }
      batch.add(v.toArray());
    }
    batch.execute();
  }
}
