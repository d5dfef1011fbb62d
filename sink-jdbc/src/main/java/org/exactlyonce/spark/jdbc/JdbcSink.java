package org.exactlyonce.spark.jdbc;

import java.util.ArrayList;
import java.util.List;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.internal.JdbcOffsetStore;
import org.exactlyonce.spark.jdbc.internal.PostgresDialect;
import org.exactlyonce.spark.jdbc.internal.SqlIdentifier;
import org.exactlyonce.spark.jdbc.internal.TableWriter;
import org.exactlyonce.spark.jdbc.internal.TransactionalCommit;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.spi.TransactionalSink;

/**
 * A PostgreSQL sink that writes each Kafka offset range and its offset in one database transaction
 * (strategy T): a replayed range finds its offset already stored and writes nothing. Build one with
 * {@link #transactional(String)}. Immutable, serialisable configuration; connections are pooled per
 * executor JVM.
 *
 * <p>Offsets live in a table (default {@code eos_offsets}) keyed by (pipeline id, topic,
 * partition), and the writer epoch of each pipeline in another (default {@code eos_writers}); both
 * are created when missing, and their DDL is in the README.
 *
 * @param <R> the output type
 */
public final class JdbcSink<R> implements TransactionalSink<R> {
  private static final long serialVersionUID = 1L;

  private final PipelineId pipelineId;
  private final JdbcSettings settings;
  private final PostgresDialect dialect;
  private final SqlIdentifier table;
  private final List<SqlIdentifier> columns;
  private final JdbcWriter<R> writer;
  private final int batchSize;

  private JdbcSink(Builder<R> b, SqlIdentifier table, List<SqlIdentifier> columns) {
    this.pipelineId = b.pipelineId;
    this.settings = b.settings;
    this.dialect =
        new PostgresDialect(
            SqlIdentifier.parse("offsets table", b.offsetsTable, true),
            SqlIdentifier.parse("writers table", b.writersTable, true));
    this.table = table;
    this.columns = columns;
    this.writer = b.writer != null ? b.writer : new TableWriter<>(table, columns, b.values);
    this.batchSize = b.batchSize;
  }

  /**
   * Starts building a transactional sink for pipeline {@code pipelineId}: outputs and offsets of
   * each range are committed in one transaction.
   *
   * @throws SinkConfigurationException if the id is not valid
   */
  public static <R> Builder<R> transactional(String pipelineId) {
    return new Builder<>(PipelineId.of(pipelineId));
  }

  @Override
  public PipelineId pipelineId() {
    return pipelineId;
  }

  /** The connection settings. */
  public JdbcSettings settings() {
    return settings;
  }

  @Override
  public OffsetStore openOffsetStore() {
    return new JdbcOffsetStore(pipelineId, settings, dialect, table, columns);
  }

  @Override
  public PartitionCommit commit(long epoch, SourceRange range, PartitionOutputs<R> outputs) {
    return TransactionalCommit.commit(
        pipelineId, settings, dialect, writer, batchSize, epoch, range, outputs);
  }

  @Override
  public String toString() {
    return "JdbcSink.transactional{pipeline="
        + pipelineId
        + ", "
        + settings
        + ", offsets="
        + dialect.offsetsTable()
        + ", writers="
        + dialect.writersTable()
        + ", table="
        + (table == null ? "custom writer" : table + columns.toString())
        + ", batchSize="
        + batchSize
        + "}";
  }

  /**
   * Builds a {@link JdbcSink}. Give it a connection and either a table with columns and values, or
   * a {@link JdbcWriter}. Not thread-safe.
   *
   * @param <R> the output type
   */
  public static final class Builder<R> {
    private final PipelineId pipelineId;
    private JdbcSettings settings;
    private String offsetsTable = "eos_offsets";
    private String writersTable = "eos_writers";
    private String table;
    private List<String> columns;
    private RowValues<R> values;
    private JdbcWriter<R> writer;
    private int batchSize = 1000;

    private Builder(PipelineId pipelineId) {
      this.pipelineId = pipelineId;
    }

    /** Where to connect. Required. */
    public Builder<R> connection(JdbcSettings settings) {
      this.settings = settings;
      return this;
    }

    /** The offsets table, {@code name} or {@code schema.name}; default {@code eos_offsets}. */
    public Builder<R> offsetsTable(String name) {
      this.offsetsTable = name;
      return this;
    }

    /** The writer-epoch table, {@code name} or {@code schema.name}; default {@code eos_writers}. */
    public Builder<R> writersTable(String name) {
      this.writersTable = name;
      return this;
    }

    /** The output table, {@code name} or {@code schema.name}; use with columns and values. */
    public Builder<R> table(String name) {
      this.table = name;
      return this;
    }

    /** The output columns, in the order {@link #values(RowValues)} returns their values. */
    public Builder<R> columns(String... names) {
      this.columns = List.of(names);
      return this;
    }

    /** The column values of one output. */
    public Builder<R> values(RowValues<R> values) {
      this.values = values;
      return this;
    }

    /** Writes outputs with custom SQL instead of a table and columns. */
    public Builder<R> writer(JdbcWriter<R> writer) {
      this.writer = writer;
      return this;
    }

    /** Outputs per JDBC batch (default 1000); a partition is written in several batches. */
    public Builder<R> batchSize(int batchSize) {
      this.batchSize = batchSize;
      return this;
    }

    /**
     * Validates the configuration (the database itself is checked when the stream is created).
     *
     * @throws SinkConfigurationException naming the setting and the fix
     */
    public JdbcSink<R> build() {
      if (settings == null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': no connection: call connection(JdbcSettings.url(\"jdbc:postgresql://...\"))");
      }
      if (batchSize < 1) {
        throw new SinkConfigurationException("batchSize must be at least 1, got " + batchSize);
      }
      boolean mapping = table != null || columns != null || values != null;
      if (writer != null && mapping) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': both writer(...) and table/columns/values are set: choose one");
      }
      if (writer != null) {
        return new JdbcSink<>(this, null, List.of());
      }
      if (table == null || columns == null || columns.isEmpty() || values == null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': say how outputs are written: table(\"name\").columns(\"a\", \"b\")"
                + ".values(row -> List.of(row.a(), row.b())), or writer((handle, rows) -> ...)");
      }
      List<SqlIdentifier> cols = new ArrayList<>();
      for (String c : columns) {
        SqlIdentifier id = SqlIdentifier.parse("column", c, false);
        if (cols.stream().anyMatch(x -> x.name().equals(id.name()))) {
          throw new SinkConfigurationException("column '" + c + "' is listed twice");
        }
        cols.add(id);
      }
      return new JdbcSink<>(this, SqlIdentifier.parse("table", table, true), List.copyOf(cols));
    }
  }
}
