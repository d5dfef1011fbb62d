package org.exactlyonce.spark.tool;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
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

  /**
   * Open transactions of the pipeline's transactional ids, and idle partitions whose stored offset
   * the broker may soon expire (the progress group never has members, so each offset is kept {@code
   * offsets.retention.minutes} after its last commit only).
   */
  @Override
  public List<Finding> diagnose(
      PipelineState state,
      Map<TopicPartition, Long> end,
      Map<TopicPartition, Long> lastRecordMillis,
      Duration idleFor) {
    List<Finding> out = new ArrayList<>(openTransactions(state));
    out.addAll(expiringOffsets(state, end, lastRecordMillis));
    return out;
  }

  /**
   * The transactional ids the Kafka sink uses for {@code pipeline}: {@code eos-<pipeline>-:<topic>:
   * <partition>} per source partition and {@code eos-<pipeline>-:epoch}, all under the prefix
   * {@code eos-<pipeline>-:} (':' occurs in no pipeline id or topic name, so the prefix is the
   * pipeline's alone); and the ids of versions before issue 17, {@code
   * eos-<pipeline>-<topic>-<partition>}, matched exactly for the stored partitions.
   */
  private static boolean ofPipeline(String id, String pipeline, List<PipelineState.Stored> stored) {
    if (id.startsWith("eos-" + pipeline + "-:")) {
      return true;
    }
    return stored.stream()
        .anyMatch(
            s -> id.equals("eos-" + pipeline + "-" + s.tp().topic() + "-" + s.tp().partition()));
  }

  private List<Finding> openTransactions(PipelineState state) {
    String pipeline = state.pipeline();
    List<String> ids = new ArrayList<>();
    try {
      for (TransactionListing l :
          admin
              .listTransactions(
                  new ListTransactionsOptions()
                      .filterStates(
                          List.of(
                              TransactionState.ONGOING,
                              TransactionState.PREPARE_COMMIT,
                              TransactionState.PREPARE_ABORT,
                              TransactionState.PREPARE_EPOCH_FENCE)))
              .all()
              .get(TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
        if (ofPipeline(l.transactionalId(), pipeline, state.partitions())) {
          ids.add(l.transactionalId());
        }
      }
      if (ids.isEmpty()) {
        return List.of();
      }
      Map<String, TransactionDescription> described =
          admin.describeTransactions(ids).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
      long now = System.currentTimeMillis();
      List<Finding> out = new ArrayList<>();
      for (String id : new java.util.TreeSet<>(ids)) {
        TransactionDescription d = described.get(id);
        if (d == null) {
          continue;
        }
        String started = "";
        String ends = "when its timeout passes";
        if (d.transactionStartTimeMs().isPresent()) {
          long start = d.transactionStartTimeMs().getAsLong();
          started =
              ", started "
                  + java.time.Instant.ofEpochMilli(start)
                  + " ("
                  + Math.max(0, now - start) / 1000
                  + " s ago)";
          ends = "at " + java.time.Instant.ofEpochMilli(start + d.transactionTimeoutMs());
        }
        out.add(
            Finding.of(
                Finding.Severity.WARN,
                sourcePartition(id, pipeline),
                "open Kafka transaction of transactional id '"
                    + id
                    + "' (state "
                    + d.state()
                    + started
                    + ", timeout "
                    + d.transactionTimeoutMs()
                    + " ms, on "
                    + d.topicPartitions()
                    + "): read_committed readers of those partitions wait behind it until it"
                    + " ends",
                "none if a driver of the pipeline still runs (its next commit ends it); otherwise"
                    + " the coordinator aborts it "
                    + ends
                    + ", or the pipeline's next start fences the id and aborts it. Inspect it:"
                    + " kafka-transactions.sh --bootstrap-server "
                    + servers
                    + " describe --transactional-id "
                    + id));
      }
      return out;
    } catch (ExecutionException e) {
      return List.of(
          Finding.of(
              Finding.Severity.INFO,
              null,
              "the open transactions at '"
                  + servers
                  + "' cannot be listed ("
                  + e.getCause()
                  + "), so lingering transactions of the pipeline were not looked for",
              "allow the principal DESCRIBE on the pipeline's transactional ids (prefix eos-"
                  + pipeline
                  + "-)"));
    } catch (java.util.concurrent.TimeoutException e) {
      throw new SinkConfigurationException(
          "Kafka at '" + servers + "' did not answer within " + TIMEOUT_MS + " ms", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SinkConfigurationException("interrupted while listing transactions", e);
    }
  }

  /** The source partition a transactional id of the pipeline writes for, null for the epoch's. */
  private static TopicPartition sourcePartition(String id, String pipeline) {
    String prefix = "eos-" + pipeline + "-:";
    if (!id.startsWith(prefix)) {
      return null;
    }
    String rest = id.substring(prefix.length());
    int colon = rest.lastIndexOf(':');
    try {
      return colon < 1
          ? null
          : new TopicPartition(
              rest.substring(0, colon), Integer.parseInt(rest.substring(colon + 1)));
    } catch (NumberFormatException e) {
      return null;
    }
  }

  /**
   * Idle partitions (stored offset at the log end, latest record older than half the retention): no
   * batch commits them, so the broker deletes their offset {@code offsets.retention.minutes} after
   * the last commit, which came after their latest record; the next start then reads them from the
   * job's start position, by default their earliest retained record.
   */
  private List<Finding> expiringOffsets(
      PipelineState state, Map<TopicPartition, Long> end, Map<TopicPartition, Long> lastRecord) {
    String group = group(state.pipeline());
    try {
      ConsumerGroupDescription g =
          admin
              .describeConsumerGroups(List.of(group))
              .describedGroups()
              .get(group)
              .get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
      if (!g.members().isEmpty()) {
        return List.of();
      }
    } catch (ExecutionException e) {
      return List.of(); // not readable: the group's offsets were, so the check is only skipped
    } catch (java.util.concurrent.TimeoutException e) {
      throw new SinkConfigurationException(
          "Kafka at '" + servers + "' did not answer within " + TIMEOUT_MS + " ms", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SinkConfigurationException("interrupted while describing group " + group, e);
    }
    long minutes = DEFAULT_OFFSETS_RETENTION_MINUTES;
    String source = " (the default; the broker's setting could not be read)";
    Long configured = offsetsRetentionMinutes();
    if (configured != null) {
      minutes = configured;
      source = " (the broker's offsets.retention.minutes)";
    }
    long retentionMs = minutes * 60_000;
    long now = System.currentTimeMillis();
    List<Finding> out = new ArrayList<>();
    for (PipelineState.Stored s : state.partitions()) {
      Long e = end.get(s.tp());
      Long last = lastRecord.get(s.tp());
      if (e == null || last == null || last < 0 || s.offset() != e) {
        continue;
      }
      if (now - last < retentionMs / 2) {
        continue;
      }
      java.time.Instant expires = java.time.Instant.ofEpochMilli(last + retentionMs);
      out.add(
          Finding.of(
              Finding.Severity.WARN,
              s.tp(),
              "idle since its latest record at "
                  + java.time.Instant.ofEpochMilli(last)
                  + ": no batch commits it, and group '"
                  + group
                  + "' has no members, so the broker deletes its stored offset "
                  + minutes
                  + " min after its last commit"
                  + source
                  + ", from "
                  + expires
                  + " on; the next start then reads it from the job's start position (earliest:"
                  + " its retained records again)",
              "raise offsets.retention.minutes in the brokers' server.properties above the"
                  + " partition's idle time, or start the job with StartPosition.latest() for"
                  + " partitions without stored offsets"));
    }
    return out;
  }

  /** Kafka's default {@code offsets.retention.minutes} (7 days). */
  private static final long DEFAULT_OFFSETS_RETENTION_MINUTES = 10_080;

  /** The broker's {@code offsets.retention.minutes}, null if it cannot be read. */
  private Long offsetsRetentionMinutes() {
    try {
      Collection<Node> nodes =
          admin.describeCluster().nodes().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
      if (nodes.isEmpty()) {
        return null;
      }
      ConfigResource broker =
          new ConfigResource(
              ConfigResource.Type.BROKER, Integer.toString(nodes.iterator().next().id()));
      Config c =
          admin
              .describeConfigs(List.of(broker))
              .all()
              .get(TIMEOUT_MS, TimeUnit.MILLISECONDS)
              .get(broker);
      ConfigEntry entry = c == null ? null : c.get("offsets.retention.minutes");
      return entry == null || entry.value() == null ? null : Long.parseLong(entry.value());
    } catch (ExecutionException | java.util.concurrent.TimeoutException | RuntimeException e) {
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    }
  }

  @Override
  public void close() {
    admin.close();
  }
}
