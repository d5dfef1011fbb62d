package org.exactlyonce.spark.jdbc.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.exactlyonce.spark.SinkConfigurationException;
import org.jdbi.v3.core.Handle;

/**
 * Creating and checking tables on the driver, shared by the offset store (its offsets and writers
 * tables) and the output check (output, staging and dead-letter tables).
 */
final class SchemaChecks {
  private SchemaChecks() {}

  /** A unique index of a table, as {@link PostgresDialect#uniqueIndexes()} reads it. */
  private record UniqueIndex(String name, List<String> columns, List<String> unusableBecause) {}

  /**
   * ON CONFLICT needs a unique index on exactly the key columns that it can infer: not partial, no
   * expressions, checked immediately. Otherwise the first write fails, after the stream started.
   */
  static void checkUniqueKey(
      Handle handle, PostgresDialect dialect, SqlIdentifier table, List<String> key, String what) {
    if (key.isEmpty()) {
      return;
    }
    List<String> wanted = key.stream().sorted().toList();
    List<UniqueIndex> unique =
        handle
            .createQuery(dialect.uniqueIndexes())
            .bind("table", table.sql())
            .map(
                (rs, ctx) -> {
                  List<String> why = new ArrayList<>();
                  if (rs.getBoolean(3)) {
                    why.add("has an expression among its columns");
                  }
                  if (rs.getBoolean(4)) {
                    why.add("is partial (it has a WHERE clause)");
                  }
                  if (rs.getBoolean(5)) {
                    why.add("is a deferrable constraint (checked at commit)");
                  }
                  if (rs.getBoolean(6)) {
                    why.add("is invalid (a failed CREATE INDEX CONCURRENTLY)");
                  }
                  return new UniqueIndex(
                      rs.getString(1), List.of((String[]) rs.getArray(2).getArray()), why);
                })
            .list();
    List<UniqueIndex> onKey = unique.stream().filter(i -> i.columns().equals(wanted)).toList();
    if (onKey.stream().anyMatch(i -> i.unusableBecause().isEmpty())) {
      return;
    }
    String create =
        "CREATE UNIQUE INDEX ON "
            + table.sql()
            + " ("
            + wanted.stream().map(SqlIdentifier::quote).collect(Collectors.joining(", "))
            + ")";
    if (!onKey.isEmpty()) {
      UniqueIndex i = onKey.get(0);
      throw new SinkConfigurationException(
          what
              + " '"
              + table
              + "' has unique index "
              + i.name()
              + " on "
              + wanted
              + ", but it "
              + String.join(" and ", i.unusableBecause())
              + ": INSERT ... ON CONFLICT ("
              + String.join(", ", wanted)
              + ") cannot use it, so the first write would fail. Add a plain one: "
              + create
              + (i.unusableBecause().stream().anyMatch(w -> w.contains("deferrable"))
                  ? " (or add the constraint again as NOT DEFERRABLE)"
                  : ""));
    }
    throw new SinkConfigurationException(
        what
            + " '"
            + table
            + "' has no unique index on exactly "
            + wanted
            + " (it has "
            + unique.stream().map(i -> i.name() + " " + i.columns()).toList()
            + "), so "
            + ("output table".equals(what)
                ? "a replay could not find and overwrite the rows it wrote before"
                : "the sink's INSERT ... ON CONFLICT would fail")
            + ". Add one: "
            + create);
  }

  static void createIfMissing(Handle handle, String ddl) {
    try {
      handle.execute(ddl);
    } catch (RuntimeException e) {
      if (DriverConnection.isConnectionLost(e)) {
        throw e; // an outage, not the DDL: DriverConnection.call runs the check again
      }
      // Two drivers creating the same table at once: one loses the race on the catalog; the
      // table exists either way, and checkShape below verifies it.
      if (!JdbcOffsetStore.rootMessage(e).contains("already exists")
          && !JdbcOffsetStore.rootMessage(e).contains("duplicate key")) {
        throw new SinkConfigurationException(
            "cannot create the table with: " + ddl + " (" + JdbcOffsetStore.rootMessage(e) + ")",
            e);
      }
    }
  }

  static void checkShape(
      Handle handle,
      PostgresDialect dialect,
      SqlIdentifier t,
      List<List<String>> expected,
      String what) {
    Map<String, String> actual = columnsOf(handle, dialect, t);
    for (List<String> col : expected) {
      String type = actual.get(col.get(0));
      if (type == null || !col.subList(1, col.size()).contains(type)) {
        throw new SinkConfigurationException(
            what
                + " '"
                + t
                + "' has the wrong shape: column '"
                + col.get(0)
                + "' should be "
                + col.subList(1, col.size())
                + " but is "
                + (type == null ? "missing" : type)
                + ". Point the sink at another table name, or drop this one and let the sink create"
                + " it (see the DDL in the README)");
      }
    }
  }

  static Map<String, String> columnsOf(Handle handle, PostgresDialect dialect, SqlIdentifier t) {
    Map<String, String> out = new HashMap<>();
    handle
        .createQuery(dialect.columnsOf())
        .bind("table", t.sql())
        .map((rs, ctx) -> Map.entry(rs.getString(1), rs.getString(2)))
        .forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }
}
