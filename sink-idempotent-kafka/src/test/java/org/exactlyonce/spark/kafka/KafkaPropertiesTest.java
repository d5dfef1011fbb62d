package org.exactlyonce.spark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class KafkaPropertiesTest {
  private static final ToBytes<String> VALUE = ToBytes.utf8(s -> s);

  private static KafkaSink.Builder<String, KafkaSink<String>> valued() {
    return KafkaSink.<String>transactional("clicks").value(VALUE);
  }

  private static final Map<String, String> CONF =
      Map.ofEntries(
          Map.entry("spark.exactlyonce.clicks.bootstrapServers", "k1:9092,k2:9092"),
          Map.entry("spark.exactlyonce.clicks.topic", "clicks-out"),
          Map.entry("spark.exactlyonce.clicks.client.security.protocol", "SSL"),
          Map.entry("spark.exactlyonce.clicks.producer.linger.ms", "20"),
          Map.entry("spark.exactlyonce.clicks.progressGroup", "clicks-progress"),
          Map.entry("spark.exactlyonce.clicks.transactionTimeout", "2min"),
          Map.entry("spark.exactlyonce.clicks.apiTimeout", "45s"),
          Map.entry("spark.exactlyonce.clicks.deadLetterTopic", "clicks-dead"),
          Map.entry("spark.exactlyonce.clicks.recoveryScanDepth", "5000"),
          Map.entry("spark.exactlyonce.clicks.expectedDowntime", "7d"),
          Map.entry("spark.exactlyonce.clicks.progressKeepAlive", "30min"),
          Map.entry("spark.exactlyonce.clicks.maxIdleProducers", "8"),
          Map.entry("spark.exactlyonce.clicks.idleProducerTimeout", "5min"));

  @Test
  void aSinkBuiltFromPropertiesIsTheSinkTheBuilderCallsBuild() {
    KafkaSink<String> fromCode =
        valued()
            .bootstrapServers("k1:9092,k2:9092")
            .topic("clicks-out")
            .clientProperty("security.protocol", "SSL")
            .producerProperty("linger.ms", "20")
            .progressGroup("clicks-progress")
            .transactionTimeout(Duration.ofMinutes(2))
            .apiTimeout(Duration.ofSeconds(45))
            .deadLetterTopic("clicks-dead")
            .recoveryScanDepth(5000)
            .expectedDowntime(Duration.ofDays(7))
            .progressKeepAlive(Duration.ofMinutes(30))
            .idleProducers(8, Duration.ofMinutes(5))
            .build();
    KafkaSink<String> fromConf = valued().settingsFrom(CONF).build();
    assertThat(fromConf.spec).isEqualTo(fromCode.spec);
    assertThat(fromConf.toString()).isEqualTo(fromCode.toString());

    SparkConf sparkConf = new SparkConf(false);
    CONF.forEach(sparkConf::set);
    assertThat(valued().settingsFrom(sparkConf).build().spec).isEqualTo(fromCode.spec);
    assertThat(sparkConf.getAll()).hasSize(CONF.size());
  }

  @Test
  void builderCallsAfterSettingsFromWin() {
    KafkaSink<String> s = valued().settingsFrom(CONF).topic("from-code").build();
    assertThat(s.spec.topic()).isEqualTo("from-code");
    assertThat(s.spec.bootstrapServers()).isEqualTo("k1:9092,k2:9092");
  }

  @Test
  void aMisspelledKeyIsRefusedNamingTheNearestKey() {
    assertThatThrownBy(
            () ->
                valued().settingsFrom(Map.of("spark.exactlyonce.clicks.bootstrapServer", "k:9092")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("did you mean spark.exactlyonce.clicks.bootstrapServers?");
    assertThatThrownBy(
            () -> valued().settingsFrom(Map.of("spark.exactlyonce.clicks.producers.acks", "1")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("did you mean spark.exactlyonce.clicks.producer.acks?");
  }

  @Test
  void secretLookingClientSettingsAreRefused() {
    for (String key :
        new String[] {"client.sasl.jaas.config", "client.ssl.keystore.password", "password"}) {
      assertThatThrownBy(
              () -> valued().settingsFrom(Map.of("spark.exactlyonce.clicks." + key, "hunter2")))
          .as(key)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("spark.exactlyonce.clicks." + key + " looks like a secret")
          .hasMessageNotContaining("hunter2");
    }
  }

  @Test
  void aValueBuildWouldRefuseIsReportedUnderItsKey() {
    assertThatThrownBy(
            () ->
                valued()
                    .settingsFrom(Map.of("spark.exactlyonce.clicks.transactionTimeout", "500ms")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.transactionTimeout=PT0.5S is not valid")
        .hasMessageContaining("use at least a few seconds");
    assertThatThrownBy(
            () -> valued().settingsFrom(Map.of("spark.exactlyonce.clicks.topic", "bad topic")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.topic=bad topic is not valid")
        .hasMessageContaining("not a valid Kafka topic name");
    assertThatThrownBy(
            () -> valued().settingsFrom(Map.of("spark.exactlyonce.clicks.producer.acks", "1")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.producer.acks=1 is not valid")
        .hasMessageContaining("acks=all");
    assertThatThrownBy(
            () -> valued().settingsFrom(Map.of("spark.exactlyonce.clicks.maxIdleProducers", "-1")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.maxIdleProducers=-1 is not valid");
  }
}
