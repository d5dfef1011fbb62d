package org.exactlyonce.spark.jdbc;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.RowValues;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SinkProperties;
import org.exactlyonce.spark.SinkSetting;
import org.exactlyonce.spark.jdbc.internal.JdbcSpec;
import org.exactlyonce.spark.jdbc.internal.PostgresDialect;
import org.exactlyonce.spark.jdbc.internal.SqlIdentifier;
import org.exactlyonce.spark.jdbc.internal.TableMapping;
import org.exactlyonce.spark.jdbc.internal.TableMapping.VersionSource;

/**
 * What every JDBC sink builder shares: the connection, the offset tables, and how outputs are
 * written (a table with columns and values, optionally upserted on a key, or a custom writer).
 * Configuration is validated by {@code build()}; the database itself is checked when the stream is
 * created. Not thread-safe.
 *
 * @param <R> the output type
 * @param <B> the concrete builder
 */
public abstract class JdbcSinkBuilder<R, B extends JdbcSinkBuilder<R, B>> {
  final PipelineId pipelineId;
  private JdbcSettings settings;
  private String offsetsTable = "eos_offsets";
  private String writersTable = "eos_writers";
  String table;
  private List<String> columns;
  private RowValues<R> values;
  JdbcWriter<R> writer;
  private int batchSize = 1000;
  private boolean copy = true;
  private List<String> keys = List.of();
  List<String> accumulating = List.of();
  String versionColumn;
  VersionSource versionSource = VersionSource.NONE;
  VersionFunction<R> versionFunction;
  String tieBreakerColumn = "source_position";
  List<String> positionColumns = List.of();
  String deadLetterTable;

  JdbcSinkBuilder(PipelineId pipelineId) {
    this.pipelineId = pipelineId;
  }

  abstract B self();

  /** Where to connect. Required. */
  public B connection(JdbcSettings settings) {
    this.settings = settings;
    return self();
  }

  /**
   * Applies the settings of this pipeline found in Spark configuration {@code conf} (keys {@code
   * spark.exactlyonce.<pipeline id>.<key>}, see {@link JdbcProperties} and {@code
   * docs/settings.md}), which is only read. Same as {@link #settingsFrom(Map)}.
   *
   * @throws SinkConfigurationException naming the key and the fix
   */
  public B settingsFrom(SparkConf conf) {
    return apply(SinkProperties.read(pipelineId, conf, JdbcProperties.ALL));
  }

  /**
   * Applies the settings of this pipeline found in {@code conf} under {@code
   * spark.exactlyonce.<pipeline id>.} (see {@link JdbcProperties} and {@code docs/settings.md}):
   * each key calls its builder method, so a value is checked as the method checks it. A key that is
   * absent leaves the builder as it was; builder calls made after this one win over the
   * configuration, calls made before it are overridden by keys present. {@code url} replaces the
   * URL of a {@link #connection(JdbcSettings)} given before and keeps its other settings; without
   * one, the connection keys need {@code url}.
   *
   * @throws SinkConfigurationException for an unknown key (naming the nearest one), a key that
   *     looks like a secret (secrets come from {@code passwordEnv}) or a value that is not valid,
   *     naming the key and the fix
   */
  public B settingsFrom(Map<String, String> conf) {
    return apply(SinkProperties.read(pipelineId, conf, JdbcProperties.ALL));
  }

  private B apply(SinkProperties p) {
    JdbcSettings[] s = {settings};
    p.ifPresent(
        JdbcProperties.URL, u -> s[0] = s[0] == null ? JdbcSettings.url(u) : s[0].withUrl(u));
    for (SinkSetting<?> connectionKey :
        List.of(
            JdbcProperties.USER,
            JdbcProperties.PASSWORD_ENV,
            JdbcProperties.MAX_POOL_SIZE,
            JdbcProperties.RECONNECT_TIMEOUT,
            JdbcProperties.PROPERTY)) {
      if (s[0] == null && p.get(connectionKey).isPresent()) {
        throw new SinkConfigurationException(
            p.fullKey(connectionKey)
                + " is set but there is no connection to apply it to: set "
                + p.fullKey(JdbcProperties.URL)
                + ", or call connection(JdbcSettings.url(...)) before settingsFrom(...)");
      }
    }
    p.ifPresent(JdbcProperties.USER, u -> s[0] = s[0].user(u));
    p.ifPresent(JdbcProperties.PASSWORD_ENV, e -> s[0] = s[0].passwordFromEnv(e));
    p.ifPresent(JdbcProperties.MAX_POOL_SIZE, n -> s[0] = s[0].maxPoolSize(n));
    p.ifPresent(JdbcProperties.RECONNECT_TIMEOUT, t -> s[0] = s[0].reconnectTimeout(t));
    p.forEachEntry(JdbcProperties.PROPERTY, (k, v) -> s[0] = s[0].property(k, v));
    settings = s[0];
    // Names are checked here as build() checks them, so that the error names the key.
    p.ifPresent(JdbcProperties.OFFSETS_TABLE, n -> offsetsTable(checkedName("offsets table", n)));
    p.ifPresent(JdbcProperties.WRITERS_TABLE, n -> writersTable(checkedName("writers table", n)));
    p.ifPresent(JdbcProperties.TABLE, n -> table(checkedName("table", n)));
    p.ifPresent(JdbcProperties.BATCH_SIZE, this::batchSize);
    p.ifPresent(JdbcProperties.COPY, this::copy);
    p.ifPresent(
        JdbcProperties.DEAD_LETTER_TABLE,
        n -> deadLetterTable(checkedName("dead-letter table", n)));
    applyStrategySettings(p);
    return self();
  }

  /** Applies the settings of one strategy only; the others refuse them. */
  void applyStrategySettings(SinkProperties p) {
    if (p.get(JdbcProperties.STAGING_TABLE).isPresent()) {
      throw new SinkConfigurationException(
          p.fullKey(JdbcProperties.STAGING_TABLE)
              + " applies to a per-batch sink (JdbcSink.perBatch(...)) only: remove it");
    }
  }

  static String checkedName(String what, String name) {
    SqlIdentifier.parse(what, name, true);
    return name;
  }

  /** The offsets table, {@code name} or {@code schema.name}; default {@code eos_offsets}. */
  public B offsetsTable(String name) {
    this.offsetsTable = name;
    return self();
  }

  /** The writer-epoch table, {@code name} or {@code schema.name}; default {@code eos_writers}. */
  public B writersTable(String name) {
    this.writersTable = name;
    return self();
  }

  /** The output table, {@code name} or {@code schema.name}; use with columns and values. */
  public B table(String name) {
    this.table = name;
    return self();
  }

  /** The output columns, in the order {@link #values(RowValues)} returns their values. */
  public B columns(String... names) {
    this.columns = List.of(names);
    return self();
  }

  /**
   * The column values of one output. Must be deterministic. {@link RowValues#byName} reads each
   * column's value from the output's field of the same name.
   */
  public B values(RowValues<R> values) {
    this.values = values;
    return self();
  }

  /**
   * Upserts on {@code keyColumns} (which need a unique index): an output whose key exists replaces
   * the stored row's other columns ({@code INSERT ... ON CONFLICT DO UPDATE}).
   *
   * <p>The outputs of a partition (of a batch, for a per-batch sink) are merged per key in memory
   * and written in key order, so that transactions sharing hot keys lock them in one order and wait
   * for each other instead of deadlocking: memory grows with the distinct keys of a partition.
   */
  public B upsertOn(String... keyColumns) {
    this.keys = List.of(keyColumns);
    return self();
  }

  /**
   * With {@link #upsertOn}: these columns are added to the stored value instead of replacing it
   * ({@code total = total + excluded.total}), for running totals. Exactly-once only where the write
   * and the offsets commit together (transactional and per-batch sinks).
   */
  public B accumulating(String... columnNames) {
    this.accumulating = List.of(columnNames);
    return self();
  }

  /**
   * Routes records the mapper throws on to dead-letter table {@code name} (created if missing, DDL
   * in the README) with their source position and the error, written in the same exactly-once unit
   * as the outputs, instead of stopping the pipeline. Without it (the default) such a record fails
   * the batch with an error naming its position.
   */
  public B deadLetterTable(String name) {
    this.deadLetterTable = name;
    return self();
  }

  /** Writes outputs with custom SQL instead of a table and columns. */
  public B writer(JdbcWriter<R> writer) {
    this.writer = writer;
    return self();
  }

  /** Outputs per JDBC batch (default 1000); a partition is written in several batches. */
  public B batchSize(int batchSize) {
    this.batchSize = batchSize;
    return self();
  }

  /**
   * Whether a plain table mapping (no {@code upsertOn}, no source-position key) writes with
   * PostgreSQL's {@code COPY} inside the transaction (default: yes, about twice the rows per second
   * of batched INSERTs). {@code copy(false)} writes with batched INSERTs, for values COPY's text
   * form does not take (arrays, JSON objects; strings, numbers, booleans, byte[], UUIDs and
   * dates/times are fine).
   */
  public B copy(boolean copy) {
    this.copy = copy;
    return self();
  }

  /** Validates what every sink needs and returns the shared configuration. */
  JdbcSpec<R> spec() {
    if (settings == null) {
      throw new SinkConfigurationException(
          "sink '"
              + pipelineId
              + "': no connection: call connection(JdbcSettings.url(\"jdbc:postgresql://...\"))");
    }
    if (batchSize < 1) {
      throw new SinkConfigurationException("batchSize must be at least 1, got " + batchSize);
    }
    PostgresDialect dialect =
        new PostgresDialect(
            SqlIdentifier.parse("offsets table", offsetsTable, true),
            SqlIdentifier.parse("writers table", writersTable, true));
    SqlIdentifier deadLetters =
        deadLetterTable == null
            ? null
            : SqlIdentifier.parse("dead-letter table", deadLetterTable, true);
    boolean mapping = table != null || columns != null || values != null;
    if (writer != null && mapping) {
      throw new SinkConfigurationException(
          "sink '"
              + pipelineId
              + "': both writer(...) and table/columns/values are set: choose one");
    }
    if (writer != null) {
      if (!keys.isEmpty() || !accumulating.isEmpty()) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': upsertOn/accumulating apply to a table mapping, not to a custom writer(...):"
                + " write the ON CONFLICT clause in the writer's SQL");
      }
      return new JdbcSpec<>(
          pipelineId, settings, dialect, null, writer, batchSize, false, deadLetters);
    }
    if (table == null || columns == null || columns.isEmpty() || values == null) {
      throw new SinkConfigurationException(
          "sink '"
              + pipelineId
              + "': say how outputs are written: table(\"name\").columns(\"a\", \"b\")"
              + ".values(row -> List.of(row.a(), row.b())), or writer((handle, rows) -> ...)");
    }
    List<SqlIdentifier> cols = identifiers("column", columns);
    List<SqlIdentifier> keyCols = identifiers("key column", keys);
    List<SqlIdentifier> accCols = identifiers("accumulating column", accumulating);
    SqlIdentifier version =
        versionColumn == null ? null : SqlIdentifier.parse("version column", versionColumn, false);
    SqlIdentifier tieBreaker =
        version == null ? null : SqlIdentifier.parse("tie-breaker column", tieBreakerColumn, false);
    List<SqlIdentifier> posCols = identifiers("source position column", positionColumns);
    List<String> names = new ArrayList<>(cols.stream().map(SqlIdentifier::name).toList());
    if (version != null) {
      names.add(version.name());
      names.add(tieBreaker.name());
    }
    names.addAll(posCols.stream().map(SqlIdentifier::name).toList());
    if (names.stream().distinct().count() != names.size()) {
      throw new SinkConfigurationException(
          "sink '" + pipelineId + "': a column is listed twice in " + names);
    }
    for (SqlIdentifier k : keyCols) {
      if (!names.contains(k.name())) {
        throw new SinkConfigurationException(
            "upsert key column '" + k.name() + "' is not among the sink's columns " + names);
      }
    }
    if (!accCols.isEmpty() && keyCols.isEmpty()) {
      throw new SinkConfigurationException(
          "accumulating(...) adds to the row with the same key: name the key with upsertOn(...)");
    }
    for (SqlIdentifier a : accCols) {
      if (!cols.stream().anyMatch(c -> c.name().equals(a.name()))
          || keyCols.stream().anyMatch(k -> k.name().equals(a.name()))) {
        throw new SinkConfigurationException(
            "accumulating column '" + a.name() + "' must be one of the non-key columns " + columns);
      }
    }
    // Values by name read each output's field of the column's name, as the columns were given.
    RowValues<R> bound =
        values instanceof RowValues.ByName<R> byName ? byName.bind(columns) : values;
    TableMapping<R> m =
        new TableMapping<>(
            SqlIdentifier.parse("table", table, true),
            cols,
            bound,
            keyCols,
            accCols,
            version,
            versionSource,
            versionFunction,
            tieBreaker,
            posCols);
    return new JdbcSpec<>(pipelineId, settings, dialect, m, null, batchSize, copy, deadLetters);
  }

  private static List<SqlIdentifier> identifiers(String what, List<String> names) {
    return names.stream().map(n -> SqlIdentifier.parse(what, n, false)).toList();
  }
}
