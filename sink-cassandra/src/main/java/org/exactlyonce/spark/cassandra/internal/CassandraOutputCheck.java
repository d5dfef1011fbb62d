package org.exactlyonce.spark.cassandra.internal;

import com.datastax.oss.driver.api.core.CqlSession;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.cassandra.internal.CqlSchema.Column;

/**
 * The pre-flight check of a Cassandra sink's outputs ({@link
 * org.exactlyonce.spark.spi.ExactlyOnceSink#checkOutputs()}): the output table exists, has the
 * sink's columns with the types it writes, no counter, and a primary key that a replay overwrites
 * (or, for running totals, that the total's conditional update can name); the dead-letter table is
 * created where missing. The offsets table is the offset store's ({@link
 * CassandraOffsetStore#validate()}).
 */
public final class CassandraOutputCheck {
  private final CassandraSpec<?> spec;
  private CqlSession session;

  private CassandraOutputCheck(CassandraSpec<?> spec) {
    this.spec = spec;
    this.session = Sessions.get(spec.settings());
  }

  /**
   * Checks {@code spec}'s outputs on this JVM's session.
   *
   * @throws SinkConfigurationException naming the table, what is wrong and the fix
   */
  public static void run(CassandraSpec<?> spec) {
    CassandraOutputCheck check = new CassandraOutputCheck(spec);
    check.checkOutputTable();
    check.createDeadLetterTable();
  }

  private void createDeadLetterTable() {
    if (spec.deadLetters() == null) {
      return;
    }
    CqlSchema.requireKeyspace(session, spec.deadLetters().keyspace());
    session =
        CqlSchema.ddl(
            spec.settings(),
            session,
            "CREATE TABLE IF NOT EXISTS "
                + spec.deadLetters().cql()
                + " (pipeline_id text, topic text, kafka_partition int, src_offset bigint,"
                + " record_key blob, record_value blob, error text,"
                + " PRIMARY KEY ((pipeline_id, topic, kafka_partition), src_offset))");
  }

  private void checkOutputTable() {
    CqlName name = spec.table();
    CqlSchema.requireKeyspace(session, name.keyspace());
    Map<String, Column> t = CqlSchema.columnsOf(session, name);
    if (t.isEmpty()) {
      throw new SinkConfigurationException(
          "output table '" + name + "' does not exist: create it before starting the job");
    }
    t.forEach(
        (column, c) -> {
          if (c.type().equals("counter")) {
            throw new SinkConfigurationException(
                "output table '"
                    + name
                    + "' has counter column '"
                    + column
                    + "': a counter increment is neither idempotent nor conditional, so a replay"
                    + " would count twice and no sink can make it exactly-once. Use a bigint column"
                    + " with runningTotal(...), which applies each source position once");
          }
        });
    List<String> all = new ArrayList<>(spec.insertColumns());
    if (spec.mode() == CassandraSpec.Mode.RUNNING_TOTAL) {
      all.add(spec.totalColumn());
    }
    for (String c : all) {
      if (!t.containsKey(c)) {
        throw new SinkConfigurationException(
            "output table '"
                + name
                + "' has no column '"
                + c
                + "' (it has "
                + new TreeSet<>(t.keySet())
                + "): fix the sink's columns or the table");
      }
    }
    Set<String> primaryKey = new TreeSet<>();
    t.forEach(
        (column, c) -> {
          if (c.kind().equals("partition_key") || c.kind().equals("clustering")) {
            primaryKey.add(column);
          }
        });
    switch (spec.mode()) {
      case SOURCE_POSITION -> {
        if (!primaryKey.equals(new TreeSet<>(spec.positionColumns()))) {
          throw new SinkConfigurationException(
              "output table '"
                  + name
                  + "' has primary key "
                  + primaryKey
                  + ", which cannot hold the source-position key "
                  + spec.positionColumns()
                  + ": a replay would not overwrite its own rows. Make the primary key exactly"
                  + " those columns");
        }
        List<String> types = List.of("text", "int", "bigint", "int");
        for (int i = 0; i < 4; i++) {
          CqlSchema.expect(name, t, spec.positionColumns().get(i), types.get(i), "output table");
        }
      }
      default -> {
        if (!spec.columns().containsAll(primaryKey)) {
          throw new SinkConfigurationException(
              "output table '"
                  + name
                  + "' has primary key "
                  + primaryKey
                  + ", but the sink's columns "
                  + spec.columns()
                  + " do not hold all of it: every"
                  + " output must name its whole key");
        }
        if (spec.mode() == CassandraSpec.Mode.RUNNING_TOTAL) {
          // The columns are the WHERE clause of the total's conditional update: Cassandra takes
          // primary-key columns only there, and refuses the update in the first batch otherwise.
          List<String> notKey =
              spec.columns().stream().filter(c -> !primaryKey.contains(c)).toList();
          if (!notKey.isEmpty()) {
            throw new SinkConfigurationException(
                "output table '"
                    + name
                    + "': the running total's columns "
                    + notKey
                    + " are not in its primary key "
                    + primaryKey
                    + ", but a running total updates the one row its columns name, so they must be"
                    + " exactly the primary key. Use columns("
                    + primaryKey.stream().map(c -> '"' + c + '"').collect(Collectors.joining(", "))
                    + ") and a values(...) of those, or make the table's primary key the sink's"
                    + " columns");
          }
          CqlSchema.expect(name, t, spec.totalColumn(), "bigint", "output table");
          CqlSchema.expect(
              name,
              t,
              CassandraSpec.APPLIED_COLUMN,
              "map<text, bigint>",
              "output table (running totals remember the last offset applied per source"
                  + " partition there: ALTER TABLE "
                  + name
                  + " ADD "
                  + CassandraSpec.APPLIED_COLUMN
                  + " map<text, bigint>)");
        }
      }
    }
  }
}
