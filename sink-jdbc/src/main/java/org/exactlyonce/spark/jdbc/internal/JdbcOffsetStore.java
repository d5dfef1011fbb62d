package org.exactlyonce.spark.jdbc.internal;

import java.lang.management.ManagementFactory;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.spi.OffsetStore;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.PreparedBatch;

/** The driver's view of the offsets and writer epochs kept in PostgreSQL. */
public final class JdbcOffsetStore implements OffsetStore {
  private final PipelineId pipeline;
  private final JdbcSettings settings;
  private final PostgresDialect dialect;
  private final SqlIdentifier table;
  private final List<SqlIdentifier> columns;
  private final Handle handle;

  /**
   * Connects to the database.
   *
   * @param table the output table to check, or null when a custom writer is used
   * @throws SinkConfigurationException if the database cannot be reached
   */
  public JdbcOffsetStore(
      PipelineId pipeline,
      JdbcSettings settings,
      PostgresDialect dialect,
      SqlIdentifier table,
      List<SqlIdentifier> columns) {
    this.pipeline = pipeline;
    this.settings = settings;
    this.dialect = dialect;
    this.table = table;
    this.columns = columns;
    try {
      this.handle = Jdbi.create(settings.url(), settings.toProperties()).open();
    } catch (RuntimeException e) {
      throw new SinkConfigurationException(
          "cannot connect to the database with "
              + settings
              + ": "
              + rootMessage(e)
              + ". Check the URL, user, password and that the server is up",
          e);
    }
  }

  @Override
  public void validate() {
    createIfMissing(dialect.createOffsetsTable());
    createIfMissing(dialect.createWritersTable());
    checkShape(dialect.offsetsTable(), PostgresDialect.OFFSETS_COLUMNS, "offsets table");
    checkShape(dialect.writersTable(), PostgresDialect.WRITERS_COLUMNS, "writers table");
    if (table != null) {
      Map<String, String> actual = columnsOf(table);
      if (actual.isEmpty()) {
        throw new SinkConfigurationException(
            "output table '"
                + table
                + "' does not exist (or is not visible to user "
                + settings.user()
                + "): create it before starting the job");
      }
      for (SqlIdentifier c : columns) {
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
    }
  }

  private void createIfMissing(String ddl) {
    try {
      handle.execute(ddl);
    } catch (RuntimeException e) {
      // Two drivers creating the same table at once: one loses the race on the catalog; the
      // table exists either way, and checkShape below verifies it.
      if (!rootMessage(e).contains("already exists") && !rootMessage(e).contains("duplicate key")) {
        throw new SinkConfigurationException(
            "cannot create the table with: " + ddl + " (" + rootMessage(e) + ")", e);
      }
    }
  }

  private void checkShape(SqlIdentifier t, List<List<String>> expected, String what) {
    Map<String, String> actual = columnsOf(t);
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

  private Map<String, String> columnsOf(SqlIdentifier t) {
    Map<String, String> out = new HashMap<>();
    handle
        .createQuery(dialect.columnsOf())
        .bind("table", t.name())
        .bind("schema", t.schema())
        .map((rs, ctx) -> Map.entry(rs.getString(1), rs.getString(2)))
        .forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  @Override
  public long takeWriterEpoch() {
    return handle.inTransaction(
        h ->
            h.createQuery(dialect.takeEpoch())
                .bind("pipeline", pipeline.value())
                .bind("by", ManagementFactory.getRuntimeMXBean().getName())
                .mapTo(Long.class)
                .one());
  }

  @Override
  public Map<TopicPartition, Long> storedOffsets() {
    Map<TopicPartition, Long> out = new HashMap<>();
    handle
        .createQuery(dialect.storedOffsets())
        .bind("pipeline", pipeline.value())
        .map(
            (rs, ctx) ->
                Map.entry(new TopicPartition(rs.getString(1), rs.getInt(2)), rs.getLong(3)))
        .forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  @Override
  public void storeStartOffsets(Map<TopicPartition, Long> offsets, long epoch) {
    handle.useTransaction(
        h -> {
          long current =
              h.createQuery(dialect.lockEpoch())
                  .bind("pipeline", pipeline.value())
                  .mapTo(Long.class)
                  .one();
          if (current != epoch) {
            throw new WriterFencedException(
                "pipeline '"
                    + pipeline
                    + "': another instance took writer epoch "
                    + current
                    + " while this one (epoch "
                    + epoch
                    + ") was starting; this one stops");
          }
          PreparedBatch batch = h.prepareBatch(dialect.insertOffsetIfAbsent());
          offsets.forEach(
              (tp, o) ->
                  batch
                      .bind("pipeline", pipeline.value())
                      .bind("topic", tp.topic())
                      .bind("partition", tp.partition())
                      .bind("offset", o)
                      .bind("epoch", epoch)
                      .add());
          batch.execute();
        });
  }

  @Override
  public void close() {
    handle.close();
  }

  static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t instanceof SQLException || t.getMessage() != null
        ? String.valueOf(t.getMessage())
        : t.toString();
  }
}
