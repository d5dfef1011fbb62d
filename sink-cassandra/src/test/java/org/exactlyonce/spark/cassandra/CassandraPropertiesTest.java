package org.exactlyonce.spark.cassandra;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CassandraPropertiesTest {
  private static CassandraSink.Builder<String> mapped() {
    return CassandraSink.<String>idempotent("clicks")
        .columns("id")
        .values(List::of)
        .timestampFromSourceOffset();
  }

  @Test
  void aSinkBuiltFromPropertiesIsTheSinkTheBuilderCallsBuild(@TempDir Path dir) throws IOException {
    Path trustStore = Files.writeString(dir.resolve("trust.p12"), "not read here");
    CassandraSink<String> fromCode =
        mapped()
            .connection(
                CassandraSettings.contactPoints("dc1", "10.0.0.5:9042", "10.0.0.6:9042")
                    .user("app")
                    .passwordFromEnv("CASSANDRA_PASSWORD")
                    .writeConsistency("QUORUM")
                    .serialConsistency("SERIAL")
                    .maxRequestsInFlight(64)
                    .requestTimeout(Duration.ofSeconds(20))
                    .tls(trustStore.toString(), null))
            .offsetsTable("ops.eos_offsets")
            .table("ads.clicks")
            .deadLetterTable("ads.clicks_dead")
            .build();
    Map<String, String> conf =
        Map.ofEntries(
            Map.entry("spark.exactlyonce.clicks.contactPoints", "10.0.0.5:9042, 10.0.0.6:9042"),
            Map.entry("spark.exactlyonce.clicks.localDatacenter", "dc1"),
            Map.entry("spark.exactlyonce.clicks.user", "app"),
            Map.entry("spark.exactlyonce.clicks.passwordEnv", "CASSANDRA_PASSWORD"),
            Map.entry("spark.exactlyonce.clicks.writeConsistency", "quorum"),
            Map.entry("spark.exactlyonce.clicks.serialConsistency", "SERIAL"),
            Map.entry("spark.exactlyonce.clicks.maxRequestsInFlight", "64"),
            Map.entry("spark.exactlyonce.clicks.requestTimeout", "20s"),
            Map.entry("spark.exactlyonce.clicks.tls", "true"),
            Map.entry("spark.exactlyonce.clicks.trustStore", trustStore.toString()),
            Map.entry("spark.exactlyonce.clicks.offsetsTable", "ops.eos_offsets"),
            Map.entry("spark.exactlyonce.clicks.table", "ads.clicks"),
            Map.entry("spark.exactlyonce.clicks.deadLetterTable", "ads.clicks_dead"));
    CassandraSink<String> fromConf = mapped().settingsFrom(conf).build();
    assertThat(fromConf.toString()).isEqualTo(fromCode.toString());

    SparkConf sparkConf = new SparkConf(false);
    conf.forEach(sparkConf::set);
    assertThat(mapped().settingsFrom(sparkConf).build().toString()).isEqualTo(fromCode.toString());
    assertThat(sparkConf.getAll()).hasSize(conf.size());
  }

  @Test
  void builderCallsAfterSettingsFromWinAndTheDataCenterKeepsTheConnection() {
    CassandraSink<String> s =
        mapped()
            .connection(CassandraSettings.contactPoints("dc1", "10.0.0.5:9042").user("app"))
            .settingsFrom(
                Map.of(
                    "spark.exactlyonce.clicks.localDatacenter", "dc2",
                    "spark.exactlyonce.clicks.table", "ads.from_conf"))
            .table("ads.from_code")
            .build();
    assertThat(s.toString())
        .contains("contactPoints=[10.0.0.5:9042], localDatacenter=dc2, user=app")
        .contains("ads.from_code")
        .doesNotContain("from_conf");
  }

  @Test
  void aMisspelledKeyIsRefusedNamingTheNearestKey() {
    assertThatThrownBy(
            () -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.contactPoint", "a:9042")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("did you mean spark.exactlyonce.clicks.contactPoints?");
  }

  @Test
  void secretLookingKeysAreRefused() {
    for (String key : List.of("password", "trustStorePassword")) {
      assertThatThrownBy(
              () -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks." + key, "hunter2")))
          .as(key)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("looks like a secret")
          .hasMessageContaining("spark.exactlyonce.clicks.passwordEnv")
          .hasMessageNotContaining("hunter2");
    }
  }

  @Test
  void aValueTheSettingsRefuseIsReportedUnderItsKey() {
    Map<String, String> nodes =
        Map.of(
            "spark.exactlyonce.clicks.contactPoints", "10.0.0.5:9042",
            "spark.exactlyonce.clicks.localDatacenter", "dc1");
    assertThatThrownBy(
            () ->
                mapped()
                    .settingsFrom(with(nodes, "spark.exactlyonce.clicks.writeConsistency", "ONE")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.writeConsistency=ONE is not valid")
        .hasMessageContaining("Use LOCAL_QUORUM");
    assertThatThrownBy(
            () ->
                mapped()
                    .settingsFrom(
                        Map.of(
                            "spark.exactlyonce.clicks.contactPoints", "10.0.0.5",
                            "spark.exactlyonce.clicks.localDatacenter", "dc1")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.contactPoints=10.0.0.5 is not valid")
        .hasMessageContaining("host:port");
    assertThatThrownBy(
            () ->
                mapped().settingsFrom(with(nodes, "spark.exactlyonce.clicks.requestTimeout", "0s")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.requestTimeout=0s is not valid")
        .hasMessageContaining("positive duration");
    assertThatThrownBy(
            () -> mapped().settingsFrom(with(nodes, "spark.exactlyonce.clicks.table", "clicks")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("spark.exactlyonce.clicks.table=clicks is not valid");
  }

  @Test
  void contactPointsWithoutADataCenterSayToSetBoth() {
    assertThatThrownBy(
            () -> mapped().settingsFrom(Map.of("spark.exactlyonce.clicks.contactPoints", "a:9042")))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("set both spark.exactlyonce.clicks.contactPoints and")
        .hasMessageContaining("spark.exactlyonce.clicks.localDatacenter");
  }

  private static Map<String, String> with(Map<String, String> m, String key, String value) {
    Map<String, String> copy = new java.util.HashMap<>(m);
    copy.put(key, value);
    return copy;
  }
}
