package org.exactlyonce.spark.jdbc.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.spi.OutputColumn;
import org.jdbi.v3.core.Handle;

/**
 * The pre-flight check of a PostgreSQL sink's outputs ({@link
 * org.exactlyonce.spark.spi.ExactlyOnceSink#checkOutputs()}), on a driver connection of its own:
 * the output table exists with the sink's columns and a unique index its upserts can use; the
 * staging table of a staged per-batch sink is created and holds the output's columns; the
 * dead-letter table is created, or has the shape the sink writes. The offsets and writers tables
 * are the offset store's ({@link JdbcOffsetStore#validate()}).
 */
public final class JdbcOutputCheck {
  private JdbcOutputCheck() {}

  /**
   * Checks {@code spec}'s outputs, and the staging table of {@code staging} (null: none), creating
   * staging and dead-letter tables where they are missing. Every step may run again after a lost
   * connection.
   *
   * @throws SinkConfigurationException naming the table, what is wrong and the fix
   */
  public static void run(JdbcSpec<?> spec, Staging staging) {
    try (DriverConnection connection = new DriverConnection(spec.settings())) {
      connection.call(
          handle -> {
            check(handle, spec, staging);
            return null;
          });
    }
  }

  /**
   * The columns {@code spec} fills by name ({@link org.exactlyonce.spark.RowValues#byName}) with
   * their PostgreSQL types as DDL spells them ({@code format_type}: {@code numeric(10,2)}), in the
   * sink's column order; empty for positional values or a custom writer.
   *
   * @throws SinkConfigurationException if the output table does not exist
   */
  public static List<OutputColumn> columnsByName(JdbcSpec<?> spec) {
    TableMapping<?> mapping = spec.mapping();
    if (mapping == null || mapping.columnsByName().isEmpty()) {
      return List.of();
    }
    try (DriverConnection connection = new DriverConnection(spec.settings())) {
      return connection.call(
          handle -> {
            Map<String, String> actual = new java.util.HashMap<>();
            handle
                .createQuery(spec.dialect().columnTypesOf())
                .bind("table", mapping.table().sql())
                .map((rs, ctx) -> Map.entry(rs.getString(1), rs.getString(2)))
                .forEach(e -> actual.put(e.getKey(), e.getValue()));
            if (actual.isEmpty()) {
              throw new SinkConfigurationException(
                  "output table '"
                      + mapping.table()
                      + "' does not exist (or is not visible to user "
                      + spec.settings().user()
                      + "): create it before starting the query");
            }
            List<OutputColumn> out = new ArrayList<>();
            mapping
                .columnsByName()
                .forEach(
                    (field, column) -> {
                      String type = actual.getOrDefault(column, "(no such column)");
                      out.add(new OutputColumn(field, type, kindOf(type)));
                    });
            return out;
          });
    }
  }

  /** What values a PostgreSQL type (as {@code format_type} spells it) takes. */
  static OutputColumn.Kind kindOf(String type) {
    String t = type.replaceAll("\\(.*?\\)", ""); // numeric(10,2), timestamp(3) with time zone
    return switch (t) {
      case "text", "character varying", "character" -> OutputColumn.Kind.STRING;
      case "smallint", "integer", "bigint" -> OutputColumn.Kind.INTEGER;
      case "numeric" -> OutputColumn.Kind.DECIMAL;
      case "real" -> OutputColumn.Kind.FLOAT32;
      case "double precision" -> OutputColumn.Kind.FLOAT64;
      case "boolean" -> OutputColumn.Kind.BOOLEAN;
      case "timestamp with time zone" -> OutputColumn.Kind.TIMESTAMP;
      case "timestamp without time zone" -> OutputColumn.Kind.LOCAL_TIMESTAMP;
      case "date" -> OutputColumn.Kind.DATE;
      case "bytea" -> OutputColumn.Kind.BYTES;
      default -> OutputColumn.Kind.OTHER;
    };
  }

  private static void check(Handle handle, JdbcSpec<?> spec, Staging staging) {
    PostgresDialect dialect = spec.dialect();
    TableMapping<?> mapping = spec.mapping();
    if (mapping != null) {
      SqlIdentifier table = mapping.table();
      Map<String, String> actual = SchemaChecks.columnsOf(handle, dialect, table);
      if (actual.isEmpty()) {
        throw new SinkConfigurationException(
            "output table '"
                + table
                + "' does not exist (or is not visible to user "
                + spec.settings().user()
                + "): create it before starting the job");
      }
      mapping.checkColumns(actual);
      for (SqlIdentifier c : mapping.allColumns()) {
        if (!actual.containsKey(c.name())) {
          throw new SinkConfigurationException(
              "output table '"
                  + table
                  + "' has no column '"
                  + c.name()
                  + "' (it has "
                  + actual.keySet()
                  + "): fix the sink's columns(...) or the table");
        }
      }
      SchemaChecks.checkUniqueKey(
          handle,
          dialect,
          table,
          mapping.conflictKey().stream().map(SqlIdentifier::name).toList(),
          "output table");
    }
    if (staging != null) {
      for (String ddl : staging.ddl()) {
        SchemaChecks.createIfMissing(handle, ddl);
      }
    }
    SqlIdentifier deadLetters = spec.deadLetters();
    if (deadLetters != null) {
      SchemaChecks.createIfMissing(handle, dialect.createDeadLetterTable(deadLetters));
      // An existing table of that name is not replaced by CREATE IF NOT EXISTS: check it here,
      // or the first bad record would fail mid-stream.
      SchemaChecks.checkShape(
          handle, dialect, deadLetters, PostgresDialect.DEAD_LETTER_COLUMNS, "dead-letter table");
      SchemaChecks.checkUniqueKey(
          handle, dialect, deadLetters, PostgresDialect.DEAD_LETTER_KEY, "dead-letter table");
    }
    if (staging != null) {
      // Last, after the DDL above created the staging table.
      staging.check(handle, dialect);
    }
  }
}
