package org.exactlyonce.spark.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.ObjectOutputStream;
import java.util.List;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class JdbcSinkBuilderTest {
  private static final JdbcSettings DB = JdbcSettings.url("jdbc:postgresql://db/ads").user("app");

  private static JdbcSink.Builder<String> base() {
    return JdbcSink.<String>transactional("clicks").connection(DB);
  }

  @Test
  void sqlInjectionThroughATableNameIsRefused() {
    assertThatThrownBy(
            () -> base().table("clicks; DROP TABLE users").columns("id").values(List::of).build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("is not a plain SQL name");
  }

  @Test
  void sqlInjectionThroughAColumnNameIsRefused() {
    assertThatThrownBy(
            () -> base().table("clicks").columns("id) VALUES (1); --").values(List::of).build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("column name");
  }

  @Test
  void quotedOrOddOffsetsTableNamesAreRefused() {
    for (String bad : new String[] {"\"eos\"", "a.b.c", "1abc", "eos offsets", ""}) {
      assertThatThrownBy(
              () -> base().offsetsTable(bad).table("t").columns("id").values(List::of).build())
          .as(bad)
          .isInstanceOf(SinkConfigurationException.class);
    }
  }

  @Test
  void schemaQualifiedNamesAreAccepted() {
    JdbcSink<String> s =
        base()
            .offsetsTable("ops.eos_offsets")
            .table("ads.clicks")
            .columns("id")
            .values(List::of)
            .build();
    assertThat(s.toString()).contains("ops.eos_offsets").contains("INTO \"ads\".\"clicks\"");
  }

  @Test
  void aSinkWithoutAConnectionSaysHowToGiveOne() {
    assertThatThrownBy(
            () -> JdbcSink.<String>transactional("clicks").table("t").columns("id").build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("connection(JdbcSettings.url(");
  }

  @Test
  void aSinkWithoutAWayToWriteSaysWhatIsMissing() {
    assertThatThrownBy(() -> base().table("t").build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("say how outputs are written");
  }

  @Test
  void writerAndTableMappingTogetherAreAmbiguous() {
    assertThatThrownBy(() -> base().table("t").writer((h, rows) -> {}).build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("choose one");
  }

  @Test
  void aReconnectTimeoutThatIsNotPositiveIsRefusedAndTheDefaultIsAMinute() {
    assertThat(DB.reconnectTimeout()).isEqualTo(java.time.Duration.ofSeconds(60));
    for (java.time.Duration bad :
        new java.time.Duration[] {
          null, java.time.Duration.ZERO, java.time.Duration.ofSeconds(-1)
        }) {
      assertThatThrownBy(() -> DB.reconnectTimeout(bad))
          .as(String.valueOf(bad))
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("reconnectTimeout must be a positive duration");
    }
    assertThat(DB.reconnectTimeout(java.time.Duration.ofSeconds(5)).reconnectTimeout())
        .isEqualTo(java.time.Duration.ofSeconds(5));
  }

  @Test
  void aNonPostgresUrlIsRefused() {
    assertThatThrownBy(() -> JdbcSettings.url("jdbc:mysql://db/x"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("jdbc:postgresql://");
  }

  @Test
  void secretsInTheUrlNeverAppearInToStringNorInErrors() {
    JdbcSettings s = JdbcSettings.url("jdbc:postgresql://db/ads?password=s3cret&sslpassword=k3y");
    assertThat(s.toString())
        .doesNotContain("s3cret")
        .doesNotContain("k3y")
        .contains("jdbc:postgresql://db/ads");
    assertThatThrownBy(() -> JdbcSettings.url("jdbc:mysql://app:s3cret@db/x?password=s3cret"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("jdbc:mysql://db/x")
        .message()
        .doesNotContain("s3cret");
  }

  @Test
  void theStartLineShowsTheEffectiveConfigurationWithoutSecrets() {
    JdbcSettings s =
        JdbcSettings.url("jdbc:postgresql://db/ads?sslpassword=k3y")
            .user("app")
            .password("s3cret")
            .property("sslmode", "require");
    JdbcSink<String> sink =
        base().connection(s).table("t").columns("id").values(List::of).batchSize(500).build();
    assertThat(org.exactlyonce.spark.internal.StartSequence.configurationLine(sink))
        .startsWith("pipeline 'clicks': sink configuration JdbcSink.transactional{")
        .contains("jdbc:postgresql://db/ads", "user=app", "sslmode=require", "eos_offsets")
        .contains("batchSize=500", "reconnectTimeout=")
        .doesNotContain("s3cret")
        .doesNotContain("k3y");
  }

  @Test
  void passwordsNeverAppearInToString() {
    JdbcSettings s =
        DB.password("s3cret").property("sslpassword", "k3y").property("sslmode", "require");
    assertThat(s.toString())
        .doesNotContain("s3cret")
        .doesNotContain("k3y")
        .contains("sslmode=require");
    JdbcSink<String> sink = base().connection(s).table("t").columns("id").values(List::of).build();
    assertThat(sink.toString()).doesNotContain("s3cret");
  }

  @Test
  void aPasswordFromTheEnvironmentDoesNotTravelWithTheSink() throws Exception {
    JdbcSink<String> sink =
        base()
            .connection(DB.password("s3cret").passwordFromEnv("SOME_PG_PASSWORD"))
            .table("t")
            .columns("id")
            .values(List::of)
            .build();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
      out.writeObject(sink);
    }
    String serialised = bytes.toString(java.nio.charset.StandardCharsets.ISO_8859_1);
    assertThat(serialised).contains("SOME_PG_PASSWORD").doesNotContain("s3cret");
    assertThat(sink.toString()).contains("from env SOME_PG_PASSWORD");
  }

  @Test
  void aMissingPasswordVariableIsNamedWithTheFix() {
    JdbcSettings s = DB.passwordFromEnv("EOS_TEST_VARIABLE_THAT_IS_NOT_SET");
    assertThatThrownBy(s::toProperties)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("EOS_TEST_VARIABLE_THAT_IS_NOT_SET")
        .hasMessageContaining("spark.executorEnv");
  }

  @Test
  void anIdempotentSinkRefusesAccumulatingWritesAndNamesTheStrategiesThatAllowThem() {
    assertThatThrownBy(
            () ->
                JdbcSink.<String>idempotent("totals")
                    .connection(DB)
                    .table("totals")
                    .columns("campaign", "total")
                    .values(s -> List.of(s, 1))
                    .upsertOn("campaign")
                    .accumulating("total")
                    .versionFromSourceOffset("version")
                    .build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("not idempotent")
        .hasMessageContaining("JdbcSink.transactional(...)")
        .hasMessageContaining("JdbcSink.perBatch(...)");
  }

  @Test
  void anIdempotentSinkWithoutADeterministicKeyIsRefused() {
    assertThatThrownBy(
            () ->
                JdbcSink.<String>idempotent("users")
                    .connection(DB)
                    .table("users")
                    .columns("user_id")
                    .values(List::of)
                    .upsertOn("user_id")
                    .build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("versionFromSourceOffset")
        .hasMessageContaining("keyedBySourcePosition");
  }

  @Test
  void anIdempotentSinkRefusesACustomWriter() {
    assertThatThrownBy(
            () ->
                JdbcSink.<String>idempotent("users").connection(DB).writer((h, rows) -> {}).build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("cannot check that a custom writer");
  }

  @Test
  void accumulatingWithoutAnUpsertKeyIsRefused() {
    assertThatThrownBy(
            () ->
                JdbcSink.<String>perBatch("totals")
                    .connection(DB)
                    .table("totals")
                    .columns("campaign", "total")
                    .values(s -> List.of(s, 1))
                    .accumulating("total")
                    .build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("upsertOn");
  }

  @Test
  void upsertsGenerateAGuardedConflictClause() {
    String sql =
        JdbcSink.<String>idempotent("users")
            .connection(DB)
            .table("users")
            .columns("user_id", "name")
            .values(s -> List.of(s, s))
            .upsertOn("user_id")
            .versionFromSourceOffset("version")
            .build()
            .toString();
    assertThat(sql)
        .contains(
            "ON CONFLICT (\"user_id\") DO UPDATE SET \"name\" = excluded.\"name\","
                + " \"version\" = excluded.\"version\"")
        .contains("\"source_position\" = excluded.\"source_position\"")
        .contains(
            "WHERE cur.\"version\" < excluded.\"version\" OR (cur.\"version\" ="
                + " excluded.\"version\" AND (cur.\"source_position\" IS NULL OR"
                + " cur.\"source_position\" COLLATE \"C\" < excluded.\"source_position\""
                + " COLLATE \"C\"))");
    String totals =
        JdbcSink.<String>perBatch("totals")
            .connection(DB)
            .table("totals")
            .columns("campaign", "total")
            .values(s -> List.of(s, 1))
            .upsertOn("campaign")
            .accumulating("total")
            .build()
            .toString();
    assertThat(totals)
        .contains(
            "SET \"total\" = COALESCE(cur.\"total\" + excluded.\"total\", cur.\"total\","
                + " excluded.\"total\")");
  }

  @Test
  void stagingNeedsATableMapping() {
    assertThatThrownBy(
            () ->
                JdbcSink.<String>perBatch("x").connection(DB).writer((h, r) -> {}).staged().build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("staged()");
  }
}
