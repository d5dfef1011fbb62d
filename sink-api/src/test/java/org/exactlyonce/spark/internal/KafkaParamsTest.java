package org.exactlyonce.spark.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class KafkaParamsTest {

  @Test
  void completesTheSettingsExactlyOnceNeeds() {
    Map<String, Object> p = KafkaParams.forDirectStream(Map.of("bootstrap.servers", "b:9092"), "g");
    assertThat(p)
        .containsEntry("enable.auto.commit", false)
        .containsEntry("auto.offset.reset", "earliest")
        .containsEntry("group.id", "g");
  }

  @Test
  void keepsTheUsersGroupId() {
    Map<String, Object> p =
        KafkaParams.forDirectStream(Map.of("bootstrap.servers", "b:9092", "group.id", "mine"), "g");
    assertThat(p).containsEntry("group.id", "mine");
  }

  @Test
  void autoCommitIsRefusedWithTheReason() {
    assertThatThrownBy(
            () ->
                KafkaParams.forDirectStream(
                    Map.of("bootstrap.servers", "b:9092", "enable.auto.commit", "true"), "g"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("'enable.auto.commit'")
        .hasMessageContaining("set it to false");
  }

  @Test
  void anOffsetResetThatWouldSkipNewPartitionsIsRefused() {
    assertThatThrownBy(
            () ->
                KafkaParams.forDirectStream(
                    Map.of("bootstrap.servers", "b:9092", "auto.offset.reset", "latest"), "g"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("auto.offset.reset")
        .hasMessageContaining("StartPosition");
  }

  @Test
  void missingBootstrapServersIsNamed() {
    assertThatThrownBy(() -> KafkaParams.forDirectStream(Map.of(), "g"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("'bootstrap.servers'");
  }
}
