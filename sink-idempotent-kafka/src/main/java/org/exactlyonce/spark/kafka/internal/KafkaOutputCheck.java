package org.exactlyonce.spark.kafka.internal;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.exactlyonce.spark.SinkConfigurationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The pre-flight check of a Kafka sink's outputs ({@link
 * org.exactlyonce.spark.spi.ExactlyOnceSink#checkOutputs()}): the cluster can be reached, and the
 * output topic and the dead-letter topic exist (the sink never creates a topic: its partition count
 * and replication are the user's). The progress group and the broker settings it relies on are the
 * offset store's ({@link ProgressStore#validate()}).
 */
public final class KafkaOutputCheck {
  private static final Logger LOG = LoggerFactory.getLogger(KafkaOutputCheck.class);

  private KafkaOutputCheck() {}

  /**
   * Checks {@code spec}'s outputs with an admin client of its own.
   *
   * @throws SinkConfigurationException naming the topic, what is wrong and the fix
   */
  public static void run(KafkaSpec<?> spec) {
    try (Admin admin = Admin.create(spec.adminProperties())) {
      reach(admin, spec);
      checkTopic(admin, spec, spec.topic(), "output topic", "topic(...)");
      if (spec.deadLetterTopic() != null) {
        checkTopic(
            admin, spec, spec.deadLetterTopic(), "dead-letter topic", "deadLetterTopic(...)");
      }
    }
  }

  /**
   * The cluster's nodes, within the API timeout.
   *
   * @throws SinkConfigurationException naming the bootstrap servers if Kafka cannot be reached
   */
  static Collection<Node> reach(Admin admin, KafkaSpec<?> spec) {
    long timeout = spec.apiTimeoutMs();
    try {
      return admin
          .describeCluster(new DescribeClusterOptions().timeoutMs((int) timeout))
          .nodes()
          .get(timeout, TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      throw new SinkConfigurationException(
          "pipeline '"
              + spec.pipelineId()
              + "': cannot reach Kafka at '"
              + spec.bootstrapServers()
              + "' within "
              + timeout
              + " ms ("
              + cause(e)
              + "): check bootstrapServers(...) and the client security settings",
          e);
    }
  }

  private static void checkTopic(
      Admin admin, KafkaSpec<?> spec, String topic, String what, String setter) {
    try {
      Map<String, TopicDescription> d =
          admin
              .describeTopics(List.of(topic))
              .allTopicNames()
              .get(spec.apiTimeoutMs(), TimeUnit.MILLISECONDS);
      LOG.debug("{} {}: {} partitions", what, topic, d.get(topic).partitions().size());
    } catch (ExecutionException e) {
      if (e.getCause() instanceof UnknownTopicOrPartitionException) {
        throw new SinkConfigurationException(
            "the "
                + what
                + " '"
                + topic
                + "' does not exist: create it (its partition count and replication are yours to"
                + " choose, and must not change while the pipeline runs), or fix "
                + setter);
      }
      throw new SinkConfigurationException(
          "describing the " + what + " '" + topic + "' failed: " + cause(e), e);
    } catch (InterruptedException | TimeoutException e) {
      throw new SinkConfigurationException(
          "describing the " + what + " '" + topic + "' failed: " + e, e);
    }
  }

  private static String cause(Exception e) {
    return String.valueOf(
        e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e);
  }
}
