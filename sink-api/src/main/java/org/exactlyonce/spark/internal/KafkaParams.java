package org.exactlyonce.spark.internal;

import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.exactlyonce.spark.SinkConfigurationException;

/** Checks and completes the consumer settings of a direct stream whose offsets a sink owns. */
public final class KafkaParams {
  private KafkaParams() {}

  /**
   * Returns a copy of {@code userParams} with the settings exactly-once needs. A user's value that
   * contradicts them is an error, never silently replaced.
   */
  public static Map<String, Object> forDirectStream(
      Map<String, Object> userParams, String defaultGroupId) {
    Map<String, Object> params = new HashMap<>(userParams);
    if (params.get(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG) == null) {
      throw new SinkConfigurationException(
          "kafka parameter 'bootstrap.servers' is missing: set it to the brokers to read from,"
              + " for example \"localhost:9092\"");
    }
    Object autoCommit = params.get(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG);
    if (autoCommit != null && Boolean.parseBoolean(autoCommit.toString())) {
      throw new SinkConfigurationException(
          "kafka parameter 'enable.auto.commit' is true: the sink owns the offsets, and Kafka's"
              + " auto-commit would mark records consumed before they are written. Remove it or"
              + " set it to false");
    }
    params.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    Object reset = params.get(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG);
    if (reset != null && !"earliest".equals(reset.toString())) {
      throw new SinkConfigurationException(
          "kafka parameter 'auto.offset.reset' is '"
              + reset
              + "': it only applies to partitions added to a topic while the job runs, and any"
              + " value but 'earliest' would skip their first records. Remove it (where a new"
              + " pipeline starts is chosen with StartPosition)");
    }
    params.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    params.putIfAbsent(ConsumerConfig.GROUP_ID_CONFIG, defaultGroupId);
    // Never deliver aborted records; a topic without transactions reads the same either way.
    params.putIfAbsent(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    return params;
  }

  /** Settings for the driver's own short-lived consumer that looks up partitions and offsets. */
  public static Map<String, Object> forMetadataConsumer(Map<String, Object> streamParams) {
    Map<String, Object> params = new HashMap<>(streamParams);
    params.put(
        ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG,
        "org.apache.kafka.common.serialization.ByteArrayDeserializer");
    params.put(
        ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
        "org.apache.kafka.common.serialization.ByteArrayDeserializer");
    params.putIfAbsent(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
    return params;
  }
}
