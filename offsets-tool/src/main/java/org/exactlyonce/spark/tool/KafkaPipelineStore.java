package org.exactlyonce.spark.tool;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ProgressGroups;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;

/**
 * A Kafka sink's progress group (one committed offset per source partition, stamped with the writer
 * epoch) and the epoch group beside it. Kafka records no commit times that a client can read, so
 * whether a driver still holds the pipeline cannot be told from the store.
 */
final class KafkaPipelineStore implements PipelineStore {
  private static final long TIMEOUT_MS = 30_000;

  private final String servers;
  private final Map<String, String> clientConfig;
  private final String progressGroup;
  private final String outputTopic;
  private final boolean transactional;
  private final Admin admin;

  /**
   * @param progressGroup the sink's progress group, null for the default of the pipeline
   * @param outputTopic the sink's output topic (where its epoch marker lives), needed to rewind
   */
  KafkaPipelineStore(
      String servers,
      Map<String, String> clientConfig,
      String progressGroup,
      String outputTopic,
      boolean transactional) {
    this.servers = servers;
    this.clientConfig = Map.copyOf(clientConfig);
    this.progressGroup = progressGroup;
    this.outputTopic = outputTopic;
    this.transactional = transactional;
    Map<String, Object> config = new HashMap<>(clientConfig);
    config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
    config.put(AdminClientConfig.CLIENT_ID_CONFIG, "exactly-once-offsets");
    this.admin = Admin.create(config);
  }

  private String group(String pipeline) {
    if (progressGroup != null) {
      return progressGroup;
    }
    if (pipeline == null) {
      throw new SinkConfigurationException(
          "a Kafka progress group holds one pipeline: name it with --pipeline (or the group with"
              + " --progress-group)");
    }
    return ProgressGroups.defaultProgressGroup(pipeline);
  }

  @Override
  public String describe() {
    return "Kafka progress group at " + servers;
  }

  @Override
  public List<PipelineState> read(String pipeline) {
    String group = group(pipeline);
    Map<TopicPartition, OffsetAndMetadata> progress = committed(group);
    long epoch =
        committed(ProgressGroups.epochGroup(group)).values().stream()
            .mapToLong(ProgressGroups::writerEpoch)
            .max()
            .orElse(0);
    if (progress.isEmpty() && epoch == 0) {
      return List.of();
    }
    List<PipelineState.Stored> stored = new ArrayList<>();
    progress.forEach(
        (tp, om) ->
            stored.add(
                new PipelineState.Stored(
                    tp,
                    om.offset(),
                    ProgressGroups.writerEpoch(om),
                    null,
                    ProgressGroups.writtenByTheLibrary(om)
                        ? null
                        : "set outside the library (metadata '"
                            + om.metadata()
                            + "'): the next start refuses it until reset through this tool")));
    stored.sort(
        Comparator.comparing((PipelineState.Stored s) -> s.tp().topic())
            .thenComparing(s -> s.tp().partition()));
    return List.of(
        new PipelineState(
            pipeline == null ? group : pipeline, epoch == 0 ? null : epoch, null, null, stored));
  }

  private Map<TopicPartition, OffsetAndMetadata> committed(String group) {
    try {
      Map<TopicPartition, OffsetAndMetadata> out = new HashMap<>();
      admin
          .listConsumerGroupOffsets(group)
          .partitionsToOffsetAndMetadata()
          .get(TIMEOUT_MS, TimeUnit.MILLISECONDS)
          .forEach(
              (tp, om) -> {
                if (om != null) {
                  out.put(tp, om);
                }
              });
      return out;
    } catch (ExecutionException e) {
      throw new SinkConfigurationException(
          "reading consumer group '"
              + group
              + "' at '"
              + servers
              + "' failed: "
              + e.getCause()
              + ". Check --bootstrap-servers, --progress-group and --kafka-config",
          e);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new SinkConfigurationException(
          "Kafka at '" + servers + "' did not answer within " + TIMEOUT_MS + " ms", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SinkConfigurationException("interrupted while reading group " + group, e);
    }
  }

  @Override
  public ExactlyOnceSink rewindSink(String pipeline) {
    if (outputTopic == null) {
      throw new SinkConfigurationException(
          "resetting a Kafka sink's offsets needs its output topic: pass --output-topic (the sink"
              + " keeps its writer epoch under partition 0 of that topic)");
    }
    KafkaSink.Builder<String, ? extends ExactlyOnceSink> b =
        transactional
            ? KafkaSink.<String>transactional(pipeline)
            : KafkaSink.<String>idempotent(pipeline);
    b.bootstrapServers(servers).topic(outputTopic).value(ToBytes.utf8(s -> s));
    if (progressGroup != null) {
      b.progressGroup(progressGroup);
    }
    clientConfig.forEach(b::clientProperty);
    return b.build();
  }

  @Override
  public Optional<String> heldBecause(String pipeline, Duration idleFor) {
    return Optional.of(
        "a Kafka progress group records no commit times, so the tool cannot tell whether a driver"
            + " still runs pipeline '"
            + pipeline
            + "'");
  }

  @Override
  public void close() {
    admin.close();
  }
}
