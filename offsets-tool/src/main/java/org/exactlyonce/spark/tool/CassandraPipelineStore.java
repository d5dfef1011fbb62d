package org.exactlyonce.spark.tool;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.CqlSessionBuilder;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;

/**
 * The Cassandra sink's offsets table: one partition per pipeline, a row per source partition with
 * its next offset and high-water mark, the writer epoch as a static column. The table records no
 * times, but Cassandra keeps each cell's write time: every commit writes a partition's offset and
 * the epoch column in one conditional batch, every start writes the epoch column alone, so {@code
 * WRITETIME} tells when each offset was last written and when the epoch was last taken or committed
 * under. Read here at serial consistency (as the sink reads); written only through the sink's own
 * offset store.
 */
final class CassandraPipelineStore implements PipelineStore {
  /** The sink's rule for names (its {@code CqlName}): plain, folded to lower case. */
  private static final Pattern NAME = Pattern.compile("[A-Za-z][A-Za-z0-9_]{0,47}");

  private final CassandraSettings settings;
  private final String keyspace;
  private final String table;
  private final String cql;
  private final CqlSession session;

  /**
   * @param settings where to connect (the password already resolved)
   * @param keyspace the offsets table's keyspace (the sink's default: the output's)
   * @param table the offsets table's name, or {@code keyspace.table}
   */
  CassandraPipelineStore(CassandraSettings settings, String keyspace, String table) {
    this.settings = settings;
    String[] parts = table == null ? new String[0] : table.split("\\.", -1);
    if (parts.length == 2) {
      keyspace = parts[0];
      table = parts[1];
    } else if (keyspace == null) {
      throw new SinkConfigurationException(
          "the Cassandra offsets table's keyspace is not named: pass --keyspace (the keyspace of"
              + " the sink's output table, where the sink creates eos_offsets by default), or"
              + " --offsets-table keyspace.table");
    }
    this.keyspace = name("--keyspace", keyspace);
    this.table = name("--offsets-table", table);
    this.cql = '"' + this.keyspace + "\".\"" + this.table + '"';
    this.session = open(settings);
  }

  private static String name(String option, String value) {
    if (value == null || !NAME.matcher(value).matches()) {
      throw new SinkConfigurationException(
          option
              + " '"
              + value
              + "' is not a plain CQL name (letters, digits, '_', at most 48, starting with a"
              + " letter): use the names the sink was built with");
    }
    return value.toLowerCase(Locale.ROOT);
  }

  private static CqlSession open(CassandraSettings settings) {
    CqlSessionBuilder b =
        CqlSession.builder()
            .withLocalDatacenter(settings.localDatacenter())
            .withConfigLoader(
                DriverConfigLoader.programmaticBuilder()
                    .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, settings.requestTimeout())
                    .withDuration(
                        DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT,
                        settings.requestTimeout())
                    .withDuration(
                        DefaultDriverOption.CONTROL_CONNECTION_TIMEOUT, settings.requestTimeout())
                    .withString(
                        DefaultDriverOption.REQUEST_SERIAL_CONSISTENCY,
                        settings.serialConsistency())
                    .build());
    for (String hp : settings.contactPoints()) {
      int colon = hp.lastIndexOf(':');
      b.addContactPoint(
          InetSocketAddress.createUnresolved(
              hp.substring(0, colon), Integer.parseInt(hp.substring(colon + 1))));
    }
    if (settings.user() != null) {
      String password = settings.resolvePassword();
      b.withAuthCredentials(settings.user(), password == null ? "" : password);
    }
    try {
      return b.build();
    } catch (RuntimeException e) {
      throw new SinkConfigurationException(
          "cannot connect to Cassandra at "
              + settings.contactPoints()
              + " (data center "
              + settings.localDatacenter()
              + (settings.user() == null ? "" : ", user " + settings.user())
              + "): "
              + e.getMessage()
              + " (check --cassandra, --cassandra-dc, --user and --password-env)",
          e);
    }
  }

  @Override
  public String describe() {
    return "Cassandra "
        + String.join(",", settings.contactPoints())
        + " (offsets table "
        + keyspace
        + "."
        + table
        + ")";
  }

  /**
   * Runs a read at {@code level} (null: the driver's default, for the node-local system tables).
   * One pipeline's partition is read at serial consistency, as the sink reads it, which also
   * finishes a commit in progress; a read of every pipeline cannot be serial and reads at the
   * sink's write consistency.
   */
  private List<Row> query(String level, String statement, Object... values) {
    SimpleStatement s = SimpleStatement.newInstance(statement, values);
    if (level != null) {
      s =
          s.setConsistencyLevel(
              com.datastax.oss.driver.api.core.DefaultConsistencyLevel.valueOf(level));
    }
    try {
      return session.execute(s).all();
    } catch (RuntimeException e) {
      throw new SinkConfigurationException(
          "reading the offsets table " + keyspace + "." + table + " failed: " + e.getMessage(), e);
    }
  }

  private boolean tableExists() {
    return !query(
            null,
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND"
                + " table_name = ?",
            keyspace,
            table)
        .isEmpty();
  }

  /**
   * Without {@code pipeline}, a missing table is an error (the options name the wrong place); a
   * named pipeline in a table no sink has created yet has stored nothing, which {@code import} into
   * a new pipeline expects (its rewind creates the table, as the sink's start would).
   */
  private void requireTable() {
    if (!tableExists()) {
      throw new SinkConfigurationException(
          "table '"
              + keyspace
              + "."
              + table
              + "' does not exist at "
              + settings.contactPoints()
              + ": no Cassandra sink has started with it there. Check --keyspace (the sink's"
              + " default is the output table's keyspace) and --offsets-table");
    }
  }

  /** One pipeline's partition of the offsets table, as read. */
  private record Pipeline(
      String id,
      Long epoch,
      Instant epochWritten,
      List<PipelineState.Stored> stored,
      Instant offsetsWritten) {}

  private Map<String, Pipeline> pipelines(String pipeline) {
    if (pipeline != null && !tableExists()) {
      return Map.of();
    }
    requireTable();
    String select =
        "SELECT pipeline_id, topic, kafka_partition, until_offset, high_water, writer_epoch,"
            + " WRITETIME(until_offset), WRITETIME(writer_epoch) FROM "
            + cql;
    List<Row> rows =
        pipeline == null
            ? query(settings.writeConsistency(), select)
            : query(
                settings.serialConsistency(),
                select + " WHERE pipeline_id = ?",
                PipelineId.of(pipeline).value());
    Map<String, List<Row>> byPipeline = new TreeMap<>();
    rows.forEach(r -> byPipeline.computeIfAbsent(r.getString(0), p -> new ArrayList<>()).add(r));
    Map<String, Pipeline> out = new TreeMap<>();
    byPipeline.forEach(
        (id, rs) -> {
          Row first = rs.get(0);
          Long epoch = first.isNull(5) ? null : first.getLong(5);
          Instant epochWritten = first.isNull(7) ? null : micros(first.getLong(7));
          List<PipelineState.Stored> stored = new ArrayList<>();
          Instant offsetsWritten = null;
          for (Row r : rs) {
            if (r.isNull(1) || r.isNull(3)) {
              continue; // the static row of a pipeline that took an epoch and stored nothing
            }
            Instant written = r.isNull(6) ? null : micros(r.getLong(6));
            if (written != null && (offsetsWritten == null || written.isAfter(offsetsWritten))) {
              offsetsWritten = written;
            }
            long offset = r.getLong(3);
            Long mark = r.isNull(4) ? null : r.getLong(4);
            stored.add(
                new PipelineState.Stored(
                    new TopicPartition(r.getString(1), r.getInt(2)),
                    offset,
                    null, // the table keeps the pipeline's epoch only, not each offset's
                    written,
                    mark != null && offset < mark
                        ? "is below its high-water mark "
                            + mark
                            + " (moved back outside the library): the next start refuses it"
                            + " until reset through this tool"
                        : null));
          }
          stored.sort(
              Comparator.comparing((PipelineState.Stored s) -> s.tp().topic())
                  .thenComparing(s -> s.tp().partition()));
          out.put(id, new Pipeline(id, epoch, epochWritten, stored, offsetsWritten));
        });
    return out;
  }

  private static Instant micros(long micros) {
    return Instant.ofEpochSecond(micros / 1_000_000, (micros % 1_000_000) * 1_000);
  }

  /**
   * The epoch column is written by every start (alone) and every commit (with the offsets it
   * advances, in one batch of one write time): written later than every offset, it was last written
   * by a start, and its write time is when that start took it. Otherwise when the epoch was taken
   * is not known.
   */
  private static Instant takenAt(Pipeline p) {
    if (p.epochWritten() == null) {
      return null;
    }
    return p.offsetsWritten() == null || p.epochWritten().isAfter(p.offsetsWritten())
        ? p.epochWritten()
        : null;
  }

  @Override
  public List<PipelineState> read(String pipeline) {
    List<PipelineState> out = new ArrayList<>();
    pipelines(pipeline)
        .values()
        .forEach(p -> out.add(new PipelineState(p.id(), p.epoch(), takenAt(p), null, p.stored())));
    return out;
  }

  @Override
  public ExactlyOnceSink rewindSink(String pipeline) {
    // The sink's builder wants an output table and a mode; a rewind uses only the offset store.
    // The mode chosen checks nothing more than the offset store of any sink of this table does
    // (timestampFromSourceOffset() would also refuse partitions the pipeline has not stored).
    CassandraSink<Object> sink =
        CassandraSink.idempotent(pipeline)
            .connection(settings)
            .offsetsTable(keyspace + "." + table)
            .table(keyspace + ".eos_offsets_tool_no_output")
            .columns("unused")
            .values(row -> List.of())
            .keyedBySourcePosition("t", "p", "o", "i")
            .build();
    return new OffsetsOnly(sink);
  }

  /**
   * A Cassandra sink reduced to its offset store: {@link org.exactlyonce.spark.ExactlyOnce#rewind}
   * also checks a sink's outputs, and the tool knows none.
   */
  private static final class OffsetsOnly implements ExactlyOnceSink {
    private static final long serialVersionUID = 1L;
    private final CassandraSink<Object> sink;

    OffsetsOnly(CassandraSink<Object> sink) {
      this.sink = sink;
    }

    @Override
    public PipelineId pipelineId() {
      return sink.pipelineId();
    }

    @Override
    public OffsetStore openOffsetStore() {
      return sink.openOffsetStore();
    }
  }

  private Instant now() {
    Row r = query(null, "SELECT currentTimestamp() FROM system.local").get(0);
    return r.getInstant(0);
  }

  /**
   * Held: the epoch column or one of the offsets was written less than {@code idleFor} ago by the
   * write times Cassandra keeps. Every start writes the epoch and every commit writes it with the
   * offsets it advances, so a driver that started or committed a batch within {@code idleFor}
   * shows; one whose partitions received nothing for longer does not (it is then fenced by the
   * reset and stops at its next commit).
   */
  @Override
  public Optional<String> heldBecause(String pipeline, Duration idleFor) {
    Pipeline p = pipelines(pipeline).get(pipeline);
    if (p == null) {
      return Optional.empty();
    }
    Instant now = now();
    List<String> why = new ArrayList<>();
    Instant taken = takenAt(p);
    if (taken != null && Duration.between(taken, now).compareTo(idleFor) < 0) {
      why.add("its writer epoch was taken " + PostgresPipelineStore.ago(taken, now));
    }
    Instant written = p.offsetsWritten();
    if (written != null && Duration.between(written, now).compareTo(idleFor) < 0) {
      why.add("its offsets were last written " + PostgresPipelineStore.ago(written, now));
    }
    return why.isEmpty() ? Optional.empty() : Optional.of(String.join(" and ", why));
  }

  /**
   * A writer epoch taken longer than {@code idleFor} ago with no offset written since: a driver
   * started and has committed nothing (stuck, or its partitions received nothing), or was stopped
   * right after its start. Not an error: the next start takes a newer epoch. Offsets below their
   * high-water mark are reported by {@code doctor} from their note.
   */
  @Override
  public List<Finding> diagnose(
      PipelineState state,
      Map<TopicPartition, Long> end,
      Map<TopicPartition, Long> lastRecordMillis,
      Duration idleFor) {
    Instant taken = state.epochTakenAt();
    if (taken == null) {
      return List.of();
    }
    Instant now = now();
    if (Duration.between(taken, now).compareTo(idleFor) <= 0) {
      return List.of();
    }
    return List.of(
        Finding.of(
            Finding.Severity.INFO,
            null,
            "a driver took the pipeline at "
                + taken
                + " (the epoch column's Cassandra write time) under writer epoch "
                + state.writerEpoch()
                + " and has committed nothing since ("
                + Duration.between(taken, now).toSeconds()
                + " s, longer than --idle-for "
                + idleFor
                + ")",
            "none needed: the next start takes a newer epoch. If that driver still runs, check"
                + " why it commits nothing (stuck batch, or no new records)"));
  }

  @Override
  public void close() {
    session.close();
  }
}
