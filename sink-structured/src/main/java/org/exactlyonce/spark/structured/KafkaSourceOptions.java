package org.exactlyonce.spark.structured;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.internal.StartOffsets;

/**
 * The options of Spark's Kafka source ({@code spark.readStream().format("kafka")}) as a user gives
 * them, checked before the query starts: what the adapter needs, and what it must refuse because
 * the sink's offset store, not the query, decides where reading starts.
 */
final class KafkaSourceOptions {
  /** The options naming what the source reads, in lower case: Spark takes exactly one. */
  private static final List<String> SUBSCRIPTIONS =
      List.of("subscribe", "subscribepattern", "assign");

  /** Options that set where a query starts: the sink's stored offsets do that. */
  private static final List<String> START_OPTIONS =
      List.of(
          "startingoffsets",
          "startingtimestamp",
          "startingoffsetsbytimestamp",
          "startingoffsetsbytimestampstrategy");

  private final Map<String, String> options;
  // Exactly one of the three, as Spark's source takes exactly one of subscribe, subscribePattern
  // and assign.
  private final List<String> topics;
  private final Pattern pattern;
  private final List<TopicPartition> assigned;

  private KafkaSourceOptions(
      Map<String, String> options,
      List<String> topics,
      Pattern pattern,
      List<TopicPartition> assigned) {
    this.options = Map.copyOf(options);
    this.topics = topics;
    this.pattern = pattern;
    this.assigned = assigned;
  }

  /**
   * Checks {@code options}.
   *
   * @throws SinkConfigurationException naming the option and the fix
   */
  static KafkaSourceOptions of(Map<String, String> options) {
    if (options == null || options.isEmpty()) {
      throw new SinkConfigurationException(
          "no Kafka source options given: pass at least kafka.bootstrap.servers and subscribe"
              + " (or subscribePattern, or assign),"
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
    if (blank(lower.get("kafka.bootstrap.servers"))) {
      throw new SinkConfigurationException(
          "Kafka source option kafka.bootstrap.servers is missing: name the brokers to read from");
    }
    List<String> given =
        SUBSCRIPTIONS.stream().filter(lower::containsKey).map(o -> original(options, o)).toList();
    if (given.size() > 1) {
      throw new SinkConfigurationException(
          "Kafka source options "
              + String.join(" and ", given)
              + " are both set: name what to read with exactly one of subscribe, subscribePattern"
              + " and assign, as for Spark's Kafka source");
    }
    if (given.isEmpty()) {
      throw new SinkConfigurationException(
          "Kafka source option subscribe is missing: name the topics to read (a comma-separated"
              + " list), or use subscribePattern or assign");
    }
    String value = lower.get(given.get(0).toLowerCase(Locale.ROOT));
    if (blank(value)) {
      throw new SinkConfigurationException(
          "Kafka source option " + given.get(0) + " is empty: name what to read");
    }
    return switch (given.get(0).toLowerCase(Locale.ROOT)) {
      case "subscribe" ->
          new KafkaSourceOptions(
              options,
              Arrays.stream(value.split(",")).map(String::trim).filter(t -> !t.isEmpty()).toList(),
              null,
              null);
      case "subscribepattern" -> new KafkaSourceOptions(options, null, pattern(value), null);
      default -> new KafkaSourceOptions(options, null, null, assignment(value));
    };
  }

  private static Pattern pattern(String value) {
    try {
      return Pattern.compile(value.trim());
    } catch (PatternSyntaxException e) {
      throw new SinkConfigurationException(
          "Kafka source option subscribePattern '"
              + value
              + "' is not a Java regular expression: "
              + e.getDescription()
              + ". Correct the pattern",
          e);
    }
  }

  /** Spark's assign JSON, {@code {"topicA":[0,1],"topicB":[2,4]}}. */
  private static List<TopicPartition> assignment(String json) {
    Map<String, List<Integer>> byTopic;
    try {
      byTopic = new ObjectMapper().readValue(json, new TypeReference<>() {});
    } catch (Exception e) {
      throw notAnAssignment(json, e);
    }
    List<TopicPartition> partitions = new ArrayList<>();
    if (byTopic != null) {
      byTopic.forEach(
          (topic, ps) -> {
            if (ps != null) {
              ps.forEach(p -> partitions.add(new TopicPartition(topic, p)));
            }
          });
    }
    if (partitions.isEmpty() || partitions.stream().anyMatch(tp -> tp.partition() < 0)) {
      throw notAnAssignment(json, null);
    }
    return List.copyOf(partitions);
  }

  private static SinkConfigurationException notAnAssignment(String json, Exception cause) {
    return new SinkConfigurationException(
        "Kafka source option assign '"
            + json
            + "' is not JSON of topics and partitions, like {\"clicks\":[0,1],\"views\":[2]}:"
            + " correct it",
        cause);
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

  /** The topics of {@code subscribe}; null for the other two. */
  List<String> topics() {
    return topics;
  }

  /** The partitions of {@code assign}; null for the other two. */
  List<TopicPartition> assigned() {
    return assigned;
  }

  /**
   * A look-up of the partitions the source reads, as it names them, and of their offsets. {@code
   * wholeName}: a pattern matches a topic's whole name, as with Spark's deprecated offset fetching
   * (Kafka's consumer), rather than anywhere in it (Spark's default, through an admin client).
   */
  StartOffsets startOffsets(boolean wholeName) {
    if (pattern != null) {
      return StartOffsets.matching(consumerParams(), pattern, wholeName);
    }
    if (assigned != null) {
      return StartOffsets.assigned(consumerParams(), assigned);
    }
    return new StartOffsets(consumerParams(), topics);
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
