package org.exactlyonce.spark.tool;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;

/**
 * The offsets and writers tables of the JDBC sinks in PostgreSQL (their DDL is in the README). Read
 * here with plain read-only queries; written only through the sink's own offset store.
 */
final class PostgresPipelineStore implements PipelineStore {
  /** The rule the sinks apply to table names: plain SQL names, optionally schema-qualified. */
  private static final Pattern NAME =
      Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62})?");

  private final JdbcSettings settings;
  private final String offsetsTable;
  private final String writersTable;
  private final String offsetsSql;
  private final String writersSql;
  private final Connection connection;

  PostgresPipelineStore(JdbcSettings settings, String offsetsTable, String writersTable) {
    this.settings = settings;
    this.offsetsTable = offsetsTable;
    this.writersTable = writersTable;
    this.offsetsSql = quoted("--offsets-table", offsetsTable);
    this.writersSql = quoted("--writers-table", writersTable);
    try {
      this.connection = DriverManager.getConnection(settings.url(), settings.toProperties());
      connection.setReadOnly(true);
      connection.setAutoCommit(true);
    } catch (SQLException e) {
      throw new SinkConfigurationException(
          "cannot connect to "
              + settings.safeUrl()
              + (settings.user() == null ? "" : " as " + settings.user())
              + ": "
              + e.getMessage()
              + " (check --jdbc-url, --user and --password-env)",
          e);
    }
  }

  private static String quoted(String option, String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new SinkConfigurationException(
          option
              + " '"
              + name
              + "' is not a plain SQL name: use letters, digits and '_', optionally qualified as"
              + " schema.table (the names the sink was built with)");
    }
    StringBuilder sql = new StringBuilder();
    for (String part : name.split("\\.")) {
      sql.append(sql.length() == 0 ? "" : ".")
          .append('"')
          .append(part.toLowerCase(Locale.ROOT))
          .append('"');
    }
    return sql.toString();
  }

  @Override
  public String describe() {
    return "PostgreSQL " + settings.safeUrl() + " (offsets table " + offsetsTable + ")";
  }

  private void requireTables() throws SQLException {
    for (String[] t :
        new String[][] {
          {offsetsSql, offsetsTable, "--offsets-table"},
          {writersSql, writersTable, "--writers-table"}
        }) {
      try (PreparedStatement s = connection.prepareStatement("SELECT to_regclass(?)")) {
        s.setString(1, t[0]);
        try (ResultSet rs = s.executeQuery()) {
          rs.next();
          if (rs.getString(1) == null) {
            throw new SinkConfigurationException(
                "table '"
                    + t[1]
                    + "' does not exist in "
                    + settings.safeUrl()
                    + " (or is not visible to user "
                    + settings.user()
                    + "): no JDBC sink has started with it there. Check "
                    + t[2]
                    + " and --jdbc-url");
          }
        }
      }
    }
  }

  @Override
  public List<PipelineState> read(String pipeline) {
    try {
      requireTables();
      Map<String, List<PipelineState.Stored>> stored = new LinkedHashMap<>();
      String where = pipeline == null ? "" : " WHERE pipeline_id = ?";
      try (PreparedStatement s =
          connection.prepareStatement(
              "SELECT pipeline_id, topic, kafka_partition, until_offset, writer_epoch, updated_at"
                  + " FROM "
                  + offsetsSql
                  + where
                  + " ORDER BY pipeline_id, topic, kafka_partition")) {
        if (pipeline != null) {
          s.setString(1, pipeline);
        }
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            stored
                .computeIfAbsent(rs.getString(1), p -> new ArrayList<>())
                .add(
                    new PipelineState.Stored(
                        new TopicPartition(rs.getString(2), rs.getInt(3)),
                        rs.getLong(4),
                        rs.getLong(5),
                        instant(rs.getTimestamp(6)),
                        null));
          }
        }
      }
      Map<String, PipelineState> out = new java.util.TreeMap<>();
      try (PreparedStatement s =
          connection.prepareStatement(
              "SELECT pipeline_id, writer_epoch, taken_at, taken_by FROM " + writersSql + where)) {
        if (pipeline != null) {
          s.setString(1, pipeline);
        }
        try (ResultSet rs = s.executeQuery()) {
          while (rs.next()) {
            String p = rs.getString(1);
            out.put(
                p,
                new PipelineState(
                    p,
                    rs.getLong(2),
                    instant(rs.getTimestamp(3)),
                    rs.getString(4),
                    stored.getOrDefault(p, List.of())));
          }
        }
      }
      stored.forEach(
          (p, partitions) ->
              out.putIfAbsent(p, new PipelineState(p, null, null, null, partitions)));
      return List.copyOf(out.values());
    } catch (SQLException e) {
      throw new SinkConfigurationException(
          "reading the offsets in " + settings.safeUrl() + " failed: " + e.getMessage(), e);
    }
  }

  private static Instant instant(Timestamp t) {
    return t == null ? null : t.toInstant();
  }

  @Override
  public ExactlyOnceSink rewindSink(String pipeline) {
    return JdbcSink.<Object>transactional(pipeline)
        .connection(settings)
        .offsetsTable(offsetsTable)
        .writersTable(writersTable)
        .writer(
            (handle, rows) -> {
              throw new UnsupportedOperationException("the offsets tool writes no outputs");
            })
        .build();
  }

  /**
   * Held: the pipeline's writer epoch was taken, or one of its offsets written, less than {@code
   * idleFor} ago by the database's clock. Every start takes an epoch and every commit writes {@code
   * updated_at}, so a driver that committed a batch within {@code idleFor} shows; one whose
   * partitions received nothing for longer does not (it is then fenced by the reset and stops at
   * its next commit).
   */
  @Override
  public Optional<String> heldBecause(String pipeline, Duration idleFor) {
    try {
      requireTables();
      try (PreparedStatement s =
          connection.prepareStatement(
              "SELECT w.taken_at, w.taken_by, (SELECT max(updated_at) FROM "
                  + offsetsSql
                  + " WHERE pipeline_id = ?), now() FROM (SELECT 1) one LEFT JOIN "
                  + writersSql
                  + " w ON w.pipeline_id = ?")) {
        s.setString(1, pipeline);
        s.setString(2, pipeline);
        try (ResultSet rs = s.executeQuery()) {
          rs.next();
          Instant taken = instant(rs.getTimestamp(1));
          String by = rs.getString(2);
          Instant committed = instant(rs.getTimestamp(3));
          Instant now = instant(rs.getTimestamp(4));
          List<String> why = new ArrayList<>();
          if (taken != null && Duration.between(taken, now).compareTo(idleFor) < 0) {
            why.add(
                "its writer epoch was taken " + ago(taken, now) + (by == null ? "" : " by " + by));
          }
          if (committed != null && Duration.between(committed, now).compareTo(idleFor) < 0) {
            why.add("its offsets were last written " + ago(committed, now));
          }
          return why.isEmpty() ? Optional.empty() : Optional.of(String.join(" and ", why));
        }
      }
    } catch (SQLException e) {
      throw new SinkConfigurationException(
          "reading the writers table in " + settings.safeUrl() + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * A writer epoch taken longer than {@code idleFor} ago with no offset written since: a driver
   * started and has committed nothing (stuck, or its partitions received nothing), or was stopped
   * right after its start. Not an error: the next start takes a newer epoch.
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
    Instant now = databaseNow();
    Instant committed =
        state.partitions().stream()
            .map(PipelineState.Stored::committedAt)
            .filter(java.util.Objects::nonNull)
            .max(Instant::compareTo)
            .orElse(null);
    boolean idle = Duration.between(taken, now).compareTo(idleFor) > 0;
    if (!idle || (committed != null && !committed.isBefore(taken))) {
      return List.of();
    }
    return List.of(
        Finding.of(
            Finding.Severity.INFO,
            null,
            "a driver took the pipeline at "
                + taken
                + (state.takenBy() == null ? "" : " (" + state.takenBy() + ")")
                + " under writer epoch "
                + state.writerEpoch()
                + " and has committed nothing since ("
                + Duration.between(taken, now).toSeconds()
                + " s, longer than --idle-for "
                + idleFor
                + ")",
            "none needed: the next start takes a newer epoch. If that driver still runs, check"
                + " why it commits nothing (stuck batch, or no new records)"));
  }

  private Instant databaseNow() {
    try (PreparedStatement s = connection.prepareStatement("SELECT now()");
        ResultSet rs = s.executeQuery()) {
      rs.next();
      return rs.getTimestamp(1).toInstant();
    } catch (SQLException e) {
      throw new SinkConfigurationException(
          "reading the time of " + settings.safeUrl() + " failed: " + e.getMessage(), e);
    }
  }

  static String ago(Instant then, Instant now) {
    Duration d = Duration.between(then, now);
    return d.toSeconds() + " s ago (" + then + ")";
  }

  @Override
  public void close() {
    try {
      connection.close();
    } catch (SQLException e) {
      // nothing was written on it
    }
  }
}
