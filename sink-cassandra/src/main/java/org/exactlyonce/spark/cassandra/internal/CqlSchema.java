package org.exactlyonce.spark.cassandra.internal;

import com.datastax.oss.driver.api.core.AllNodesFailedException;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.DriverTimeoutException;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.cassandra.CassandraSettings;

/**
 * Creating and reading tables on the driver, shared by the offset store (its offsets table) and the
 * output check (output and dead-letter tables).
 */
final class CqlSchema {
  private CqlSchema() {}

  /** A column as system_schema describes it. */
  record Column(String type, String kind) {}

  /**
   * Runs a {@code CREATE ... IF NOT EXISTS} (or an {@code ALTER}), once more on a new session if
   * this one is stuck.
   *
   * @return the session to use from now on
   */
  static CqlSession ddl(CassandraSettings settings, CqlSession session, String cql) {
    SimpleStatement statement = SimpleStatement.newInstance(cql).setTimeout(Duration.ofSeconds(30));
    try {
      session.execute(statement);
      return session;
    } catch (DriverTimeoutException | AllNodesFailedException e) {
      // IF NOT EXISTS makes the retry safe whether or not the first attempt was applied.
      Sessions.replace(settings);
      CqlSession fresh = Sessions.get(settings);
      fresh.execute(statement);
      return fresh;
    }
  }

  static void requireKeyspace(CqlSession session, String name) {
    Row row =
        session
            .execute(
                SimpleStatement.newInstance(
                    "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
                    name))
            .one();
    if (row == null) {
      throw new SinkConfigurationException(
          "keyspace '" + name + "' does not exist: create it before starting the job");
    }
  }

  // Read from system_schema, not from the driver's metadata: that can be stale, and refreshing
  // it was seen to block forever after a node restart.
  static Map<String, Column> columnsOf(CqlSession session, CqlName table) {
    Map<String, Column> out = new HashMap<>();
    for (Row r :
        session.execute(
            SimpleStatement.newInstance(
                "SELECT column_name, type, kind FROM system_schema.columns"
                    + " WHERE keyspace_name = ? AND table_name = ?",
                table.keyspace(),
                table.name()))) {
      out.put(r.getString(0), new Column(r.getString(1), r.getString(2)));
    }
    return out;
  }

  static void expect(
      CqlName table, Map<String, Column> t, String column, String type, String what) {
    Column c = t.get(column);
    if (c == null || !c.type().equals(type)) {
      throw new SinkConfigurationException(
          what
              + " '"
              + table
              + "': column '"
              + column
              + "' should be "
              + type
              + " but is "
              + (c == null ? "missing" : c.type()));
    }
  }
}
