package org.exactlyonce.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

class SinkPropertiesTest {
  private static final SinkSetting<String> URL =
      SinkSetting.text("url", "none", "where to connect");
  private static final SinkSetting<String> PASSWORD_ENV =
      SinkSetting.text("passwordEnv", "none", "variable holding the password");
  private static final SinkSetting<Integer> POOL =
      SinkSetting.integer("maxPoolSize", "4", "connections per executor")
          .check(n -> n >= 1, "use at least 1");
  private static final SinkSetting<Duration> TIMEOUT =
      SinkSetting.duration("reconnectTimeout", "60s", "how long to wait");
  private static final SinkSetting<Boolean> COPY = SinkSetting.bool("copy", "true", "use COPY");
  private static final SinkSetting<List<String>> HOSTS =
      SinkSetting.list("contactPoints", "none", "nodes");
  private static final SinkSetting<Map<String, String>> PROPERTY =
      SinkSetting.map("property", "driver property");
  private static final List<SinkSetting<?>> ALL =
      List.of(URL, PASSWORD_ENV, POOL, TIMEOUT, COPY, HOSTS, PROPERTY);
  private static final PipelineId CLICKS = PipelineId.of("clicks");

  private static SinkProperties read(Map<String, String> conf) {
    return SinkProperties.read(CLICKS, conf, ALL);
  }

  @Test
  void valuesUnderThePipelinesPrefixAreParsedByTheirDeclaredType() {
    SinkProperties p =
        read(
            Map.of(
                "spark.exactlyonce.clicks.url", "jdbc:postgresql://db/ads",
                "spark.exactlyonce.clicks.maxPoolSize", "8",
                "spark.exactlyonce.clicks.reconnectTimeout", "90s",
                "spark.exactlyonce.clicks.copy", "FALSE",
                "spark.exactlyonce.clicks.contactPoints", "a:9042, b:9042",
                "spark.exactlyonce.clicks.property.sslmode", "verify-full",
                "spark.exactlyonce.other.url", "jdbc:postgresql://elsewhere/x",
                "spark.master", "local[2]"));
    assertThat(p.get(URL)).contains("jdbc:postgresql://db/ads");
    assertThat(p.get(POOL)).contains(8);
    assertThat(p.get(TIMEOUT)).contains(Duration.ofSeconds(90));
    assertThat(p.get(COPY)).contains(false);
    assertThat(p.get(HOSTS)).contains(List.of("a:9042", "b:9042"));
    assertThat(p.get(PROPERTY)).contains(Map.of("sslmode", "verify-full"));
    assertThat(p.get(PASSWORD_ENV)).isEmpty();
  }

  @Test
  void durationsTakeSparksAndIsoForms() {
    assertThat(SinkSetting.parseDuration("500ms")).isEqualTo(Duration.ofMillis(500));
    assertThat(SinkSetting.parseDuration("10min")).isEqualTo(Duration.ofMinutes(10));
    assertThat(SinkSetting.parseDuration("10m")).isEqualTo(Duration.ofMinutes(10));
    assertThat(SinkSetting.parseDuration("2h")).isEqualTo(Duration.ofHours(2));
    assertThat(SinkSetting.parseDuration("3d")).isEqualTo(Duration.ofDays(3));
    assertThat(SinkSetting.parseDuration("PT30S")).isEqualTo(Duration.ofSeconds(30));
  }

  @Test
  void aMisspelledKeyIsRefusedNamingTheNearestDeclaredKey() {
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.maxPoolSzie", "8")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.maxPoolSzie is not a setting of this sink")
        .hasMessageContaining("did you mean spark.exactlyonce.clicks.maxPoolSize?");
  }

  @Test
  void aKeyNearNoDeclaredKeyIsRefusedListingTheSettings() {
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.compression", "lz4")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.compression is not a setting of this sink")
        .hasMessageNotContaining("did you mean")
        .hasMessageContaining("maxPoolSize, reconnectTimeout");
  }

  @Test
  void aSecretLookingKeyIsRefusedPointingToTheEnvironmentVariableSetting() {
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.password", "hunter2")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.password looks like a secret")
        .hasMessageContaining("spark.exactlyonce.clicks.passwordEnv")
        .hasMessageNotContaining("hunter2");
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.property.password", "hunter2")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.property.password looks like a secret")
        .hasMessageNotContaining("hunter2");
  }

  @Test
  void aBadValueIsRefusedNamingTheKeyAndTheFix() {
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.maxPoolSize", "many")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.maxPoolSize=many is not valid")
        .hasMessageContaining("a whole number");
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.maxPoolSize", "0")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining(
            "spark.exactlyonce.clicks.maxPoolSize=0 is not valid: use at least 1");
    assertThatThrownBy(() -> read(Map.of("spark.exactlyonce.clicks.copy", "yes")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining(
            "spark.exactlyonce.clicks.copy=yes is not valid: write true or false");
  }

  @Test
  void aBuilderRefusingAValueIsReportedUnderTheKey() {
    SinkProperties p = read(Map.of("spark.exactlyonce.clicks.url", "jdbc:mysql://db"));
    assertThatThrownBy(
            () ->
                p.ifPresent(
                    URL,
                    u -> {
                      throw new SinkConfigurationException("only PostgreSQL URLs: " + u);
                    }))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessage(
            "spark.exactlyonce.clicks.url=jdbc:mysql://db is not valid: only PostgreSQL URLs:"
                + " jdbc:mysql://db");
  }

  @Test
  void libraryWideSettingsAndDottedPipelinesAreNotTakenForTypos() {
    SinkProperties p =
        SinkProperties.read(
            PipelineId.of("metrics"),
            Map.of(
                ExactlyOnceMetrics.ENABLED_SETTING,
                "false",
                "spark.exactlyonce.metrics.eu.url",
                "jdbc:postgresql://eu/x",
                "spark.exactlyonce.metrics.eu.property.sslmode",
                "require"),
            ALL);
    assertThat(p.isEmpty()).isTrue();
  }

  @Test
  void aSparkConfIsReadAndNotChanged() {
    SparkConf conf =
        new SparkConf(false)
            .set("spark.exactlyonce.clicks.url", "jdbc:postgresql://db/ads")
            .set("spark.app.name", "x");
    SinkProperties p = SinkProperties.read(CLICKS, conf, ALL);
    assertThat(p.get(URL)).contains("jdbc:postgresql://db/ads");
    assertThat(conf.getAll()).hasSize(2);
  }
}
