package org.exactlyonce.spark.kafka;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.exactlyonce.spark.SinkSetting;

/**
 * The Kafka sinks' settings, as {@link KafkaSink.Builder#settingsFrom(java.util.Map)} reads them
 * from {@code spark.exactlyonce.<pipeline id>.<key>}: each one names the builder method it calls,
 * and a value is checked as {@code build()} checks it.
 */
public final class KafkaProperties {
  private KafkaProperties() {}

  /** {@link KafkaSink.Builder#bootstrapServers(String)}. */
  public static final SinkSetting<String> BOOTSTRAP_SERVERS =
      SinkSetting.text(
          "bootstrapServers",
          "none (required unless set in code)",
          "brokers to write to, host:port[,host:port...]");

  /** {@link KafkaSink.Builder#topic(String)}. */
  public static final SinkSetting<String> TOPIC =
      SinkSetting.text(
          "topic", "none (required unless set in code)", "output topic; it must exist");

  /** {@link KafkaSink.Builder#clientProperty(String, String)}, one key per client setting. */
  public static final SinkSetting<Map<String, String>> CLIENT =
      SinkSetting.map(
          "client",
          "a setting of every client of the sink, e.g. client.security.protocol=SSL (no secrets; the sink sets client.id and default.api.timeout.ms)");

  /** {@link KafkaSink.Builder#producerProperty(String, String)}, one key per producer setting. */
  public static final SinkSetting<Map<String, String>> PRODUCER =
      SinkSetting.map(
          "producer",
          "a producer setting, e.g. producer.linger.ms=20 (the sink sets acks, client.id, max.block.ms and the serializers)");

  /** {@link KafkaSink.Builder#progressGroup(String)}. */
  public static final SinkSetting<String> PROGRESS_GROUP =
      SinkSetting.text(
          "progressGroup",
          "eos-progress-<pipeline id>",
          "consumer group holding the sink's progress, dedicated to the sink");

  /** {@link KafkaSink.Builder#transactionTimeout(Duration)}. */
  public static final SinkSetting<Duration> TRANSACTION_TIMEOUT =
      SinkSetting.duration(
          "transactionTimeout",
          "1min",
          "producers' transaction.timeout.ms: the longest one range's write may take");

  /** {@link KafkaSink.Builder#apiTimeout(Duration)}. */
  public static final SinkSetting<Duration> API_TIMEOUT =
      SinkSetting.duration(
          "apiTimeout",
          "30s",
          "how long a call to Kafka (metadata, offsets, a blocked send) may take");

  /** {@link KafkaSink.Builder#deadLetterTopic(String)}. */
  public static final SinkSetting<String> DEAD_LETTER_TOPIC =
      SinkSetting.text(
          "deadLetterTopic",
          "none (a bad record stops the job)",
          "topic for records the mapper fails on; it must exist");

  /** {@link KafkaSink.Builder#recoveryScanDepth(long)}. */
  public static final SinkSetting<Long> RECOVERY_SCAN_DEPTH =
      SinkSetting.longInteger(
          "recoveryScanDepth",
          "100000",
          "records read at the end of each output partition when the progress group lost its offsets");

  /** {@link KafkaSink.Builder#expectedDowntime(Duration)}. */
  public static final SinkSetting<Duration> EXPECTED_DOWNTIME =
      SinkSetting.duration(
          "expectedDowntime", "3d", "the longest the pipeline may stay stopped (checked at start)");

  /** {@link KafkaSink.Builder#progressKeepAlive(Duration)}. */
  public static final SinkSetting<Duration> PROGRESS_KEEP_ALIVE =
      SinkSetting.duration(
          "progressKeepAlive", "1h", "how often the driver re-commits unchanged progress offsets");

  /** The count of {@link KafkaSink.Builder#idleProducers(int, Duration)}. */
  public static final SinkSetting<Integer> MAX_IDLE_PRODUCERS =
      SinkSetting.integer(
          "maxIdleProducers",
          "64",
          "idle transactional producers one executor keeps between batches");

  /** The duration of {@link KafkaSink.Builder#idleProducers(int, Duration)}. */
  public static final SinkSetting<Duration> IDLE_PRODUCER_TIMEOUT =
      SinkSetting.duration(
          "idleProducerTimeout", "10min", "an idle producer kept longer than this is closed");

  /** Every setting, in the reference's order. */
  public static final List<SinkSetting<?>> ALL =
      List.of(
          BOOTSTRAP_SERVERS,
          TOPIC,
          CLIENT,
          PRODUCER,
          PROGRESS_GROUP,
          TRANSACTION_TIMEOUT,
          API_TIMEOUT,
          DEAD_LETTER_TOPIC,
          RECOVERY_SCAN_DEPTH,
          EXPECTED_DOWNTIME,
          PROGRESS_KEEP_ALIVE,
          MAX_IDLE_PRODUCERS,
          IDLE_PRODUCER_TIMEOUT);
}
