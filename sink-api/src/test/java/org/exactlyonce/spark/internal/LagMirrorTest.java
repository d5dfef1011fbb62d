package org.exactlyonce.spark.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SourceRange;
import org.junit.jupiter.api.Test;

class LagMirrorTest {
  private static final PipelineId A = PipelineId.of("a");
  private static final PipelineId B = PipelineId.of("b");
  private static final TopicPartition P0 = new TopicPartition("t", 0);
  private static final TopicPartition P1 = new TopicPartition("t", 1);

  /** Records every copy; fails while {@code down}. */
  private static final class Recording implements LagMirror.Target {
    final List<Map<TopicPartition, Long>> copies = new ArrayList<>();
    boolean down;
    boolean closed;

    @Override
    public void commit(Map<TopicPartition, Long> offsets) {
      if (down) {
        throw new IllegalStateException("broker down");
      }
      copies.add(Map.copyOf(offsets));
    }

    @Override
    public void close() {
      closed = true;
    }
  }

  private static PartitionCommit commit(int p, long from, long until, CommitOutcome o) {
    return new PartitionCommit(SourceRange.of("t", p, from, until), o, from, until - from, 0, 1);
  }

  private static BatchResult batch(PipelineId id, PartitionCommit... commits) {
    return BatchResult.ofRanges(id, 1_000, List.of(commits), 5);
  }

  @Test
  void copiesEachRangesEndForCommittedReplayedAndTrimmedRanges() {
    Recording target = new Recording();
    LagMirror mirror = new LagMirror("lag", target);
    mirror.batchCommitted(
        batch(
            A,
            commit(0, 0, 10, CommitOutcome.COMMITTED),
            commit(1, 0, 7, CommitOutcome.ALREADY_COMMITTED)),
        Set.of(A));
    mirror.batchCommitted(
        batch(
            A, commit(0, 10, 15, CommitOutcome.TRIMMED), commit(1, 7, 7, CommitOutcome.COMMITTED)),
        Set.of(A));
    // Only what moved is copied again.
    assertThat(target.copies).containsExactly(Map.of(P0, 10L, P1, 7L), Map.of(P0, 15L));
  }

  @Test
  void copiesTheSlowestOutputPerPartitionAndNothingAnOutputHasNotCommitted() {
    Recording target = new Recording();
    LagMirror mirror = new LagMirror("lag", target);
    Set<PipelineId> outputs = Set.of(A, B);
    mirror.batchCommitted(
        batch(
            A, commit(0, 0, 10, CommitOutcome.COMMITTED), commit(1, 0, 5, CommitOutcome.COMMITTED)),
        outputs);
    assertThat(target.copies).as("b has committed nothing yet").isEmpty();
    mirror.batchCommitted(batch(B, commit(0, 0, 4, CommitOutcome.COMMITTED)), outputs);
    assertThat(target.copies).containsExactly(Map.of(P0, 4L));
  }

  @Test
  void failedRangesAreNeverCopied() {
    Recording target = new Recording();
    LagMirror mirror = new LagMirror("lag", target);
    mirror.batchCommitted(
        batch(A, commit(0, 0, 10, CommitOutcome.GAP), commit(1, 0, 5, CommitOutcome.FENCED)),
        Set.of(A));
    assertThat(target.copies).isEmpty();
  }

  @Test
  void aFailedCopyDoesNotThrowAndTheNextBatchCopiesWhatWasMissed() {
    Recording target = new Recording();
    LagMirror mirror = new LagMirror("lag", target);
    target.down = true;
    mirror.batchCommitted(batch(A, commit(0, 0, 10, CommitOutcome.COMMITTED)), Set.of(A));
    mirror.batchCommitted(batch(A, commit(1, 0, 3, CommitOutcome.COMMITTED)), Set.of(A));
    target.down = false;
    mirror.batchCommitted(batch(A, commit(1, 3, 3, CommitOutcome.COMMITTED)), Set.of(A));
    assertThat(target.copies).containsExactly(Map.of(P0, 10L, P1, 3L));
  }

  @Test
  void afterCloseNothingIsCopied() {
    Recording target = new Recording();
    LagMirror mirror = new LagMirror("lag", target);
    mirror.close();
    mirror.batchCommitted(batch(A, commit(0, 0, 10, CommitOutcome.COMMITTED)), Set.of(A));
    assertThat(target.closed).isTrue();
    assertThat(target.copies).isEmpty();
  }

  @Test
  void theAdminClientGetsTheStreamsConnectionAndSecuritySettingsOnly() {
    Map<String, Object> admin =
        LagMirror.adminParams(
            "lag",
            Map.of(
                "bootstrap.servers", "b:9093",
                "security.protocol", "SSL",
                "ssl.truststore.location", "/t.jks",
                "group.id", "g",
                "client.id", "consumer",
                "max.poll.records", 10));
    assertThat(admin)
        .containsEntry("bootstrap.servers", "b:9093")
        .containsEntry("security.protocol", "SSL")
        .containsEntry("ssl.truststore.location", "/t.jks")
        .containsEntry("client.id", "exactly-once-lag-mirror-lag")
        .doesNotContainKeys("group.id", "max.poll.records");
  }
}
