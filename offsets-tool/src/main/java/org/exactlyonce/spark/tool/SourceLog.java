package org.exactlyonce.spark.tool;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.exactlyonce.spark.SinkConfigurationException;

/**
 * The source topics' logs, read with a Kafka admin client: partitions, earliest and end offsets
 * (the end as a {@code read_uncommitted} consumer sees it, which is what the direct stream reads up
 * to by default).
 */
final class SourceLog implements AutoCloseable {
  private static final long TIMEOUT_MS = 30_000;
  private final Admin admin;
  private final String servers;

  SourceLog(String bootstrapServers, Map<String, Object> clientConfig) {
    Map<String, Object> config = new HashMap<>(clientConfig);
    config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    config.put(AdminClientConfig.CLIENT_ID_CONFIG, "exactly-once-offsets");
    this.servers = bootstrapServers;
    this.admin = Admin.create(config);
  }

  /** Every partition of {@code topics}, ordered. */
  List<TopicPartition> partitionsOf(Collection<String> topics) {
    Map<String, TopicDescription> d = get(admin.describeTopics(topics).allTopicNames(), topics);
    List<TopicPartition> out = new java.util.ArrayList<>();
    for (String topic : new TreeSet<>(topics)) {
      d.get(topic).partitions().forEach(p -> out.add(new TopicPartition(topic, p.partition())));
    }
    return out;
  }

  /**
   * The partitions of those of {@code topics} that exist, per topic; a topic that does not exist
   * has no entry.
   */
  Map<String, List<TopicPartition>> existingPartitionsOf(Collection<String> topics) {
    Map<String, List<TopicPartition>> out = new java.util.TreeMap<>();
    admin
        .describeTopics(topics)
        .topicNameValues()
        .forEach(
            (topic, future) -> {
              try {
                TopicDescription d = get(future, List.of(topic));
                List<TopicPartition> tps = new java.util.ArrayList<>();
                d.partitions().forEach(p -> tps.add(new TopicPartition(topic, p.partition())));
                out.put(topic, tps);
              } catch (MissingTopicException e) {
                // absent from the answer: the caller reports it
              }
            });
    return out;
  }

  /**
   * Per partition, the timestamp of its latest record (by timestamp), or -1 where it holds none or
   * the broker does not tell.
   */
  Map<TopicPartition, Long> lastRecordTimes(Collection<TopicPartition> tps) {
    Map<TopicPartition, OffsetSpec> request = new HashMap<>();
    tps.forEach(tp -> request.put(tp, OffsetSpec.maxTimestamp()));
    Map<TopicPartition, Long> out = new HashMap<>();
    try {
      admin
          .listOffsets(request)
          .all()
          .get(TIMEOUT_MS, TimeUnit.MILLISECONDS)
          .forEach((tp, i) -> out.put(tp, i.timestamp()));
    } catch (ExecutionException | TimeoutException e) {
      tps.forEach(tp -> out.put(tp, -1L));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SinkConfigurationException("interrupted while reading the source topics", e);
    }
    return out;
  }

  Map<TopicPartition, Long> earliest(Collection<TopicPartition> tps) {
    return offsets(tps, OffsetSpec.earliest());
  }

  Map<TopicPartition, Long> end(Collection<TopicPartition> tps) {
    return offsets(tps, OffsetSpec.latest());
  }

  /**
   * Per partition, the first offset whose record timestamp is at or after {@code epochMillis}; the
   * end offset where no record is that late.
   */
  Map<TopicPartition, Long> atTime(Collection<TopicPartition> tps, long epochMillis) {
    Map<TopicPartition, Long> at = offsets(tps, OffsetSpec.forTimestamp(epochMillis));
    Map<TopicPartition, Long> end = end(tps);
    Map<TopicPartition, Long> out = new HashMap<>();
    at.forEach((tp, o) -> out.put(tp, o < 0 ? end.get(tp) : o));
    return out;
  }

  private Map<TopicPartition, Long> offsets(Collection<TopicPartition> tps, OffsetSpec spec) {
    Map<TopicPartition, OffsetSpec> request = new HashMap<>();
    tps.forEach(tp -> request.put(tp, spec));
    Map<TopicPartition, ListOffsetsResultInfo> info =
        get(
            admin.listOffsets(request).all(),
            tps.stream().map(TopicPartition::topic).distinct().toList());
    Map<TopicPartition, Long> out = new HashMap<>();
    info.forEach((tp, i) -> out.put(tp, i.offset()));
    return out;
  }

  private <T> T get(org.apache.kafka.common.KafkaFuture<T> future, Collection<String> topics) {
    try {
      return future.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof UnknownTopicOrPartitionException) {
        throw new MissingTopicException(
            "topic(s) "
                + topics
                + " or one of their partitions do not exist on the source cluster at '"
                + servers
                + "': check --bootstrap-servers (the cluster the pipeline reads from)");
      }
      throw new SinkConfigurationException(
          "reading the source topics "
              + topics
              + " at '"
              + servers
              + "' failed: "
              + e.getCause()
              + ". Check --bootstrap-servers and --kafka-config",
          e);
    } catch (TimeoutException e) {
      throw new SinkConfigurationException(
          "the source cluster at '"
              + servers
              + "' did not answer within "
              + TIMEOUT_MS
              + " ms: check --bootstrap-servers and --kafka-config",
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SinkConfigurationException("interrupted while reading the source topics", e);
    }
  }

  /** The committed offsets of consumer group {@code group} (none if it has none or is unknown). */
  Map<TopicPartition, Long> groupOffsets(String group) {
    Map<TopicPartition, Long> out = new HashMap<>();
    groupCall(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata(), group)
        .forEach(
            (tp, om) -> {
              if (om != null) {
                out.put(tp, om.offset());
              }
            });
    return out;
  }

  /**
   * Whether some committed offset of {@code group} was written by the library's Kafka sinks (a
   * progress group: some pipeline's offset store, whatever its name).
   */
  boolean holdsLibraryProgress(String group) {
    return groupCall(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata(), group)
        .values()
        .stream()
        .anyMatch(
            om -> om != null && org.exactlyonce.spark.kafka.ProgressGroups.writtenByTheLibrary(om));
  }

  /** The active members of consumer group {@code group}, as client id @ host; none if unknown. */
  List<String> groupMembers(String group) {
    ConsumerGroupDescription d;
    try {
      d =
          groupCall(
              admin.describeConsumerGroups(List.of(group)).describedGroups().get(group), group);
    } catch (SinkConfigurationException e) {
      if (e.getCause() instanceof ExecutionException x
          && x.getCause() instanceof org.apache.kafka.common.errors.GroupIdNotFoundException) {
        return List.of(); // brokers of the new group protocol: an unknown group has no members
      }
      throw e;
    }
    List<String> out = new java.util.ArrayList<>();
    d.members().forEach(m -> out.add(m.clientId() + "@" + m.host()));
    return out;
  }

  /**
   * Commits {@code offsets} for consumer group {@code group}, each with {@code metadata}; Kafka
   * refuses it while the group has active members.
   */
  void alterGroupOffsets(String group, Map<TopicPartition, Long> offsets, String metadata) {
    Map<TopicPartition, OffsetAndMetadata> request = new HashMap<>();
    offsets.forEach((tp, o) -> request.put(tp, new OffsetAndMetadata(o, metadata)));
    groupCall(admin.alterConsumerGroupOffsets(group, request).all(), group);
  }

  private <T> T groupCall(org.apache.kafka.common.KafkaFuture<T> future, String group) {
    try {
      return future.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw new SinkConfigurationException(
          "consumer group '"
              + group
              + "' at '"
              + servers
              + "': "
              + e.getCause()
              + ". Check the group's name, --bootstrap-servers and --kafka-config (the principal"
              + " needs DESCRIBE and READ on the group)",
          e);
    } catch (TimeoutException e) {
      throw new SinkConfigurationException(
          "Kafka at '"
              + servers
              + "' did not answer within "
              + TIMEOUT_MS
              + " ms: check --bootstrap-servers and --kafka-config",
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SinkConfigurationException("interrupted while reading group " + group, e);
    }
  }

  /** A topic or partition the source cluster does not have. */
  static final class MissingTopicException extends SinkConfigurationException {
    private static final long serialVersionUID = 1L;

    MissingTopicException(String message) {
      super(message);
    }
  }

  @Override
  public void close() {
    admin.close();
  }
}
