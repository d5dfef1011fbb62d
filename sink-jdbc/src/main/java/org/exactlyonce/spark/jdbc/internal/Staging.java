package org.exactlyonce.spark.jdbc.internal;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.stream.Collectors;
import org.exactlyonce.spark.ExactlyOnceException;
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
      if (keys.stream().anyMatch(k -> k.name().equals(c.name()))) {
        exprs.add(c.sql());
      } else if (mapping.accumulating().stream().anyMatch(a -> a.name().equals(c.name()))) {
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
