package org.exactlyonce.spark.jdbc.internal;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.statement.PreparedBatch;

/**
 * The staging path of the per-batch sink, for results too large to pass through the driver:
 * executors write their partitions into a staging table under an attempt id, then one driver
 * transaction moves the attempt's rows into the output table and advances every offset.
 */
public final class Staging implements Serializable {
  private static final long serialVersionUID = 1L;

  private final SqlIdentifier staging;
  private final TableMapping<?> mapping;

  public Staging(SqlIdentifier staging, TableMapping<?> mapping) {
    this.staging = staging;
    this.mapping = mapping;
  }

  public SqlIdentifier table() {
    return staging;
  }

  private String columns() {
    return mapping.allColumns().stream().map(SqlIdentifier::sql).collect(Collectors.joining(", "));
  }

  /** DDL: a staging table with the output's columns and types, plus the attempt bookkeeping. */
  public List<String> ddl() {
    return List.of(
        "CREATE TABLE IF NOT EXISTS "
            + staging.sql()
            + " AS SELECT "
            + columns()
            + " FROM "
            + mapping.table().sql()
            + " WITH NO DATA",
        "ALTER TABLE "
            + staging.sql()
            + " ADD COLUMN IF NOT EXISTS eos_pipeline varchar(200),"
            + " ADD COLUMN IF NOT EXISTS eos_attempt varchar(64),"
            + " ADD COLUMN IF NOT EXISTS eos_part integer",
        "CREATE INDEX IF NOT EXISTS "
            + SqlIdentifier.quote(staging.name() + "_attempt")
            + " ON "
            + staging.sql()
            + " (eos_attempt, eos_part)");
  }

  /**
   * Runs on the driver after {@link #ddl()}, before the stream starts: makes the staging table hold
   * every column of this mapping with the output table's type, and checks that the statement that
   * publishes staged rows can reduce them. The staging table of an output table is shared by every
   * staged pipeline writing it (the default name), and it was created with the columns of the first
   * one: a second pipeline with other columns gets them added (nullable, so the first pipeline's
   * rows are unaffected) instead of failing in its first batch.
   *
   * @throws SinkConfigurationException if a staging column has another type than the output's, or a
   *     column reduced with max() has a type without max()
   */
  public void check(Handle h, PostgresDialect dialect) {
    Map<String, String> output = typesOf(h, dialect, mapping.table());
    Map<String, String> staged = typesOf(h, dialect, staging);
    for (SqlIdentifier c : mapping.allColumns()) {
      String want = output.get(c.name());
      String have = staged.get(c.name());
      if (have == null) {
        h.execute(
            "ALTER TABLE " + staging.sql() + " ADD COLUMN IF NOT EXISTS " + c.sql() + " " + want);
      } else if (!have.equals(want)) {
        throw new SinkConfigurationException(
            "staging table '"
                + staging
                + "' has column '"
                + c.name()
                + "' of type "
                + have
                + " but output table '"
                + mapping.table()
                + "' has "
                + want
                + ": staged rows would be converted on the way, or fail. The staging table holds"
                + " rows only while a batch is published: drop it (DROP TABLE "
                + staging.sql()
                + ") while no staged pipeline of this table runs, and the sink creates it again;"
                + " or give this sink its own with stagingTable(...)");
      }
    }
    for (SqlIdentifier c : reducedWithMax()) {
      try {
        h.createQuery("SELECT max(" + c.sql() + ") FROM " + staging.sql() + " WHERE false")
            // Only whether PostgreSQL accepts max() of the type matters, not the value.
            .map((rs, ctx) -> 0)
            .list();
      } catch (RuntimeException e) {
        if (!undefinedFunction(e)) {
          throw e; // a lost connection or a timeout, not the column's type
        }
        throw new SinkConfigurationException(
            "staged sink on '"
                + mapping.table()
                + "': column '"
                + c.name()
                + "' is neither a key nor accumulating, so publishing a batch reduces it per key"
                + " with max(), and its type "
                + output.get(c.name())
                + " has no max() ("
                + JdbcOffsetStore.rootMessage(e)
                + "). Make it accumulating(...), store it as a type with max() (for example"
                + " smallint for a flag, text for JSON), or write without staged()",
            e);
      }
    }
  }

  /** PostgreSQL's "function does not exist" (SQLSTATE 42883), anywhere in the causes. */
  private static boolean undefinedFunction(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof java.sql.SQLException sql && "42883".equals(sql.getSQLState())) {
        return true;
      }
    }
    return false;
  }

  private static Map<String, String> typesOf(
      Handle h, PostgresDialect dialect, SqlIdentifier table) {
    Map<String, String> out = new HashMap<>();
    h.createQuery(dialect.columnTypesOf())
        .bind("table", table.sql())
        .map((rs, ctx) -> Map.entry(rs.getString(1), rs.getString(2)))
        .forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  /** The columns {@link #select()} reduces with max(): neither key nor accumulating. */
  private List<SqlIdentifier> reducedWithMax() {
    if (mapping.keys().isEmpty() || mapping.accumulating().isEmpty()) {
      return List.of();
    }
    return mapping.allColumns().stream()
        .filter(c -> !named(mapping.keys(), c) && !named(mapping.accumulating(), c))
        .toList();
  }

  private static boolean named(List<SqlIdentifier> some, SqlIdentifier c) {
    return some.stream().anyMatch(s -> s.name().equals(c.name()));
  }

  /**
   * Runs on an executor, in its own transaction: replaces partition {@code part} of {@code
   * attempt}. A retried or speculative copy of the task serialises on an advisory lock and
   * overwrites the same rows, so the staged attempt holds each partition once.
   */
  public <R> long stage(
      Handle h,
      String pipeline,
      String attempt,
      int part,
      TableMapping<R> m,
      Iterator<Positioned<R>> rows,
      int batchSize) {
    h.createQuery("SELECT pg_advisory_xact_lock(hashtext(:attempt), :part)")
        .bind("attempt", attempt)
        .bind("part", part)
        .mapTo(String.class)
        .one();
    h.createUpdate(
            "DELETE FROM " + staging.sql() + " WHERE eos_attempt = :attempt AND eos_part = :part")
        .bind("attempt", attempt)
        .bind("part", part)
        .execute();
    int n = mapping.allColumns().size();
    String insert =
        "INSERT INTO "
            + staging.sql()
            + " ("
            + columns()
            + ", eos_pipeline, eos_attempt, eos_part) VALUES ("
            + "?, ".repeat(n + 2)
            + "?)";
    long written = 0;
    PreparedBatch batch = h.prepareBatch(insert);
    int inBatch = 0;
    while (rows.hasNext()) {
      Object[] values = m.row(rows.next());
      Object[] row = new Object[n + 3];
      System.arraycopy(values, 0, row, 0, n);
      row[n] = pipeline;
      row[n + 1] = attempt;
      row[n + 2] = part;
      batch.add(row);
      written++;
      if (++inBatch == batchSize) {
        batch.execute();
        batch = h.prepareBatch(insert);
        inBatch = 0;
      }
    }
    if (inBatch > 0) {
      batch.execute();
    }
    return written;
  }

  /**
   * Runs on the driver inside the batch transaction: checks the attempt is complete, moves it into
   * the output table, and drops every staged row of the pipeline.
   *
   * @return the rows the output table received
   */
  public long publish(Handle h, String pipeline, String attempt, long expectedRows) {
    long staged =
        h.createQuery("SELECT count(*) FROM " + staging.sql() + " WHERE eos_attempt = :attempt")
            .bind("attempt", attempt)
            .mapTo(Long.class)
            .one();
    if (staged != expectedRows) {
      // For example a database crash lost staged rows: publishing would lose results.
      throw new ExactlyOnceException(
          "staging table "
              + staging
              + " holds "
              + staged
              + " rows of attempt "
              + attempt
              + " but the executors staged "
              + expectedRows
              + "; nothing is published and the batch fails");
    }
    int published =
        h.createUpdate(
                "INSERT INTO "
                    + mapping.table().sql()
                    + " AS cur ("
                    + columns()
                    + ") "
                    + select()
                    + mapping.conflictClause())
            .bind("attempt", attempt)
            .execute();
    h.createUpdate("DELETE FROM " + staging.sql() + " WHERE eos_pipeline = :pipeline")
        .bind("pipeline", pipeline)
        .execute();
    return published;
  }

  private String select() {
    String where = " FROM " + staging.sql() + " WHERE eos_attempt = :attempt";
    List<SqlIdentifier> keys = mapping.keys();
    if (keys.isEmpty()) {
      return "SELECT " + columns() + where;
    }
    String keyList = keys.stream().map(SqlIdentifier::sql).collect(Collectors.joining(", "));
    if (mapping.accumulating().isEmpty()) {
      // One row per key: an upsert cannot touch a row twice in one statement.
      return "SELECT DISTINCT ON (" + keyList + ") " + columns() + where + " ORDER BY " + keyList;
    }
    List<String> exprs = new ArrayList<>();
    for (SqlIdentifier c : mapping.allColumns()) {
      if (named(keys, c)) {
        exprs.add(c.sql());
      } else if (named(mapping.accumulating(), c)) {
        exprs.add("sum(" + c.sql() + ")");
      } else {
        exprs.add("max(" + c.sql() + ")");
      }
    }
    // In key order, as every upsert path of the sinks, so that two transactions sharing keys lock
    // them in one order and wait for each other instead of deadlocking.
    return "SELECT "
        + String.join(", ", exprs)
        + where
        + " GROUP BY "
        + keyList
        + " ORDER BY "
        + keyList;
  }
}
