package org.exactlyonce.spark.jdbc;

import java.io.Serializable;
import java.util.List;
import org.jdbi.v3.core.Handle;

/**
 * Writes a chunk of outputs inside the sink's transaction, for writes a table-and-columns mapping
 * cannot express (several tables, an upsert, a stored procedure). It must not commit, roll back or
 * change the transaction: the sink commits the outputs together with the offsets.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface JdbcWriter<R> extends Serializable {

  /**
   * Writes {@code rows} through {@code handle}, whose transaction is open; prefer a {@code
   * PreparedBatch} over one statement per row.
   *
   * @throws Exception to roll the transaction back and fail the task (Spark retries it)
   */
  void write(Handle handle, List<R> rows) throws Exception;
}
