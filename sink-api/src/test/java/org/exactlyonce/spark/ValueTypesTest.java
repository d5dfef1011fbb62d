package org.exactlyonce.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class ValueTypesTest {

  @Test
  void rangeWithFromAfterUntilIsRejectedWithTheRange() {
    assertThatThrownBy(() -> SourceRange.of("clicks", 3, 200, 100))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("[200, 100)")
        .hasMessageContaining("clicks-3");
  }

  @Test
  void rangeReadsAsTopicPartitionAndHalfOpenInterval() {
    assertThat(SourceRange.of("clicks", 3, 100, 200)).hasToString("clicks-3[100, 200)");
    assertThat(SourceRange.of("clicks", 3, 100, 100).isEmpty()).isTrue();
  }

  @Test
  void pipelineIdRejectsNamesThatAreNotPlain() {
    for (String bad : new String[] {"", " x", "a b", "x;drop", "-lead", "a".repeat(201)}) {
      assertThatThrownBy(() -> PipelineId.of(bad))
          .as(bad)
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("is not valid");
    }
    assertThat(PipelineId.of("clicks-to-postgres.v2_1").value())
        .isEqualTo("clicks-to-postgres.v2_1");
  }

  @Test
  void batchResultCountsReplaysTrimsAndRows() {
    SourceRange a = SourceRange.of("t", 0, 0, 10);
    SourceRange b = SourceRange.of("t", 1, 0, 10);
    SourceRange c = SourceRange.of("t", 2, 0, 10);
    BatchResult r =
        BatchResult.ofRanges(
            PipelineId.of("p"),
            1000,
            List.of(
                new PartitionCommit(a, CommitOutcome.COMMITTED, 0, 10, 20, 3),
                new PartitionCommit(b, CommitOutcome.ALREADY_COMMITTED, 10, 0, 0, 1),
                new PartitionCommit(c, CommitOutcome.TRIMMED, 4, 6, 6, 7)),
            12);
    assertThat(r.recordsIn()).isEqualTo(16);
    assertThat(r.rowsWritten()).isEqualTo(26);
    assertThat(r.replaysSkipped()).isEqualTo(1);
    assertThat(r.rangesTrimmed()).isEqualTo(1);
    assertThat(r.maxCommitMillis()).isEqualTo(7);
    assertThat(r)
        .hasToString(
            "pipeline 'p' batch 1970-01-01T00:00:01Z: records=16 rows=26 replaysSkipped=1"
                + " trimmed=1 ranges=3 maxCommitMs=7 took 12 ms");
  }
}
