package org.exactlyonce.spark.structured;

import org.apache.spark.sql.Row;
import org.exactlyonce.spark.RowValues;

/** Values of Spark SQL rows for the library's sinks. */
public final class SparkRows {
  private SparkRows() {}

  /**
   * Each column's value from the row's field of the same name, whatever the fields' order: {@code
   * JdbcSink.<Row>perBatch(id).table("t").columns("campaign",
   * "clicks").values(SparkRows.byName())}. A query over such a sink has its output schema checked
   * against the table's columns before it starts (every column present, of a type the column
   * takes), and every batch again before it writes.
   */
  public static RowValues.ByName<Row> byName() {
    return RowValues.byName(SparkRows::field);
  }

  private static Object field(Row row, String name) {
    return row.get(row.fieldIndex(name));
  }
}
