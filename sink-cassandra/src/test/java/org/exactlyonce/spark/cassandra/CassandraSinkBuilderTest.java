package org.exactlyonce.spark.cassandra;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class CassandraSinkBuilderTest {
  private static final CassandraSettings C =
      CassandraSettings.contactPoints("dc1", "10.0.0.5:9042");

  private static CassandraSink.Builder<String> base() {
    return CassandraSink.<String>idempotent("clicks")
        .connection(C)
        .table("ads.clicks")
        .columns("id")
        .values(List::of);
  }

  @Test
  void aSinkWithoutAKeyModeSaysWhichToChoose() {
    assertThatThrownBy(() -> base().build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("keyedBySourcePosition")
        .hasMessageContaining("runningTotal");
  }

  @Test
  void valuesByNameAreRefusedNamingThePositionalAlternative() {
    assertThatThrownBy(
            () ->
                base()
                    .values(org.exactlyonce.spark.RowValues.<String>byName((s, name) -> s))
                    .timestampFromSourceOffset()
                    .build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("values by name")
        .hasMessageContaining("values(row -> List.of(...)) in column order");
  }

  @Test
  void twoKeyModesAreRefused() {
    assertThatThrownBy(() -> base().timestampFromSourceOffset().runningTotal("n", s -> 1))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("choose one");
  }

  @Test
  void cqlInjectionThroughNamesIsRefused() {
    assertThatThrownBy(
            () -> base().table("ads.clicks; DROP KEYSPACE ads").timestampFromSourceOffset().build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("not keyspace.table");
    assertThatThrownBy(
            () -> base().columns("id) VALUES (1); --").timestampFromSourceOffset().build())
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("not a plain CQL name");
  }

  @Test
  void contactPointsMustBeHostAndPort() {
    assertThatThrownBy(() -> CassandraSettings.contactPoints("dc1", "10.0.0.5"))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("host:port");
  }

  @Test
  void consistencyLevelsThatCouldLoseCommittedOutputsAreRefused() {
    for (String weak : List.of("ONE", "TWO", "THREE", "ANY", "LOCAL_ONE", "SERIAL", "nonsense")) {
      assertThatThrownBy(
              () -> base().connection(C.writeConsistency(weak)).timestampFromSourceOffset().build())
          .as(weak)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("writeConsistency")
          .hasMessageContaining(weak)
          .hasMessageContaining("LOCAL_QUORUM");
    }
    for (String weak : List.of("ONE", "QUORUM", "LOCAL_QUORUM", "ANY", "nonsense")) {
      assertThatThrownBy(
              () -> base().connection(C.serialConsistency(weak)).runningTotal("n", x -> 1).build())
          .as(weak)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("serialConsistency")
          .hasMessageContaining(weak)
          .hasMessageContaining("LOCAL_SERIAL");
    }
  }

  @Test
  void quorumAndSerialLevelsAreAccepted() {
    for (String level : List.of("QUORUM", "LOCAL_QUORUM", "EACH_QUORUM", "ALL", "local_quorum")) {
      CassandraSettings s = C.writeConsistency(level);
      assertThat(s.writeConsistency()).isEqualTo(level.toUpperCase(java.util.Locale.ROOT));
      assertThat(base().connection(s).timestampFromSourceOffset().build()).isNotNull();
    }
    for (String level : List.of("SERIAL", "LOCAL_SERIAL")) {
      CassandraSettings s = C.serialConsistency(level);
      assertThat(s.serialConsistency()).isEqualTo(level);
      assertThat(base().connection(s).timestampFromSourceOffset().build()).isNotNull();
    }
  }

  @Test
  void passwordsNeverAppearInToStringAndDefaultsAreLocalQuorum() {
    CassandraSettings s = C.user("app").password("s3cret");
    assertThat(s.toString()).doesNotContain("s3cret").contains("writeConsistency=LOCAL_QUORUM");
    CassandraSink<String> sink = base().connection(s).timestampFromSourceOffset().build();
    assertThat(org.exactlyonce.spark.internal.StartSequence.configurationLine(sink))
        .contains("sink configuration", "offsets=", "requestTimeout=")
        .doesNotContain("s3cret");
    assertThat(sink.toString()).doesNotContain("s3cret");
  }
}
