package org.exactlyonce.spark.cassandra;

import java.time.Duration;
import java.util.List;
import org.exactlyonce.spark.SinkSetting;

/**
 * The Cassandra sink's settings, as {@link CassandraSink.Builder#settingsFrom(java.util.Map)} reads
 * them from {@code spark.exactlyonce.<pipeline id>.<key>}: each one names the builder or {@link
 * CassandraSettings} method it calls, which checks the value.
 */
public final class CassandraProperties {
  private CassandraProperties() {}

  /** {@link CassandraSettings#contactPoints(String, String...)}. */
  public static final SinkSetting<List<String>> CONTACT_POINTS =
      SinkSetting.list(
          "contactPoints",
          "none (required unless connection(...) is called)",
          "nodes to connect to, host:port[,host:port...]");

  /** {@link CassandraSettings#contactPoints(String, String...)}. */
  public static final SinkSetting<String> LOCAL_DATACENTER =
      SinkSetting.text(
          "localDatacenter",
          "none (required with contactPoints)",
          "the data center the driver routes to, e.g. datacenter1");

  /** {@link CassandraSettings#user(String)}. */
  public static final SinkSetting<String> USER =
      SinkSetting.text("user", "none", "user to authenticate as");

  /** {@link CassandraSettings#passwordFromEnv(String)}. */
  public static final SinkSetting<String> PASSWORD_ENV =
      SinkSetting.text(
          "passwordEnv",
          "none",
          "environment variable holding the password, read on the driver and every executor");

  /** {@link CassandraSettings#writeConsistency(String)}. */
  public static final SinkSetting<String> WRITE_CONSISTENCY =
      SinkSetting.text(
          "writeConsistency",
          "LOCAL_QUORUM",
          "consistency of writes and reads: LOCAL_QUORUM, QUORUM, EACH_QUORUM or ALL");

  /** {@link CassandraSettings#serialConsistency(String)}. */
  public static final SinkSetting<String> SERIAL_CONSISTENCY =
      SinkSetting.text(
          "serialConsistency",
          "LOCAL_SERIAL",
          "serial consistency of lightweight transactions: LOCAL_SERIAL or SERIAL");

  /** {@link CassandraSettings#maxRequestsInFlight(int)}. */
  public static final SinkSetting<Integer> MAX_REQUESTS_IN_FLIGHT =
      SinkSetting.integer(
          "maxRequestsInFlight", "128", "most asynchronous writes one task keeps in flight");

  /** {@link CassandraSettings#requestTimeout(Duration)}. */
  public static final SinkSetting<Duration> REQUEST_TIMEOUT =
      SinkSetting.duration("requestTimeout", "10s", "timeout of one request")
          .check(d -> !d.isNegative() && !d.isZero(), "use a positive duration such as 10s");

  /** {@link CassandraSettings#tls()}. */
  public static final SinkSetting<Boolean> TLS =
      SinkSetting.bool(
          "tls",
          "false",
          "connect over TLS, trusting the JVM's default trust store (or trustStore)");

  /** {@link CassandraSettings#tls(String, String)}. */
  public static final SinkSetting<String> TRUST_STORE =
      SinkSetting.text(
          "trustStore",
          "none (the JVM's default)",
          "TLS trust store (PKCS12 or JKS) at the same path on the driver and every executor");

  /** The password of {@link CassandraSettings#tls(String, String)}. */
  public static final SinkSetting<String> TRUST_STORE_PASSWORD_ENV =
      SinkSetting.text(
          "trustStorePasswordEnv",
          "none",
          "environment variable holding the trust store's password, read on the driver");

  /** {@link CassandraSink.Builder#offsetsTable(String)}. */
  public static final SinkSetting<String> OFFSETS_TABLE =
      SinkSetting.text(
          "offsetsTable", "eos_offsets in the output's keyspace", "offsets table, keyspace.table");

  /** {@link CassandraSink.Builder#table(String)}. */
  public static final SinkSetting<String> TABLE =
      SinkSetting.text(
          "table", "none", "output table, keyspace.table (columns and values come from code)");

  /** {@link CassandraSink.Builder#deadLetterTable(String)}. */
  public static final SinkSetting<String> DEAD_LETTER_TABLE =
      SinkSetting.text(
          "deadLetterTable",
          "none (a bad record fails the batch)",
          "dead-letter table for records the mapper throws on, keyspace.table");

  /** Every setting, in the reference's order. */
  public static final List<SinkSetting<?>> ALL =
      List.of(
          CONTACT_POINTS,
          LOCAL_DATACENTER,
          USER,
          PASSWORD_ENV,
          WRITE_CONSISTENCY,
          SERIAL_CONSISTENCY,
          MAX_REQUESTS_IN_FLIGHT,
          REQUEST_TIMEOUT,
          TLS,
          TRUST_STORE,
          TRUST_STORE_PASSWORD_ENV,
          OFFSETS_TABLE,
          TABLE,
          DEAD_LETTER_TABLE);
}
