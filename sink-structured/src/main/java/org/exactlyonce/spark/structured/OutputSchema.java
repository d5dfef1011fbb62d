package org.exactlyonce.spark.structured;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.spi.OutputColumn;
import org.exactlyonce.spark.spi.OutputColumn.Kind;

/**
 * Checks a query's output schema against the columns a sink fills by name ({@link
 * SparkRows#byName()}): every column has a field of its name, of a Spark type the column takes, and
 * no field is left unwritten. Run before the query starts (on the schema of the batch function
 * applied to the streaming source) and on every batch's results before it writes.
 */
final class OutputSchema {
  private OutputSchema() {}

  /**
   * @throws SinkConfigurationException naming every wrong column, its Spark type, the table's type
   *     and the fix
   */
  static void check(PipelineId pipeline, List<OutputColumn> columns, StructType schema) {
    if (columns.isEmpty()) {
      return;
    }
    Map<String, StructField> fields = new HashMap<>();
    for (StructField f : schema.fields()) {
      fields.put(f.name(), f);
    }
    List<String> problems = new ArrayList<>();
    for (OutputColumn c : columns) {
      StructField f = fields.remove(c.name());
      if (f == null) {
        problems.add(
            "column '" + c.name() + "' (" + c.backendType() + ") has no field of its name");
      } else if (!takes(c.kind(), f.dataType())) {
        problems.add(
            "field '"
                + c.name()
                + "' is "
                + f.dataType().simpleString()
                + " but the column is "
                + c.backendType());
      }
    }
    if (!fields.isEmpty()) {
      problems.add("fields " + fields.keySet() + " go to no column of the sink");
    }
    if (!problems.isEmpty()) {
      throw new SinkConfigurationException(
          "pipeline '"
              + pipeline
              + "': the batch function's rows "
              + schema.simpleString()
              + " do not fit the sink's columns by name: "
              + String.join("; ", problems)
              + ". Select and cast the fields to the columns' names and types (for example"
              + " df.select(col(\"n\").cast(\"bigint\").as(\"clicks\"))), or change the sink's"
              + " columns(...)");
    }
  }

  /** Whether a column of {@code kind} takes values of Spark type {@code type}. */
  static boolean takes(Kind kind, DataType type) {
    Kind from = kindOf(type);
    if (kind == Kind.OTHER || from == kind) {
      return true;
    }
    // Widening the backend does without loss.
    return from == Kind.INTEGER && (kind == Kind.DECIMAL || kind == Kind.FLOAT);
  }

  private static Kind kindOf(DataType t) {
    if (t.equals(DataTypes.StringType)) {
      return Kind.STRING;
    }
    if (t.equals(DataTypes.ByteType)
        || t.equals(DataTypes.ShortType)
        || t.equals(DataTypes.IntegerType)
        || t.equals(DataTypes.LongType)) {
      return Kind.INTEGER;
    }
    if (t instanceof DecimalType) {
      return Kind.DECIMAL;
    }
    if (t.equals(DataTypes.FloatType) || t.equals(DataTypes.DoubleType)) {
      return Kind.FLOAT;
    }
    if (t.equals(DataTypes.BooleanType)) {
      return Kind.BOOLEAN;
    }
    if (t.equals(DataTypes.TimestampType) || t.typeName().equals("timestamp_ntz")) {
      return Kind.TIMESTAMP;
    }
    if (t.equals(DataTypes.DateType)) {
      return Kind.DATE;
    }
    if (t.equals(DataTypes.BinaryType)) {
      return Kind.BYTES;
    }
    return Kind.OTHER;
  }
}
