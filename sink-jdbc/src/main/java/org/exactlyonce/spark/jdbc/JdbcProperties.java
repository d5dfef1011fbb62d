package org.exactlyonce.spark.jdbc;

import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.exactlyonce.spark.SinkSetting;

/**
 * The PostgreSQL sinks' settings, as {@link JdbcSinkBuilder#settingsFrom(java.util.Map)} reads them
 * from {@code spark.exactlyonce.<pipeline id>.<key>}: each one names the builder method it calls,
 * which checks the value.
 */
public final class JdbcProperties {
  private JdbcProperties() {}

  /** {@link JdbcSettings#url(String)}. */
  public static final SinkSetting<String> URL =
      SinkSetting.text(
              "url",
              "none (required unless connection(...) is called)",
              "JDBC URL of the PostgreSQL database, e.g. jdbc:postgresql://db:5432/ads")
          .check(
              u -> !carriesSecret(u),
              "put no password in the URL (it would show in Spark's UI): name an environment"
                  + " variable with passwordEnv")
          .valueNotShownInErrors();

  /** {@link JdbcSettings#user(String)}. */
  public static final SinkSetting<String> USER =
      SinkSetting.text("user", "none", "database user to connect as");

  /** {@link JdbcSettings#passwordFromEnv(String)}. */
  public static final SinkSetting<String> PASSWORD_ENV =
      SinkSetting.text(
          "passwordEnv",
          "none",
          "environment variable holding the password, read on the driver and every executor");

  /** {@link JdbcSettings#maxPoolSize(int)}. */
  public static final SinkSetting<Integer> MAX_POOL_SIZE =
      SinkSetting.integer(
          "maxPoolSize",
          "task slots per executor + 1, at least 4",
          "most connections one executor JVM keeps to the database");

  /** {@link JdbcSettings#reconnectTimeout(Duration)}. */
  public static final SinkSetting<Duration> RECONNECT_TIMEOUT =
      SinkSetting.duration(
          "reconnectTimeout",
          "60s",
          "how long the driver waits for a database that stopped answering");

  /** {@link JdbcSettings#property(String, String)}, one key per driver property. */
  public static final SinkSetting<Map<String, String>> PROPERTY =
      SinkSetting.map(
          "property",
          "a JDBC driver property, e.g. property.sslmode=verify-full (no secrets: see passwordEnv)");

  /** {@link JdbcSinkBuilder#offsetsTable(String)}. */
  public static final SinkSetting<String> OFFSETS_TABLE =
      SinkSetting.text("offsetsTable", "eos_offsets", "offsets table, name or schema.name");

  /** {@link JdbcSinkBuilder#writersTable(String)}. */
  public static final SinkSetting<String> WRITERS_TABLE =
      SinkSetting.text("writersTable", "eos_writers", "writer-epoch table, name or schema.name");

  /** {@link JdbcSinkBuilder#table(String)}. */
  public static final SinkSetting<String> TABLE =
      SinkSetting.text(
          "table", "none", "output table, name or schema.name (columns and values come from code)");

  /** {@link JdbcSinkBuilder#batchSize(int)}. */
  public static final SinkSetting<Integer> BATCH_SIZE =
      SinkSetting.integer("batchSize", "1000", "outputs per JDBC batch")
          .check(n -> n >= 1, "use at least 1");

  /** {@link JdbcSinkBuilder#copy(boolean)}. */
  public static final SinkSetting<Boolean> COPY =
      SinkSetting.bool(
          "copy", "true", "write a plain table mapping with COPY instead of batched INSERTs");

  /** {@link JdbcSinkBuilder#deadLetterTable(String)}. */
  public static final SinkSetting<String> DEAD_LETTER_TABLE =
      SinkSetting.text(
          "deadLetterTable",
          "none (a bad record fails the batch)",
          "dead-letter table for records the mapper throws on");

  /** {@link JdbcBatchSink.Builder#stagingTable(String)}; a per-batch sink's only. */
  public static final SinkSetting<String> STAGING_TABLE =
      SinkSetting.text(
          "stagingTable",
          "none (not staged)",
          "JdbcSink.perBatch only: write results through this staging table on the executors");

  /** Every setting, in the reference's order. */
  public static final List<SinkSetting<?>> ALL =
      List.of(
          URL,
          USER,
          PASSWORD_ENV,
          MAX_POOL_SIZE,
          RECONNECT_TIMEOUT,
          PROPERTY,
          OFFSETS_TABLE,
          WRITERS_TABLE,
          TABLE,
          BATCH_SIZE,
          COPY,
          DEAD_LETTER_TABLE,
          STAGING_TABLE);

  // A password in the query string or in user-info would show in the UI with the URL.
  private static boolean carriesSecret(String url) {
    String lower = url.toLowerCase(Locale.ROOT);
    int authority = lower.indexOf("//");
    int end = authority < 0 ? -1 : lower.indexOf('/', authority + 2);
    int at = authority < 0 ? -1 : lower.lastIndexOf('@', end < 0 ? lower.length() : end);
    return lower.contains("password") || at > authority && authority >= 0;
  }
}
