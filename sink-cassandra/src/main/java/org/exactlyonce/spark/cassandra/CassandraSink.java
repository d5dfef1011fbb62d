package org.exactlyonce.spark.cassandra;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.RowValues;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SinkProperties;
import org.exactlyonce.spark.SinkSetting;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.cassandra.internal.CassandraOffsetStore;
import org.exactlyonce.spark.cassandra.internal.CassandraOutputCheck;
import org.exactlyonce.spark.cassandra.internal.CassandraSpec;
import org.exactlyonce.spark.cassandra.internal.CassandraSpec.Mode;
import org.exactlyonce.spark.cassandra.internal.CassandraWriter;
import org.exactlyonce.spark.cassandra.internal.CqlName;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.spi.Secrets;

/**
 * A Cassandra sink (strategy I): Cassandra has no multi-partition transactions, so every write is
 * idempotent <em>and</em> order-safe, and offsets are stored after every partition of the batch has
 * written, in a conditional batch that also checks the writer epoch. Choose the key explicitly:
 *
 * <ul>
 *   <li>{@link Builder#keyedBySourcePosition}: one row per output, primary key (topic, partition,
 *       offset, index);
 *   <li>{@link Builder#timestampFromSourceOffset()}: a natural key (the table's primary key among
 *       the columns) whose records all come from one Kafka partition; the offset is the write
 *       timestamp, so a replay never overwrites a newer value;
 *   <li>{@link Builder#timestampFrom}: a natural key fed from several partitions; the output's own
 *       timestamp (event time, in microseconds) orders its versions;
 *   <li>{@link Builder#runningTotal}: a bigint total per key, updated by a lightweight transaction
 *       that remembers the last offset applied per pipeline and source partition, so a replay adds
 *       nothing.
 * </ul>
 *
 * <p>Write timestamps come from the source, not the clock: the table must be written by this sink
 * only. Counter columns are refused. Immutable, serialisable configuration; one session per
 * executor JVM.
 *
 * @param <R> the output type
 * @serial exclude Spark ships the sink to executors within one job; its serialised form is not a
 *     supported API.
 */
public final class CassandraSink<R> implements IdempotentSink<R> {
  private static final long serialVersionUID = 1L;

  private final CassandraSpec<R> spec;

  private CassandraSink(CassandraSpec<R> spec) {
    this.spec = spec;
  }

  /**
   * Starts building an idempotent sink for pipeline {@code pipelineId}.
   *
   * @throws SinkConfigurationException if the id is not valid
   */
  public static <R> Builder<R> idempotent(String pipelineId) {
    return new Builder<>(PipelineId.of(pipelineId));
  }

  @Override
  public PipelineId pipelineId() {
    return spec.pipelineId();
  }

  /** The output table and the dead-letter table (created if missing). */
  @Override
  public void checkOutputs() {
    CassandraOutputCheck.run(spec);
  }

  @Override
  public OffsetStore openOffsetStore() {
    return new CassandraOffsetStore(spec);
  }

  @Override
  public long write(SourceRange range, long fromOffset, PartitionOutputs<R> outputs) {
    long rows = CassandraWriter.write(spec, range, outputs.positionedFrom(fromOffset));
    CassandraWriter.writeDeadLetters(spec, outputs.deadLetters());
    return rows;
  }

  @Override
  public boolean routesBadRecordsToDeadLetters() {
    return spec.deadLetters() != null;
  }

  @Override
  public String toString() {
    return "CassandraSink.idempotent{pipeline="
        + spec.pipelineId()
        + ", "
        + spec.settings()
        + ", offsets="
        + spec.offsetsTable()
        + ", table="
        + spec.table()
        + spec.columns()
        + ", mode="
        + spec.mode()
        + (spec.deadLetters() == null ? "" : ", deadLetters=" + spec.deadLetters())
        + "}";
  }

  /**
   * Builds a {@link CassandraSink}. Not thread-safe.
   *
   * @param <R> the output type
   */
  public static final class Builder<R> {
    private final PipelineId pipelineId;
    private CassandraSettings settings;
    private String offsetsTable;
    private String table;
    private List<String> columns;
    private RowValues<R> values;
    private Mode mode;
    private List<String> positionColumns = List.of();
    private TimestampFunction<R> timestamp;
    private String totalColumn;
    private AmountFunction<R> amount;
    private String deadLetterTable;

    private Builder(PipelineId pipelineId) {
      this.pipelineId = pipelineId;
    }

    /** Where to connect. Required. */
    public Builder<R> connection(CassandraSettings settings) {
      this.settings = settings;
      return this;
    }

    /**
     * Applies the settings of this pipeline found in Spark configuration {@code conf} (keys {@code
     * spark.exactlyonce.<pipeline id>.<key>}, see {@link CassandraProperties} and {@code
     * docs/settings.md}), which is only read. Same as {@link #settingsFrom(Map)}.
     *
     * @throws SinkConfigurationException naming the key and the fix
     */
    public Builder<R> settingsFrom(SparkConf conf) {
      return apply(SinkProperties.read(pipelineId, conf, CassandraProperties.ALL));
    }

    /**
     * Applies the settings of this pipeline found in {@code conf} under {@code
     * spark.exactlyonce.<pipeline id>.} (see {@link CassandraProperties} and {@code
     * docs/settings.md}): each key calls its builder or {@link CassandraSettings} method, so a
     * value is checked as the method checks it. A key that is absent leaves the builder as it was;
     * builder calls made after this one win over the configuration, calls made before it are
     * overridden by keys present. {@code contactPoints} and {@code localDatacenter} replace those
     * of a {@link #connection(CassandraSettings)} given before and keep its other settings; without
     * one, the connection keys need both. {@code tls=true} turns TLS on; {@code false} leaves it as
     * it was.
     *
     * @throws SinkConfigurationException for an unknown key (naming the nearest one), a key that
     *     looks like a secret (secrets come from {@code passwordEnv}) or a value that is not valid,
     *     naming the key and the fix
     */
    public Builder<R> settingsFrom(Map<String, String> conf) {
      return apply(SinkProperties.read(pipelineId, conf, CassandraProperties.ALL));
    }

    private Builder<R> apply(SinkProperties p) {
      CassandraSettings[] s = {settings};
      Optional<List<String>> points = p.get(CassandraProperties.CONTACT_POINTS);
      Optional<String> dc = p.get(CassandraProperties.LOCAL_DATACENTER);
      if (s[0] == null && points.isPresent() != dc.isPresent()) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': set both "
                + p.fullKey(CassandraProperties.CONTACT_POINTS)
                + " and "
                + p.fullKey(CassandraProperties.LOCAL_DATACENTER)
                + ", or call connection(CassandraSettings.contactPoints(...)) before"
                + " settingsFrom(...)");
      }
      if (points.isPresent()) {
        p.ifPresent(
            CassandraProperties.CONTACT_POINTS,
            pts ->
                s[0] =
                    s[0] == null
                        ? CassandraSettings.contactPoints(dc.get(), pts.toArray(new String[0]))
                        : s[0].withContactPoints(dc.orElse(s[0].localDatacenter()), pts));
      } else {
        p.ifPresent(
            CassandraProperties.LOCAL_DATACENTER,
            d -> s[0] = s[0].withContactPoints(d, s[0].contactPoints()));
      }
      for (SinkSetting<?> connectionKey :
          List.of(
              CassandraProperties.USER,
              CassandraProperties.PASSWORD_ENV,
              CassandraProperties.WRITE_CONSISTENCY,
              CassandraProperties.SERIAL_CONSISTENCY,
              CassandraProperties.MAX_REQUESTS_IN_FLIGHT,
              CassandraProperties.REQUEST_TIMEOUT,
              CassandraProperties.TLS,
              CassandraProperties.TRUST_STORE,
              CassandraProperties.TRUST_STORE_PASSWORD_ENV)) {
        if (s[0] == null && p.get(connectionKey).isPresent()) {
          throw new SinkConfigurationException(
              p.fullKey(connectionKey)
                  + " is set but there is no connection to apply it to: set "
                  + p.fullKey(CassandraProperties.CONTACT_POINTS)
                  + " and "
                  + p.fullKey(CassandraProperties.LOCAL_DATACENTER)
                  + ", or call connection(CassandraSettings.contactPoints(...)) before"
                  + " settingsFrom(...)");
        }
      }
      p.ifPresent(CassandraProperties.USER, u -> s[0] = s[0].user(u));
      p.ifPresent(CassandraProperties.PASSWORD_ENV, e -> s[0] = s[0].passwordFromEnv(e));
      p.ifPresent(CassandraProperties.WRITE_CONSISTENCY, c -> s[0] = s[0].writeConsistency(c));
      p.ifPresent(CassandraProperties.SERIAL_CONSISTENCY, c -> s[0] = s[0].serialConsistency(c));
      p.ifPresent(
          CassandraProperties.MAX_REQUESTS_IN_FLIGHT, n -> s[0] = s[0].maxRequestsInFlight(n));
      p.ifPresent(CassandraProperties.REQUEST_TIMEOUT, t -> s[0] = s[0].requestTimeout(t));
      Optional<String> trustStore = p.get(CassandraProperties.TRUST_STORE);
      if (p.get(CassandraProperties.TRUST_STORE_PASSWORD_ENV).isPresent() && trustStore.isEmpty()) {
        throw new SinkConfigurationException(
            p.fullKey(CassandraProperties.TRUST_STORE_PASSWORD_ENV)
                + " is the password of a trust store: set "
                + p.fullKey(CassandraProperties.TRUST_STORE)
                + " too");
      }
      if (trustStore.isPresent() && p.get(CassandraProperties.TLS).equals(Optional.of(false))) {
        throw new SinkConfigurationException(
            p.fullKey(CassandraProperties.TRUST_STORE)
                + " is set but "
                + p.fullKey(CassandraProperties.TLS)
                + "=false: a trust store is for TLS; remove one of them");
      }
      p.ifPresent(
          CassandraProperties.TLS,
          on -> {
            if (on && trustStore.isEmpty()) {
              s[0] = s[0].tls();
            }
          });
      p.ifPresent(
          CassandraProperties.TRUST_STORE,
          path ->
              s[0] =
                  s[0].tls(
                      path,
                      p.get(CassandraProperties.TRUST_STORE_PASSWORD_ENV)
                          .map(e -> Secrets.fromEnv(e, "the Cassandra trust store's password"))
                          .orElse(null)));
      settings = s[0];
      // Names are checked here as build() checks them, so that the error names the key.
      p.ifPresent(
          CassandraProperties.OFFSETS_TABLE, n -> offsetsTable(checkedTable("offsets table", n)));
      p.ifPresent(CassandraProperties.TABLE, n -> table(checkedTable("table", n)));
      p.ifPresent(
          CassandraProperties.DEAD_LETTER_TABLE,
          n -> deadLetterTable(checkedTable("dead-letter table", n)));
      return this;
    }

    private static String checkedTable(String what, String keyspaceTable) {
      CqlName.table(what, keyspaceTable);
      return keyspaceTable;
    }

    /**
     * The offsets table, {@code keyspace.table}; default {@code eos_offsets} in the output's
     * keyspace.
     */
    public Builder<R> offsetsTable(String keyspaceTable) {
      this.offsetsTable = keyspaceTable;
      return this;
    }

    /** The output table, {@code keyspace.table}. */
    public Builder<R> table(String keyspaceTable) {
      this.table = keyspaceTable;
      return this;
    }

    /** The columns the sink writes from each output, in the order {@link #values} returns them. */
    public Builder<R> columns(String... names) {
      this.columns = List.of(names);
      return this;
    }

    /** The column values of one output. Must be deterministic. */
    public Builder<R> values(RowValues<R> values) {
      this.values = values;
      return this;
    }

    /**
     * Keys every output by its source position; the table's primary key must be exactly these
     * columns (text, int, bigint, int), filled by the sink.
     */
    public Builder<R> keyedBySourcePosition(
        String topicColumn, String partitionColumn, String offsetColumn, String indexColumn) {
      return mode(Mode.SOURCE_POSITION)
          .positions(List.of(topicColumn, partitionColumn, offsetColumn, indexColumn));
    }

    /**
     * Upserts on the table's primary key with the source position as write timestamp ({@code offset
     * * 1024 + index} of the output among its record's outputs, so the later of two outputs of one
     * record wins whole). Correct only when every record of a key comes from one Kafka partition
     * (the natural key is the Kafka key) and that partition never changes: the stream must read one
     * topic, and a start or batch that finds partitions added to it after the pipeline stored its
     * offsets is refused with a {@link SinkConfigurationException}, since a key hashed to a new
     * partition would get small offsets as timestamps and lose to its old value. Use {@link
     * #timestampFrom} for such topics.
     */
    public Builder<R> timestampFromSourceOffset() {
      return mode(Mode.NATURAL_KEY_OFFSET_TIMESTAMP);
    }

    /**
     * Upserts on the table's primary key with {@code micros} of each output as write timestamp. Two
     * outputs of one key need different timestamps: Cassandra resolves equal timestamps cell by
     * cell (the greater value of each column wins), which can leave a row no output had. Include a
     * tie-breaker in the function (for example event time in milliseconds times 1000 plus a
     * sequence below 1000) when event times can repeat.
     */
    public Builder<R> timestampFrom(TimestampFunction<R> micros) {
      this.timestamp = micros;
      return mode(Mode.NATURAL_KEY_RECORD_TIMESTAMP);
    }

    /**
     * Keeps a running total per key (the columns are the table's primary key) in bigint column
     * {@code totalColumn}, adding {@code amount} of each output exactly once. The table also needs
     * {@code eos_applied map<text, bigint>}, where each row remembers the last offset applied per
     * pipeline and source partition (key {@code pipeline/topic-partition}), so several pipelines
     * can keep totals on one table, each adding every record once. Entries an older version wrote
     * without the pipeline ({@code topic-partition}) are taken over by the first pipeline that
     * updates the row. Each key costs a read and a lightweight transaction per task: use it for
     * aggregates of moderate key counts.
     */
    public Builder<R> runningTotal(String totalColumn, AmountFunction<R> amount) {
      this.totalColumn = totalColumn;
      this.amount = amount;
      return mode(Mode.RUNNING_TOTAL);
    }

    /**
     * Routes records the mapper throws on to dead-letter table {@code keyspace.table} (created if
     * missing) with their source position and the error, written idempotently with the outputs,
     * instead of stopping the pipeline.
     */
    public Builder<R> deadLetterTable(String keyspaceTable) {
      this.deadLetterTable = keyspaceTable;
      return this;
    }

    private Builder<R> mode(Mode m) {
      if (mode != null && mode != m) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': choose one of keyedBySourcePosition, timestampFromSourceOffset,"
                + " timestampFrom and runningTotal (already chose "
                + mode
                + ")");
      }
      this.mode = m;
      return this;
    }

    private Builder<R> positions(List<String> cols) {
      this.positionColumns = cols;
      return this;
    }

    /**
     * Validates the configuration (Cassandra itself is checked when the stream is created).
     *
     * @throws SinkConfigurationException naming the setting and the fix
     */
    public CassandraSink<R> build() {
      if (settings == null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': no connection: call connection(CassandraSettings"
                + ".contactPoints(\"datacenter1\", \"host:9042\"))");
      }
      if (table == null || columns == null || columns.isEmpty() || values == null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': say what is written: table(\"keyspace.table\")"
                + ".columns(\"a\", \"b\").values(row -> List.of(row.a(), row.b()))");
      }
      if (values instanceof RowValues.ByName<R>) {
        // The Cassandra driver converts no value (a Spark timestamp is not a CQL timestamp, a long
        // not an int), so reading fields by name needs conversions and a check not built yet.
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': values by name (RowValues.byName, SparkRows.byName) are for the PostgreSQL"
                + " sinks so far: give values(row -> List.of(...)) in column order, each value of"
                + " the Java type its CQL column takes");
      }
      if (mode == null) {
        throw new SinkConfigurationException(
            "sink '"
                + pipelineId
                + "': an idempotent sink needs a deterministic key and an order:"
                + " keyedBySourcePosition(...), timestampFromSourceOffset() (all of a key's records"
                + " in one Kafka partition), timestampFrom(...) (a timestamp taken from the record)"
                + " or runningTotal(...)");
      }
      CqlName t = CqlName.table("table", table);
      CqlName offsets =
          offsetsTable == null
              ? new CqlName(t.keyspace(), "eos_offsets")
              : CqlName.table("offsets table", offsetsTable);
      List<String> cols = columns.stream().map(c -> CqlName.column("column", c)).toList();
      List<String> pos =
          positionColumns.stream().map(c -> CqlName.column("position column", c)).toList();
      String total = totalColumn == null ? null : CqlName.column("total column", totalColumn);
      List<String> all = new java.util.ArrayList<>(cols);
      all.addAll(pos);
      if (total != null) {
        all.add(total);
      }
      if (all.stream().distinct().count() != all.size()) {
        throw new SinkConfigurationException(
            "sink '" + pipelineId + "': a column is listed twice in " + all);
      }
      return new CassandraSink<>(
          new CassandraSpec<>(
              pipelineId,
              settings,
              offsets,
              t,
              cols,
              values,
              mode,
              pos,
              timestamp,
              total,
              amount,
              deadLetterTable == null
                  ? null
                  : CqlName.table("dead-letter table", deadLetterTable)));
    }
  }
}
