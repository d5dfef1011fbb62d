package org.exactlyonce.spark.internal;

import com.codahale.metrics.MetricRegistry;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceExecutorMetrics;

/**
 * The executor's side of {@link ExactlyOnceExecutorMetrics}: tasks report here, and nothing is
 * recorded unless the plugin registered this JVM's registry (Spark starts one plugin instance per
 * executor; on a local master the executor shares the driver's JVM).
 */
public final class ExecutorMetrics {
  private static volatile MetricRegistry registry;

  private ExecutorMetrics() {}

  /** Called by the plugin when the executor starts: the metrics appear at zero. */
  public static void register(MetricRegistry spark) {
    spark.counter(ExactlyOnceExecutorMetrics.ROWS_WRITTEN);
    spark.counter(ExactlyOnceExecutorMetrics.RECORDS_READ);
    spark.counter(ExactlyOnceExecutorMetrics.RANGES_COMMITTED);
    spark.counter(ExactlyOnceExecutorMetrics.REPLAYS_SKIPPED);
    spark.histogram(ExactlyOnceExecutorMetrics.TASK_ROWS_WRITTEN);
    spark.histogram(ExactlyOnceExecutorMetrics.TASK_COMMIT_MS);
    registry = spark;
  }

  /** Called by the plugin when the executor stops. */
  public static void unregister() {
    registry = null;
  }

  /** A task attempt handled a non-empty range with {@code outcome}. */
  static void taskCommitted(CommitOutcome outcome, long recordsRead, long rows, long millis) {
    MetricRegistry r = registry;
    if (r == null) {
      return;
    }
    r.histogram(ExactlyOnceExecutorMetrics.TASK_COMMIT_MS).update(millis);
    if (outcome == CommitOutcome.COMMITTED || outcome == CommitOutcome.TRIMMED) {
      r.counter(ExactlyOnceExecutorMetrics.RANGES_COMMITTED).inc();
      r.counter(ExactlyOnceExecutorMetrics.ROWS_WRITTEN).inc(rows);
      r.counter(ExactlyOnceExecutorMetrics.RECORDS_READ).inc(recordsRead);
      r.histogram(ExactlyOnceExecutorMetrics.TASK_ROWS_WRITTEN).update(rows);
    } else if (outcome == CommitOutcome.ALREADY_COMMITTED) {
      r.counter(ExactlyOnceExecutorMetrics.REPLAYS_SKIPPED).inc();
    }
  }
}
