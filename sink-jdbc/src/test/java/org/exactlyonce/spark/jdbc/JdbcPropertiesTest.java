package org.exactlyonce.spark.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class JdbcPropertiesTest {
  private static final Map<String, String> CONF =
      Map.ofEntries(
          Map.entry("spark.exactlyonce.clicks.url", "jdbc:postgresql://db:5432/ads"),
          Map.entry("spark.exactlyonce.clicks.user", "app"),
          Map.entry("spark.exactlyonce.clicks.passwordEnv", "ADS_DB_PASSWORD"),
          Map.entry("spark.exactlyonce.clicks.maxPoolSize", "12"),
          Map.entry("spark.exactlyonce.clicks.reconnectTimeout", "2min"),
          Map.entry("spark.exactlyonce.clicks.property.sslmode", "verify-full"),
          Map.entry("spark.exactlyonce.clicks.offsetsTable", "ops.eos_offsets"),
          Map.entry("spark.exactlyonce.clicks.writersTable", "ops.eos_writers"),
          Map.entry("spark.exactlyonce.clicks.table", "ads.clicks"),
          Map.entry("spark.exactlyonce.clicks.batchSize", "500"),
          Map.entry("spark.exactlyonce.clicks.copy", "false"),
          Map.entry("spark.exactlyonce.clicks.deadLetterTable", "ads.clicks_dead"));

  private static JdbcSink.Builder<String> mapped() {
    return JdbcSink.<String>transactional("clicks").columns("id").values(List::of);
  }

  @Test
  void aSinkBuiltFromPropertiesIsTheSinkTheBuilderCallsBuild() {
    JdbcSink<String> fromCode =
        mapped()
            .connection(
                JdbcSettings.url("jdbc:postgresql://db:5432/ads")
                    .user("app")
                    .passwordFromEnv("ADS_DB_PASSWORD")
                    .maxPoolSize(12)
                    .reconnectTimeout(Duration.ofMinutes(2))
                    .property("sslmode", "verify-full"))
            .offsetsTable("ops.eos_offsets")
            .writersTable("ops.eos_writers")
            .table("ads.clicks")
            .batchSize(500)
            .copy(false)
            .deadLetterTable("ads.clicks_dead")
            .build();
    JdbcSink<String> fromConf = mapped().settingsFrom(CONF).build();
    assertThat(fromConf.settings()).isEqualTo(fromCode.settings());
    assertThat(fromConf.toString()).isEqualTo(fromCode.toString());
  }

  @Test
  void aSparkConfGivesTheSameSinkAsItsMapAndIsNotChanged() {
    SparkConf conf = new SparkConf(false);
    CONF.forEach(conf::set);
    JdbcSink<String> fromSparkConf = mapped().settingsFrom(conf).build();
    assertThat(fromSparkConf.toString()).isEqualTo(mapped().settingsFrom(CONF).build().toString());
    assertThat(conf.getAll()).hasSize(CONF.size());
  }

  @Test
  void builderCallsAfterSettingsFromWinAndAnUrlKeepsTheConnectionsOtherSettings() {
    JdbcSink<String> s =
        mapped()
            .connection(JdbcSettings.url("jdbc:postgresql://old/ads").user("app"))
            .settingsFrom(
                Map.of(
                    "spark.exactlyonce.clicks.url", "jdbc:postgresql://new/ads",
                    "spark.exactlyonce.clicks.table", "from_conf",
                    "spark.exactlyonce.clicks.batchSize", "10"))
            .table("from_code")
            .build();
    assertThat(s.settings().url()).isEqualTo("jdbc:postgresql://new/ads");
    assertThat(s.settings().user()).isEqualTo("app");
    assertThat(s.toString()).contains("\"from_code\"").contains("batchSize=10");
  }

  @Test
  void withoutAnyOfThePipelinesKeysTheBuilderIsUnchanged() {
    JdbcSettings db = JdbcSettings.url("jdbc:postgresql://db/ads");
    assertThat(
            mapped()
                .connection(db)
                .table("t")
                .settingsFrom(Map.of("spark.exactlyonce.other.url", "jdbc:postgresql://x/y"))
                .build()
                .toString())
        .isEqualTo(mapped().connection(db).table("t").build().toString());
  }

  @Test
  void aMisspelledKeyIsRefusedNamingTheNearestKey() {
    assertThatThrownBy(
            () -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.batchsize", "10")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("did you mean spark.exactlyonce.clicks.batchSize?");
    assertThatThrownBy(
            () -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.offsetTable", "x")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("did you mean spark.exactlyonce.clicks.offsetsTable?");
  }

  @Test
  void aPasswordIsRefusedInAKeyAndInTheUrl() {
    assertThatThrownBy(
            () -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.password", "hunter2")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("looks like a secret")
        .hasMessageContaining("spark.exactlyonce.clicks.passwordEnv");
    assertThatThrownBy(
            () ->
                mapped()
                    .settingsFrom(
                        Map.of(
                            "spark.exactlyonce.clicks.url",
                            "jdbc:postgresql://db/ads?password=hunter2")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.url=(value not shown) is not valid")
        .hasMessageContaining("passwordEnv")
        .hasMessageNotContaining("hunter2");
    assertThatThrownBy(
            () ->
                mapped()
                    .settingsFrom(
                        Map.of(
                            "spark.exactlyonce.clicks.url", "jdbc:postgresql://u:hunter2@db/ads")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("passwordEnv")
        .hasMessageNotContaining("hunter2");
  }

  @Test
  void aValueTheBuilderRefusesIsReportedUnderItsKey() {
    assertThatThrownBy(
            () ->
                mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.url", "jdbc:mysql://db/x")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.url=(value not shown) is not valid")
        .hasMessageContaining("JDBC url 'jdbc:mysql://db/x' is not supported")
        .hasMessageContaining("use a PostgreSQL URL");
    assertThatThrownBy(
            () ->
                mapped()
                    .connection(JdbcSettings.url("jdbc:postgresql://db/ads"))
                    .settingsFrom(Map.of("spark.exactlyonce.clicks.maxPoolSize", "0")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.maxPoolSize=0 is not valid")
        .hasMessageContaining("at least 1");
    assertThatThrownBy(
            () ->
                mapped()
                    .settingsFrom(
                        Map.of("spark.exactlyonce.clicks.offsetsTable", "eos; DROP TABLE x")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining(
            "spark.exactlyonce.clicks.offsetsTable=eos; DROP TABLE x is not valid");
    assertThatThrownBy(
            () ->
                mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.reconnectTimeout", "soon")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.reconnectTimeout=soon is not valid")
        .hasMessageContaining("30s");
  }

  @Test
  void aStagingTableIsAPerBatchSinksSettingOnly() {
    JdbcSettings db = JdbcSettings.url("jdbc:postgresql://db/ads");
    Map<String, String> staged =
        Map.of("spark.exactlyonce.totals.stagingTable", "ads.totals_stage");
    JdbcBatchSink<String> fromConf =
        JdbcSink.<String>perBatch("totals")
            .connection(db)
            .table("ads.totals")
            .columns("id")
            .values(List::of)
            .settingsFrom(staged)
            .build();
    JdbcBatchSink<String> fromCode =
        JdbcSink.<String>perBatch("totals")
            .connection(db)
            .table("ads.totals")
            .columns("id")
            .values(List::of)
            .stagingTable("ads.totals_stage")
            .build();
    assertThat(fromConf.toString()).isEqualTo(fromCode.toString()).contains("totals_stage");
    assertThatThrownBy(
            () ->
                JdbcSink.<String>transactional("totals")
                    .settingsFrom(Map.of("spark.exactlyonce.totals.stagingTable", "x")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.totals.stagingTable applies to a per-batch sink");
  }

  @Test
  void connectionKeysWithoutAConnectionSayToSetTheUrl() {
    assertThatThrownBy(() -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.user", "app")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.user is set")
        .hasMessageContaining("set spark.exactlyonce.clicks.url");
  }
}
