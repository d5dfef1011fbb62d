package org.exactlyonce.spark.structured;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
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
 * SparkRows#byName()}): every column has a field of its name, of a Spark type the column takes
 * without loss (no rounding, no narrowing, no instant turned into a zone-dependent wall-clock
 * time), and no field is left unwritten. Run before the query starts (on the schema of the batch
 * function applied to the streaming source) and on every batch's results before it writes.
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
    List<String> problems = new ArrayList<>();
    Map<String, StructField> fields = new HashMap<>();
    for (StructField f : schema.fields()) {
      if (fields.put(f.name(), f) != null) {
        problems.add("two fields are named '" + f.name() + "'");
      }
    }
    for (OutputColumn c : columns) {
      StructField f = fields.remove(c.name());
      if (f == null) {
        problems.add(
            "column '" + c.name() + "' (" + c.backendType() + ") has no field of its name");
        continue;
      }
      String why = mismatch(c, f.dataType());
      if (why != null) {
        problems.add(
            "field '"
                + c.name()
                + "' is "
                + f.dataType().simpleString()
                + " but the column is "
                + c.backendType()
                + why);
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

  /**
   * Why a column of {@code c}'s type does not take values of Spark type {@code type} as they are,
   * without loss or a meaning that depends on a time zone; null if it does.
   */
  static String mismatch(OutputColumn c, DataType type) {
    Kind from = kindOf(type);
    Kind to = c.kind();
    if (to == Kind.OTHER) {
      return null; // a type the sink does not classify: the backend decides
    }
    if (from == Kind.TIMESTAMP && to == Kind.LOCAL_TIMESTAMP) {
      return " (a Spark timestamp is an instant; a column without a time zone would keep it as a"
          + " wall-clock time of the executors' time zone: use timestamp with time zone, or give a"
          + " timestamp_ntz field)";
    }
    if (from == Kind.LOCAL_TIMESTAMP && to == Kind.TIMESTAMP) {
      return " (a timestamp_ntz has no time zone, so the instant stored would depend on the"
          + " session's: use timestamp without time zone, or give a timestamp field)";
    }
    if (from == Kind.FLOAT64 && to == Kind.FLOAT32) {
      return " (double values would be rounded to single precision: cast to float, or use double"
          + " precision)";
    }
    if (to == Kind.DECIMAL && (from == Kind.DECIMAL || from == Kind.INTEGER)) {
      return decimalMismatch(c.backendType(), type);
    }
    if (from == to || (from == Kind.FLOAT32 && to == Kind.FLOAT64)) {
      return null;
    }
    return "";
  }

  private static final Pattern PRECISION_SCALE = Pattern.compile("\\((\\d+)\\s*,\\s*(\\d+)\\)");

  /** A decimal column with a declared scale rounds values of a larger scale, silently. */
  private static String decimalMismatch(String backendType, DataType type) {
    Matcher m = PRECISION_SCALE.matcher(backendType);
    if (!m.find()) {
      return null; // numeric without a declared precision keeps any value
    }
    int precision = Integer.parseInt(m.group(1));
    int scale = Integer.parseInt(m.group(2));
    int valueScale = type instanceof DecimalType d ? d.scale() : 0;
    int valueDigits =
        type instanceof DecimalType d ? d.precision() - d.scale() : integerDigits(type);
    if (valueScale > scale) {
      return " (values with " + valueScale + " decimals would be rounded to " + scale + ")";
    }
    if (valueDigits > precision - scale) {
      return " (values with "
          + valueDigits
          + " integer digits may not fit its "
          + (precision - scale)
          + ")";
    }
    return null;
  }

  private static int integerDigits(DataType t) {
    if (t.equals(DataTypes.ByteType)) {
      return 3;
    }
    if (t.equals(DataTypes.ShortType)) {
      return 5;
    }
    return t.equals(DataTypes.IntegerType) ? 10 : 19;
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
    if (t.equals(DataTypes.FloatType)) {
      return Kind.FLOAT32;
    }
    if (t.equals(DataTypes.DoubleType)) {
      return Kind.FLOAT64;
    }
    if (t.equals(DataTypes.BooleanType)) {
      return Kind.BOOLEAN;
    }
    if (t.equals(DataTypes.TimestampType)) {
      return Kind.TIMESTAMP;
    }
    if (t.typeName().equals("timestamp_ntz")) {
      return Kind.LOCAL_TIMESTAMP;
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
