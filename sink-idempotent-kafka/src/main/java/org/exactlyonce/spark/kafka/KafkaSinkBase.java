package org.exactlyonce.spark.kafka;

import java.util.Map;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.kafka.internal.KafkaSpec;
import org.exactlyonce.spark.kafka.internal.ProgressStore;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;

/** What both Kafka sinks share: their configuration, their progress group and its checks. */
abstract class KafkaSinkBase<R> implements ExactlyOnceSink {
  private static final long serialVersionUID = 1L;

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
