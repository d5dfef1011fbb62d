package org.exactlyonce.spark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class KafkaSinkBuilderTest {

  private static KafkaSink.Builder<String, KafkaSink<String>> valid() {
    return KafkaSink.<String>transactional("p1")
        .bootstrapServers("localhost:9092")
        .topic("out")
        .value(ToBytes.utf8(s -> s));
  }

  @Test
  void missingSettingsAreNamedWithTheirFix() {
    assertThatThrownBy(() -> KafkaSink.<String>transactional("p1").topic("t").build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("bootstrapServers(");
    assertThatThrownBy(() -> valid().topic(null).build()).hasMessageContaining("topic(");
    assertThatThrownBy(() -> valid().value(null).build()).hasMessageContaining("value(");
    assertThatThrownBy(() -> valid().topic("bad topic").build())
        .hasMessageContaining("not a valid Kafka topic name");
  }

  @Test
  void settingsTheSinkOwnsAreRefusedWithTheReason() {
    assertThatThrownBy(() -> valid().producerProperty("transactional.id", "x"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("'transactional.id'")
        .hasMessageContaining("derived from the pipeline id");
    assertThatThrownBy(() -> valid().clientProperty("acks", "1")).hasMessageContaining("acks=all");
    assertThatThrownBy(() -> valid().transactionTimeout(Duration.ofMillis(10)).build())
        .hasMessageContaining("transactionTimeout");
  }

  @Test
  void theProgressGroupDefaultsToOneOfItsOwnAndMustNotBeTheStreamsGroup() {
    KafkaSink<String> sink = valid().build();
    assertThat(sink.progressGroup()).isEqualTo("eos-progress-p1");
    sink.checkConsumerSettings(Map.of("group.id", "readers"));
    assertThatThrownBy(() -> sink.checkConsumerSettings(Map.of("group.id", "eos-progress-p1")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("progress group")
        .hasMessageContaining("another group.id");
  }

  @Test
  void credentialsNeverAppearInToString() {
    KafkaSink<String> sink =
        valid()
            .clientProperty("security.protocol", "SASL_SSL")
            .clientProperty(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required"
                    + " username=\"app\" password=\"s3cr3t-pw\";")
            .clientProperty("ssl.truststore.password", "s3cr3t-store")
            .build();
    assertThat(sink.toString()).contains("p1", "out", "sasl.jaas.config").doesNotContain("s3cr3t");
    assertThat(org.exactlyonce.spark.internal.StartSequence.configurationLine(sink))
        .startsWith("pipeline 'p1': sink configuration ")
        .contains("progressGroup=eos-progress-p1", "transactionTimeoutMs=", "apiTimeoutMs=")
        .doesNotContain("s3cr3t");
  }

  @Test
  void sparkKafkaSinkOptionsSetTheBrokersTheTopicAndTheClientSettings() {
    KafkaSink<String> sink =
        KafkaSink.<String>transactional("p1")
            .sparkKafkaOptions(
                Map.of(
                    "kafka.bootstrap.servers", "broker:9092",
                    "TOPIC", "out",
                    "kafka.security.protocol", "SASL_SSL",
                    "kafka.linger.ms", "20",
                    "kafka.acks", "all"))
            .value(ToBytes.utf8(s -> s))
            .build();
    assertThat(sink.toString())
        .contains("bootstrapServers=broker:9092")
        .contains("topic=out")
        .contains("clientSettings=[security.protocol]")
        .contains("producerSettings=[linger.ms]");
  }

  @Test
  void sparkKafkaSinkOptionsTheSinkCannotTakeAreRefusedNamingTheOption() {
    assertThatThrownBy(() -> valid().sparkKafkaOptions(Map.of("subscribe", "clicks")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("'subscribe' is not an option of Spark's Kafka sink")
        .hasMessageContaining("belongs on the query's source");
    assertThatThrownBy(
            () -> valid().sparkKafkaOptions(Map.of("kafka.value.serializer", "x.Serializer")))
        .hasMessageContaining("'value.serializer' is set by the sink")
        .hasMessageContaining("use value(...)");
    assertThatThrownBy(() -> valid().sparkKafkaOptions(Map.of("kafka.acks", "1")))
        .hasMessageContaining("acks=all");
    valid().sparkKafkaOptions(Map.of("kafka.acks", "-1", "kafka.enable.idempotence", "true"));
    assertThatThrownBy(() -> valid().sparkKafkaOptions(Map.of("kafka.max.block.ms", "1000")))
        .hasMessageContaining("'max.block.ms' is set by the sink")
        .hasMessageContaining("apiTimeout(...)");
    assertThatThrownBy(() -> valid().sparkKafkaOptions(Map.of("Kafka.Client.Id", "mine")))
        .hasMessageContaining("'client.id' is set by the sink");
    assertThatThrownBy(() -> valid().sparkKafkaOptions(Map.of("checkpointLocation", "/cp")))
        .hasMessageContaining("an option of the query, not of its sink");
    assertThatThrownBy(() -> valid().sparkKafkaOptions(Map.of("topic", "bad topic")))
        .hasMessageContaining("not a valid Kafka topic name");
  }
}
