package org.exactlyonce.spark.kafka.internal;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.kafka.ToBytes;

/**
 * The validated, immutable configuration of a Kafka sink, shipped to executors.
 *
 * @param clientConfig settings for every client (security, for example), producer and admin
 * @param producerConfig producer tuning (linger, batch size, compression)
 * @param key the output key, or null for unkeyed outputs
 * @param deadLetterTopic the topic of dead letters, or null to stop on a bad record
 * @param recoveryScanDepth how many records at the end of each output partition are read to recover
 *     lost progress
 * @param expectedDowntimeMs the longest the pipeline is expected to stay stopped
 * @param keepAliveMs how often the driver re-commits the progress offsets of idle partitions
 * @param maxIdleProducers how many idle transactional producers of this pipeline one JVM keeps
 * @param idleProducerMs how long an idle transactional producer is kept before it is closed
 */
public record KafkaSpec<R>(
    PipelineId pipelineId,
    boolean transactional,
    String bootstrapServers,
    Map<String, String> clientConfig,
    Map<String, String> producerConfig,
    String topic,
    ToBytes<? super R> key,
    ToBytes<? super R> value,
    String progressGroup,
    long transactionTimeoutMs,
    long apiTimeoutMs,
    String deadLetterTopic,
    long recoveryScanDepth,
    long expectedDowntimeMs,
    long keepAliveMs,
    int maxIdleProducers,
    long idleProducerMs)
    implements Serializable {

  /**
   * Names the pipeline, the brokers and the topics only: client settings may hold credentials
   * ({@code sasl.jaas.config}, {@code ssl.keystore.password}) and never appear in logs or errors.
   */
  @Override
  public String toString() {
    return "KafkaSpec[pipeline="
        + pipelineId
        + ", transactional="
        + transactional
        + ", bootstrapServers="
        + bootstrapServers
        + ", topic="
        + topic
        + ", progressGroup="
        + progressGroup
        + ", deadLetterTopic="
        + deadLetterTopic
        + ", transactionTimeoutMs="
        + transactionTimeoutMs
        + ", apiTimeoutMs="
        + apiTimeoutMs
        + ", recoveryScanDepth="
        + recoveryScanDepth
        + ", expectedDowntimeMs="
        + expectedDowntimeMs
        + ", keepAliveMs="
        + keepAliveMs
        + ", clientSettings="
        + clientConfig.keySet()
        + ", producerSettings="
        + producerConfig.keySet()
        + "]";
  }

  /**
   * The offsets tool's reset options that name this sink's store: its cluster, progress group and
   * output topic (the tool keeps the writer epoch there), and {@code --force}, since a progress
   * group records no commit times and the tool's {@code --execute} always needs it (stop the job
   * first). No client settings: credentials go to the tool in a {@code --kafka-config} file.
   */
  public String offsetsToolResetOptions() {
    return "--progress-bootstrap-servers "
        + bootstrapServers
        + " --progress-group "
        + progressGroup
        + " --output-topic "
        + topic
        + (transactional ? "" : " --idempotent-sink")
        + (clientConfig.isEmpty() ? "" : " --kafka-config <file with the client settings>")
        + " --force";
  }

  /**
   * The transactional id of the producer that writes the outputs of source partition {@code tp}:
   * stable across attempts, executors and restarts, so that a new producer fences every older one.
   *
   * <p>{@code eos-<pipeline>-:<topic>:<partition>}: pipeline ids and topic names cannot contain
   * ':', so the id names one (pipeline, partition) only; the {@code eos-<pipeline>-} prefix is the
   * one of the earlier ids, so prefixed ACLs granted for those still apply. Earlier versions used
   * {@link #legacyTransactionalId}, which two pipelines could share; a starting driver fences that
   * id too (see {@link ProgressStore#takeWriterEpoch()}).
   */
  public String transactionalId(TopicPartition tp) {
    return "eos-" + pipelineId.value() + "-:" + tp.topic() + ":" + tp.partition();
  }

  /**
   * The transactional id versions before issue 17 used for source partition {@code tp}, {@code
   * eos-<pipeline>-<topic>-<partition>}: ambiguous ({@code eos-a-b-c-0} is pipeline {@code a-b} on
   * topic {@code c} and pipeline {@code a} on topic {@code b-c}). Only for fencing the producers of
   * a driver of such a version at start; never for writing outputs.
   */
  public String legacyTransactionalId(TopicPartition tp) {
    return "eos-" + pipelineId.value() + "-" + tp.topic() + "-" + tp.partition();
  }

  /**
   * The transactional id through which drivers of this pipeline take writer epochs: {@code
   * eos-<pipeline>-:epoch}. One per pipeline, so that a driver's {@code initTransactions} fences
   * every other driver that is taking an epoch at the same time (see {@link
   * ProgressStore#takeWriterEpoch()}). The ':' cannot occur in a pipeline id or a topic name, so
   * this id is never one of a source partition.
   */
  public String epochTransactionalId() {
    return "eos-" + pipelineId.value() + "-:epoch";
  }

  /**
   * The consumer group that holds the pipeline's latest writer epoch: {@code
   * <progressGroup>.epoch}. Apart from the progress group, so that the progress group holds exactly
   * the source partitions' offsets (what lag tools and recovery read).
   */
  public String epochGroup() {
    return org.exactlyonce.spark.kafka.ProgressGroups.epochGroup(progressGroup);
  }

  /**
   * The partition under which {@link #epochGroup()} stores the epoch (its "offset" is the epoch,
   * not a position): partition 0 of the output topic, because the broker accepts offsets of
   * existing partitions only, and the output topic is the one topic every sink is sure to have.
   */
  public TopicPartition epochMarker() {
    return new TopicPartition(topic, 0);
  }

  /** Settings of an admin client. */
  public Map<String, Object> adminProperties() {
    Map<String, Object> p = new HashMap<>(clientConfig);
    p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    p.put(CommonClientConfigs.CLIENT_ID_CONFIG, "eos-admin-" + pipelineId.value());
    p.put(CommonClientConfigs.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) apiTimeoutMs);
    p.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.min(apiTimeoutMs, 30_000));
    return p;
  }

  /** Settings of a producer: transactional with {@code transactionalId}, or idempotent if null. */
  public Map<String, Object> producerProperties(String transactionalId) {
    Map<String, Object> p = new HashMap<>();
    // The 3.4 client waits ~100 ms per transaction at the default backoff; 20 ms is measured best.
    p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 20);
    p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
    p.putAll(clientConfig);
    p.putAll(producerConfig);
    p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, apiTimeoutMs);
    if (transactionalId != null) {
      p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
      p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, (int) transactionTimeoutMs);
      p.put(CommonClientConfigs.CLIENT_ID_CONFIG, transactionalId);
    } else {
      p.put(CommonClientConfigs.CLIENT_ID_CONFIG, "eos-" + pipelineId.value());
    }
    return p;
  }
}
