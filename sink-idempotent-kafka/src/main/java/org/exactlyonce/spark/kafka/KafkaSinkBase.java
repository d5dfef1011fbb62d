package org.exactlyonce.spark.kafka;

import java.util.Map;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.kafka.internal.KafkaOutputCheck;
import org.exactlyonce.spark.kafka.internal.KafkaSpec;
import org.exactlyonce.spark.kafka.internal.ProgressStore;
import org.exactlyonce.spark.kafka.internal.TransactionFailures;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** What both Kafka sinks share: their configuration, their progress group and its checks. */
abstract class KafkaSinkBase<R> implements ExactlyOnceSink {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(KafkaSinkBase.class);

  final KafkaSpec<R> spec;

  KafkaSinkBase(KafkaSpec<R> spec) {
    this.spec = spec;
  }

  @Override
  public PipelineId pipelineId() {
    return spec.pipelineId();
  }

  /** The consumer group whose committed offsets are this sink's progress. */
  public String progressGroup() {
    return spec.progressGroup();
  }

  /** The configuration without credentials. */
  @Override
  public String toString() {
    return "%s[%s]".formatted(getClass().getSimpleName(), spec);
  }

  /** The cluster, the output topic and the dead-letter topic (never created by the sink). */
  @Override
  public void checkOutputs() {
    KafkaOutputCheck.run(spec);
  }

  @Override
  public OffsetStore openOffsetStore() {
    return new ProgressStore(spec);
  }

  /** Kafka expires a group's offsets that are not committed for a while: see the builder. */
  @Override
  public java.time.Duration progressKeepAlive() {
    return java.time.Duration.ofMillis(spec.keepAliveMs());
  }

  @Override
  public boolean routesBadRecordsToDeadLetters() {
    return spec.deadLetterTopic() != null;
  }

  /**
   * Warns when a transactional sink's batches are not bounded by a rate limit: a catch-up batch
   * could then outlive the transaction timeout, again on every retry.
   */
  @Override
  public void checkStreamingSettings(SparkConf conf) {
    if (!spec.transactional()) {
      return; // without transactions nothing times out with the batch's size
    }
    String warning =
        TransactionFailures.unboundedBatchWarning(
            spec.pipelineId().value(),
            spec.transactionTimeoutMs(),
            conf.getLong(TransactionFailures.MAX_RATE, 0),
            conf.getBoolean("spark.streaming.backpressure.enabled", false),
            conf.getLong("spark.streaming.backpressure.initialRate", 0));
    if (warning != null) {
      LOG.warn(warning);
    }
  }

  @Override
  public void checkConsumerSettings(Map<String, Object> kafkaParams) {

    Object groupId = kafkaParams.get("group.id");
    if (spec.progressGroup().equals(groupId)) {
      throw new SinkConfigurationException(
          "pipeline '"
              + spec.pipelineId()
              + "': the stream reads with group.id '"
              + groupId
              + "', which is also the sink's progress group: the stream's consumer would be a"
              + " member of the group that holds the sink's offsets and could overwrite them. Use"
              + " another group.id for the stream, or another progressGroup(...) for the sink");
    }
  }
}
