package org.exactlyonce.spark.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class KafkaSourceOptionsTest {
  private static final String SERVERS = "localhost:9092";

  @Test
  void everyOptionThatSetsAStartIsRefusedWhateverItsCase() {
    for (String option :
        new String[] {
          "startingOffsets",
          "STARTINGOFFSETS",
          "startingTimestamp",
          "startingOffsetsByTimestamp",
          "startingOffsetsByTimestampStrategy"
        }) {
      assertThatThrownBy(
              () ->
                  KafkaSourceOptions.of(
                      Map.of("kafka.bootstrap.servers", SERVERS, "subscribe", "t", option, "x")))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining(option)
          .hasMessageContaining("sink's stored offsets")
          .hasMessageContaining("Remove the option");
    }
  }

  @Test
  void failOnDataLossFalseIsRefusedBecauseSparkWouldSkipLostOffsetsSilently() {
    assertThatThrownBy(
            () ->
                KafkaSourceOptions.of(
                    Map.of(
                        "kafka.bootstrap.servers", SERVERS,
                        "subscribe", "t",
                        "failOnDataLoss", "false")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("failOnDataLoss=false")
        .hasMessageContaining("lost silently");
  }

  @Test
  void missingServersOrTopicsAndUnsupportedSubscriptionsAreNamed() {
    assertThatThrownBy(() -> KafkaSourceOptions.of(Map.of("subscribe", "t")))
        .hasMessageContaining("kafka.bootstrap.servers is missing");
    assertThatThrownBy(() -> KafkaSourceOptions.of(Map.of("kafka.bootstrap.servers", SERVERS)))
        .hasMessageContaining("subscribe is missing");
    assertThatThrownBy(
            () ->
                KafkaSourceOptions.of(
                    Map.of(
                        "kafka.bootstrap.servers", SERVERS,
                        "subscribe", "t",
                        "subscribePattern", "t.*")))
        .hasMessageContaining("exactly one of subscribe, subscribePattern and assign");
    assertThatThrownBy(
            () ->
                KafkaSourceOptions.of(
                    Map.of("kafka.bootstrap.servers", SERVERS, "subscribePattern", "t[")))
        .hasMessageContaining("subscribePattern 't[' is not a Java regular expression");
    assertThatThrownBy(
            () ->
                KafkaSourceOptions.of(
                    Map.of("kafka.bootstrap.servers", SERVERS, "assign", "clicks-0")))
        .hasMessageContaining("assign 'clicks-0' is not JSON of topics and partitions");
    assertThatThrownBy(() -> KafkaSourceOptions.of(Map.of()))
        .hasMessageContaining("no Kafka source options");
  }

  @Test
  void topicsAndConsumerSettingsComeFromTheSourcesOwnOptionNames() {
    KafkaSourceOptions o =
        KafkaSourceOptions.of(
            Map.of(
                "kafka.bootstrap.servers", SERVERS,
                "kafka.security.protocol", "SSL",
                "subscribe", "clicks, views",
                "maxOffsetsPerTrigger", "1000"));
    assertThat(o.topics()).containsExactly("clicks", "views");
    assertThat(o.consumerParams())
        .containsOnly(
            Map.entry("bootstrap.servers", SERVERS), Map.entry("security.protocol", "SSL"));
  }

  @Test
  void theStartingOffsetsJsonListsEveryPartitionOfEveryTopic() {
    assertThat(
            KafkaSourceOptions.startingOffsetsJson(
                Map.of(
                    new TopicPartition("views", 0), 7L,
                    new TopicPartition("clicks", 1), 12L,
                    new TopicPartition("clicks", 0), 0L)))
        .isEqualTo("{\"clicks\":{\"0\":0,\"1\":12},\"views\":{\"0\":7}}");
  }

  @Test
  void anAssignmentIsReadAsSparksJsonOfTopicsAndPartitions() {
    KafkaSourceOptions o =
        KafkaSourceOptions.of(
            Map.of(
                "kafka.bootstrap.servers", SERVERS, "assign", "{\"clicks\":[0,2],\"views\":[1]}"));
    assertThat(o.assigned())
        .containsExactlyInAnyOrder(
            new TopicPartition("clicks", 0),
            new TopicPartition("clicks", 2),
            new TopicPartition("views", 1));
    assertThat(o.topics()).isNull();
  }
}
