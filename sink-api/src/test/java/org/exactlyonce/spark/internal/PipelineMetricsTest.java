package org.exactlyonce.spark.internal;

import static org.assertj.core.api.Assertions.assertThat;

import com.codahale.metrics.Gauge;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.BackendUnavailableException;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceMetrics;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.junit.jupiter.api.Test;

class PipelineMetricsTest {
  private static final PipelineId ID = PipelineId.of("p");

  @Test
  void failureKindIsTheFirstOfTheLibrarysTypesInTheCauseChain() {
    // Spark wraps a task's error in its own "Job aborted" exception.
    assertThat(
            PipelineMetrics.kindOf(
                new RuntimeException("Job aborted", new WriterFencedException("newer driver"))))
        .isEqualTo(ExactlyOnceMetrics.FAILURE_FENCED);
    assertThat(PipelineMetrics.kindOf(new OffsetMismatchException("gap", List.of())))
        .isEqualTo(ExactlyOnceMetrics.FAILURE_OFFSET_MISMATCH);
    assertThat(PipelineMetrics.kindOf(new BackendUnavailableException("down", null)))
        .isEqualTo(ExactlyOnceMetrics.FAILURE_BACKEND_UNAVAILABLE);
    assertThat(PipelineMetrics.kindOf(new SinkConfigurationException("bad")))
        .isEqualTo(ExactlyOnceMetrics.FAILURE_CONFIGURATION);
    assertThat(PipelineMetrics.kindOf(new IllegalStateException("mapper")))
        .isEqualTo(ExactlyOnceMetrics.FAILURE_OTHER);
  }

  @Test
  void lagIsTheEndAtTheBatchMinusWhatIsStoredAfterIt() {
    PipelineMetrics m = new PipelineMetrics(ID);
    TopicPartition t0 = new TopicPartition("t", 0);
    TopicPartition t1 = new TopicPartition("t", 1);
    BatchResult batch =
        BatchResult.ofRanges(
            ID,
            1_000,
            List.of(
                new PartitionCommit(
                    SourceRange.of("t", 0, 0, 50), CommitOutcome.COMMITTED, 0, 50, 50, 3),
                // A sink ahead of the stream: stored 150, past the range's end.
                new PartitionCommit(
                    SourceRange.of("t", 1, 0, 50), CommitOutcome.ALREADY_COMMITTED, 150, 0, 0, 1)),
            10);
    m.batchCommitted(batch, 2, Map.of(t0, 150L, t1, 160L), tp -> 50);

    assertThat(gauge(m, ExactlyOnceMetrics.lagName("t", 0))).isEqualTo(100L);
    assertThat(gauge(m, ExactlyOnceMetrics.lagName("t", 1))).isEqualTo(10L);
    assertThat(gauge(m, ExactlyOnceMetrics.LAST_COMMITTED_BATCH_TIME_MS)).isEqualTo(1_000L);
    assertThat(m.totalLag()).isEqualTo(110L);
    assertThat(PipelineGuard.batchLine(batch, m.totalLag()))
        .startsWith("pipeline 'p' batch 1970-01-01T00:00:01Z: records=")
        .endsWith(" ms lag=110");
    assertThat(PipelineGuard.batchLine(batch, new PipelineMetrics(ID).totalLag()))
        .doesNotContain("lag=");
    var counters = m.metricRegistry().getCounters();
    assertThat(counters.get(ExactlyOnceMetrics.BATCHES_COMMITTED).getCount()).isEqualTo(1);
    assertThat(counters.get(ExactlyOnceMetrics.ROWS_WRITTEN).getCount()).isEqualTo(50);
    assertThat(counters.get(ExactlyOnceMetrics.REPLAYS_SKIPPED).getCount()).isEqualTo(1);
    assertThat(counters.get(ExactlyOnceMetrics.DEAD_LETTERS).getCount()).isEqualTo(2);
    assertThat(
            m.metricRegistry().getHistograms().get(ExactlyOnceMetrics.COMMIT_LATENCY_MS).getCount())
        .isEqualTo(2);
  }

  @Test
  void timeLagIsTheAgeOfTheFirstBatchWhoseEndLayPastTheCommittedOffsetAndZeroOnceCaughtUp() {
    long[] now = {0};
    PipelineMetrics m = new PipelineMetrics(ID, () -> now[0]);
    TopicPartition t0 = new TopicPartition("t", 0);
    String name = ExactlyOnceMetrics.lagMsName("t", 0);
    // Batch at 1 s saw the end at 150 and committed 50: the record at 50 existed at 1 s.
    m.batchCommitted(committed(1_000, 0, 50), 0, Map.of(t0, 150L), tp -> 50);
    now[0] = 1_400;
    assertThat(gauge(m, name)).isEqualTo(400L);
    now[0] = 2_700; // nothing committed since: the wait keeps growing
    assertThat(gauge(m, name)).isEqualTo(1_700L);
    // Batch at 2 s saw the end at 300 and committed 150: every record seen at 1 s is written, the
    // record at 150 was first seen at 2 s.
    m.batchCommitted(committed(2_000, 50, 150), 0, Map.of(t0, 300L), tp -> 150);
    assertThat(gauge(m, name)).isEqualTo(700L);
    // Batch at 3 s saw no new records and committed up to 300: caught up.
    m.batchCommitted(committed(3_000, 150, 300), 0, Map.of(t0, 300L), tp -> 300);
    assertThat(gauge(m, name)).isEqualTo(0L);
    assertThat(gauge(m, ExactlyOnceMetrics.lagName("t", 0))).isEqualTo(0L);
  }

  @Test
  void aBatchWithoutKnownEndsStillEndsTheWaitOfTheRecordsItCommitted() {
    long[] now = {1_500};
    PipelineMetrics m = new PipelineMetrics(ID, () -> now[0]);
    TopicPartition t0 = new TopicPartition("t", 0);
    String name = ExactlyOnceMetrics.lagMsName("t", 0);
    m.batchCommitted(committed(1_000, 0, 50), 0, Map.of(t0, 150L), tp -> 50);
    assertThat(gauge(m, name)).isEqualTo(500L);
    // Spark's end offsets unknown for this batch; it committed everything seen at 1 s.
    m.batchCommitted(committed(2_000, 50, 150), 0, Map.of(), tp -> 150);
    now[0] = 9_000;
    assertThat(gauge(m, name)).isEqualTo(0L);
  }

  private static BatchResult committed(long batchTime, long from, long until) {
    return BatchResult.ofRanges(
        ID,
        batchTime,
        List.of(
            new PartitionCommit(
                SourceRange.of("t", 0, from, until),
                CommitOutcome.COMMITTED,
                from,
                until - from,
                until - from,
                1)),
        1);
  }

  @Test
  void everyFailureKindIsRegisteredAtZeroAndCountedByKind() {
    PipelineMetrics m = new PipelineMetrics(ID);
    m.failed(new WriterFencedException("x"));
    var counters = m.metricRegistry().getCounters();
    assertThat(
            counters
                .get(ExactlyOnceMetrics.failureName(ExactlyOnceMetrics.FAILURE_FENCED))
                .getCount())
        .isEqualTo(1);
    assertThat(
            counters
                .get(ExactlyOnceMetrics.failureName(ExactlyOnceMetrics.FAILURE_OTHER))
                .getCount())
        .isZero();
  }

  @Test
  void noGaugeIsAddedAfterTheSourceWasRemoved() {
    PipelineMetrics m = new PipelineMetrics(ID);
    m.close();
    m.batchCommitted(
        BatchResult.ofRanges(
            ID,
            1,
            List.of(
                new PartitionCommit(
                    SourceRange.of("t", 0, 0, 5), CommitOutcome.COMMITTED, 0, 5, 5, 1)),
            1),
        0,
        Map.of(new TopicPartition("t", 0), 5L),
        tp -> 5);
    assertThat(m.metricRegistry().getGauges())
        .doesNotContainKey(ExactlyOnceMetrics.lagName("t", 0));
  }

  private static Object gauge(PipelineMetrics m, String name) {
    Gauge<?> g = m.metricRegistry().getGauges().get(name);
    assertThat(g).as(name).isNotNull();
    return g.getValue();
  }
}
