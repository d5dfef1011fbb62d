package org.exactlyonce.spark.structured;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;

/**
 * The options of Spark's Kafka source ({@code spark.readStream().format("kafka")}) as a user gives
 * them, checked before the query starts: what the adapter needs, and what it must refuse because
 * the sink's offset store, not the query, decides where reading starts.
 */
final class KafkaSourceOptions {
  /** Options that set where a query starts: the sink's stored offsets do that. */
  private static final List<String> START_OPTIONS =
      List.of(
          "startingoffsets",
          "startingtimestamp",
          "startingoffsetsbytimestamp",
          "startingoffsetsbytimestampstrategy");

  private final Map<String, String> options;
  private final List<String> topics;

  private KafkaSourceOptions(Map<String, String> options, List<String> topics) {
    this.options = Map.copyOf(options);
    this.topics = List.copyOf(topics);
  }

  /**
   * Checks {@code options}.
   *
   * @throws SinkConfigurationException naming the option and the fix
   */
  static KafkaSourceOptions of(Map<String, String> options) {
    if (options == null || options.isEmpty()) {
      throw new SinkConfigurationException(
          "no Kafka source options given: pass at least kafka.bootstrap.servers and subscribe,"
              + " as for spark.readStream().format(\"kafka\")");
    }
    Map<String, String> lower = new HashMap<>();
    options.forEach((k, v) -> lower.put(k.toLowerCase(Locale.ROOT), v));
    for (String start : START_OPTIONS) {
      if (lower.containsKey(start)) {
        throw new SinkConfigurationException(
            "Kafka source option "
                + original(options, start)
                + " is set: where an exactly-once query starts is decided by the sink's stored"
                + " offsets (and, on a pipeline's first start, by"
                + " ExactlyOnceForeachBatch...startPosition(...)). Remove the option.");
      }
    }
    if ("false".equalsIgnoreCase(lower.get("failondataloss"))) {
      throw new SinkConfigurationException(
          "Kafka source option failOnDataLoss=false: Spark would then skip offsets that are no"
              + " longer in Kafka without failing, and records would be lost silently. Remove the"
              + " option (the default is true).");
    }
    for (String other : List.of("assign", "subscribepattern")) {
      if (lower.containsKey(other)) {
        throw new SinkConfigurationException(
            "Kafka source option "
                + original(options, other)
                + " is not supported by the exactly-once adapter yet: name the topics with"
                + " subscribe (a comma-separated list).");
      }
    }
    if (blank(lower.get("kafka.bootstrap.servers"))) {
      throw new SinkConfigurationException(
          "Kafka source option kafka.bootstrap.servers is missing: name the brokers to read from");
    }
    String subscribe = lower.get("subscribe");
    if (blank(subscribe)) {
      throw new SinkConfigurationException(
          "Kafka source option subscribe is missing: name the topics to read (a comma-separated"
              + " list)");
    }
    List<String> topics =
        Arrays.stream(subscribe.split(",")).map(String::trim).filter(t -> !t.isEmpty()).toList();
    return new KafkaSourceOptions(options, topics);
  }

  private static boolean blank(String s) {
    return s == null || s.isBlank();
  }

  private static String original(Map<String, String> options, String lower) {
    return options.keySet().stream()
        .filter(k -> k.toLowerCase(Locale.ROOT).equals(lower))
        .findFirst()
        .orElse(lower);
  }

  /** Whether option {@code name} is set (option names are case-insensitive, as in Spark). */
  boolean has(String name) {
    return options.keySet().stream().anyMatch(k -> k.equalsIgnoreCase(name));
  }

  /** The options as given, for the source. */
  Map<String, String> options() {
    return options;
  }

  List<String> topics() {
    return topics;
  }

  /**
   * The consumer settings among the options ({@code kafka.}-prefixed, the prefix removed), for the
   * driver's own look-ups of partitions and offsets.
   */
  Map<String, Object> consumerParams() {
    Map<String, Object> params = new HashMap<>();
    options.forEach(
        (k, v) -> {
          if (k.toLowerCase(Locale.ROOT).startsWith("kafka.")) {
            params.put(k.substring("kafka.".length()), v);
          }
        });
    return params;
  }

  /**
   * {@code offsets} as the source's {@code startingOffsets} JSON: {@code {"topic":{"0":12,...}}}.
   * Every partition of the topics must be in it (Spark refuses a partial list).
   */
  static String startingOffsetsJson(Map<TopicPartition, Long> offsets) {
    Map<String, Map<Integer, Long>> byTopic = new TreeMap<>();
    offsets.forEach(
        (tp, o) ->
            byTopic.computeIfAbsent(tp.topic(), t -> new TreeMap<>()).put(tp.partition(), o));
    List<String> topics = new ArrayList<>();
    byTopic.forEach(
        (topic, parts) -> {
          List<String> entries = new ArrayList<>();
          parts.forEach((p, o) -> entries.add("\"" + p + "\":" + o));
          topics.add(quote(topic) + ":{" + String.join(",", entries) + "}");
        });
    return "{" + String.join(",", topics) + "}";
  }

  /** A JSON string; Kafka topic names hold only letters, digits, '.', '_' and '-'. */
  private static String quote(String s) {
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }
}
