package org.exactlyonce.spark.internal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.internals.Topic;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.spi.OffsetsToolCommands;

/** Looks up the partitions of the subscribed topics and the offsets Kafka holds for them. */
public final class StartOffsets implements AutoCloseable {
  private final KafkaConsumer<byte[], byte[]> consumer;
  private final Object servers;
  private final Subscription subscription;
  private List<TopicPartition> partitions;
  private Map<TopicPartition, Long> beginning;
  private Map<TopicPartition, Long> end;

  /** The stream's {@code bootstrap.servers}, for the commands errors name. */
  Object servers() {
    return servers;
  }

  /** The partitions of {@code topics}, each of which must exist. */
  public StartOffsets(Map<String, Object> streamParams, Collection<String> topics) {
    this(streamParams, subscribed(List.copyOf(topics)));
  }

  /**
   * The partitions of every topic {@code pattern} matches, internal topics left out, at least one
   * topic: as Spark's Kafka source matches (a topic matches if the pattern is found in its name,
   * or, with {@code wholeName}, if it matches the whole name, as Kafka's consumer does and Spark's
   * deprecated offset fetching with it).
   */
  public static StartOffsets matching(
      Map<String, Object> streamParams, Pattern pattern, boolean wholeName) {
    return new StartOffsets(streamParams, matched(pattern, wholeName));
  }

  /** Exactly {@code partitions} (a manual assignment), each of which must exist. */
  public static StartOffsets assigned(
      Map<String, Object> streamParams, Collection<TopicPartition> partitions) {
    return new StartOffsets(streamParams, assignment(List.copyOf(partitions)));
  }

  private StartOffsets(Map<String, Object> streamParams, Subscription subscription) {
    Map<String, Object> params = KafkaParams.forMetadataConsumer(streamParams);
    this.servers = params.get("bootstrap.servers");
    this.subscription = subscription;
    this.consumer = new KafkaConsumer<>(params);
    try {
      refresh();
    } catch (RuntimeException e) {
      consumer.close();
      throw e;
    }
  }

  /**
   * Reads the partitions and their earliest and end offsets again. The start sequence calls it
   * after every writer epoch is taken: an older driver may commit until then, and a stored offset
   * it committed must not look past an end read before.
   *
   * @throws SinkConfigurationException if a topic does not exist or Kafka does not answer
   */
  public void refresh() {
    try {
      List<TopicPartition> found = new ArrayList<>(subscription.partitions(consumer, servers));
      found.sort(
          java.util.Comparator.comparing(TopicPartition::topic)
              .thenComparingInt(TopicPartition::partition));
      partitions = List.copyOf(found);
      beginning = consumer.beginningOffsets(partitions);
      end = consumer.endOffsets(partitions);
    } catch (TimeoutException e) {
      throw new SinkConfigurationException(
          "Kafka at bootstrap.servers=" + servers + " did not answer: check the address", e);
    }
  }

  /** How the stream names what it reads. */
  private interface Subscription {
    List<TopicPartition> partitions(KafkaConsumer<byte[], byte[]> consumer, Object servers);

    /** Whether the stream reads topics as they come to exist (a pattern), not named ones. */
    default boolean discoversTopics() {
      return false;
    }
  }

  /**
   * Whether the stream reads the topics of a pattern, which come and go, rather than named topics
   * or partitions. Then a topic the pipeline never read is new to it, not a first start.
   */
  public boolean discoversTopics() {
    return subscription.discoversTopics();
  }

  private static List<PartitionInfo> existing(
      KafkaConsumer<byte[], byte[]> consumer, String topic, Object servers) {
    List<PartitionInfo> infos = consumer.partitionsFor(topic);
    if (infos == null || infos.isEmpty()) {
      throw new SinkConfigurationException(
          "topic '" + topic + "' does not exist at " + servers + ": create it first");
    }
    return infos;
  }

  private static Subscription subscribed(List<String> topics) {
    return (consumer, servers) -> {
      List<TopicPartition> found = new ArrayList<>();
      for (String topic : topics) {
        existing(consumer, topic, servers)
            .forEach(i -> found.add(new TopicPartition(i.topic(), i.partition())));
      }
      return found;
    };
  }

  private static Subscription matched(Pattern pattern, boolean wholeName) {
    return new Subscription() {
      @Override
      public List<TopicPartition> partitions(
          KafkaConsumer<byte[], byte[]> consumer, Object servers) {
        return matchedPartitions(consumer, servers, pattern, wholeName);
      }

      @Override
      public boolean discoversTopics() {
        return true;
      }
    };
  }

  private static List<TopicPartition> matchedPartitions(
      KafkaConsumer<byte[], byte[]> consumer, Object servers, Pattern pattern, boolean wholeName) {
    List<TopicPartition> found = new ArrayList<>();
    consumer
        .listTopics()
        .forEach(
            (topic, infos) -> {
              var m = pattern.matcher(topic);
              if (!Topic.isInternal(topic) && (wholeName ? m.matches() : m.find())) {
                infos.forEach(i -> found.add(new TopicPartition(i.topic(), i.partition())));
              }
            });
    if (found.isEmpty()) {
      throw new SinkConfigurationException(
          "no topic at "
              + servers
              + " matches the pattern '"
              + pattern
              + "': create a topic first, or correct the pattern");
    }
    return found;
  }

  private static Subscription assignment(List<TopicPartition> partitions) {
    return (consumer, servers) -> {
      Map<String, List<PartitionInfo>> byTopic = new HashMap<>();
      for (TopicPartition tp : partitions) {
        List<PartitionInfo> infos =
            byTopic.computeIfAbsent(tp.topic(), t -> existing(consumer, t, servers));
        if (infos.stream().noneMatch(i -> i.partition() == tp.partition())) {
          throw new SinkConfigurationException(
              "partition "
                  + tp
                  + " is assigned but does not exist at "
                  + servers
                  + " (topic '"
                  + tp.topic()
                  + "' has "
                  + infos.size()
                  + " partitions): assign existing partitions, or add partitions first");
        }
      }
      return partitions;
    };
  }

  /** The partitions of the subscribed topics as they are now. */
  public List<TopicPartition> partitions() {
    return partitions;
  }

  /**
   * Resolves {@code position} to a concrete offset for each partition in {@code missing}.
   *
   * @throws SinkConfigurationException if an explicit position lacks a partition
   */
  public Map<TopicPartition, Long> resolve(
      StartPosition position, Collection<TopicPartition> missing) {
    Map<TopicPartition, Long> out = new HashMap<>();
    for (TopicPartition tp : missing) {
      switch (position.kind()) {
        case EARLIEST -> out.put(tp, beginning.get(tp));
        case LATEST -> out.put(tp, end.get(tp));
        case EXPLICIT -> {
          Long o = position.offsets().get(tp);
          if (o == null) {
            throw new SinkConfigurationException(
                "the explicit start position has no offset for "
                    + tp
                    + ", which has no stored offset either: add it to StartPosition.offsets(...)");
          }
          out.put(tp, o);
        }
        default -> throw new IllegalStateException(position.kind().name());
      }
    }
    return out;
  }

  /**
   * Checks stored offsets against what Kafka holds.
   *
   * @throws OffsetMismatchException if records between a stored offset and Kafka's earliest were
   *     deleted, or a stored offset lies past the end of its partition
   */
  public void checkStored(
      PipelineId pipeline, Map<TopicPartition, Long> stored, String toolResetOptions) {
    List<String> problems = new ArrayList<>();
    Map<TopicPartition, Long> toLogStart = new HashMap<>();
    for (TopicPartition tp : partitions) {
      Long s = stored.get(tp);
      if (s == null) {
        continue;
      }
      if (s < beginning.get(tp)) {
        problems.add(
            tp
                + ": stored offset "
                + s
                + " is before Kafka's earliest "
                + beginning.get(tp)
                + " (retention deleted records that were never written: they are lost)");
        toLogStart.put(tp, beginning.get(tp));
      } else if (s > end.get(tp)) {
        problems.add(
            tp
                + ": stored offset "
                + s
                + " is past the partition's end "
                + end.get(tp)
                + " (was the topic recreated, or do the offsets belong to another cluster?)");
        toLogStart.put(tp, beginning.get(tp));
      }
    }
    if (!problems.isEmpty()) {
      throw new OffsetMismatchException(
          "pipeline '"
              + pipeline
              + "' cannot start: "
              + String.join("; ", problems)
              + ". Nothing was written. Inspect the stored offsets; to accept the loss, reset"
              + " them to offsets Kafka holds."
              + OffsetsToolCommands.resetSentence(
                  "For example to the log start (a recreated topic's records all processed)",
                  pipeline,
                  servers,
                  toolResetOptions,
                  toLogStart),
          List.of());
    }
  }

  @Override
  public void close() {
    consumer.close();
  }
}
