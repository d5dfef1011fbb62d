package org.exactlyonce.spark;

import java.util.Map;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;
import org.exactlyonce.spark.internal.ExecutorMetrics;

/**
 * Executor-side metrics of the per-record sinks (transactional and idempotent), as a Spark plugin:
 * what each executor's tasks wrote and how long their commits took, in the executors' own metrics
 * (whatever {@code metrics.properties} configures for executors sees them: JMX, the Prometheus
 * servlet, Graphite, CSV). Opt-in, because Spark takes plugins from the application's configuration
 * only, which the library never writes:
 *
 * <pre>{@code
 * spark-submit --conf spark.plugins=org.exactlyonce.spark.ExactlyOnceExecutorMetrics ...
 * }</pre>
 *
 * <p>Spark names the source {@code plugin.org.exactlyonce.spark.ExactlyOnceExecutorMetrics}, after
 * the application id and the executor id: JMX shows {@code metrics:name=<app id>.<executor
 * id>.plugin.org.exactlyonce.spark.ExactlyOnceExecutorMetrics.rowsWritten,type=counters} (on a
 * local master, whose executor starts before the application id is known, without the two ids). The
 * values add up every pipeline whose tasks ran on the executor, and count task attempts. For a
 * transactional sink, a retried or speculative attempt that finds its range committed counts as a
 * replay, not as rows. An idempotent sink's attempts count the writes they made: a retried attempt
 * rewrites its range and counts it again, and its skipped replays are decided on the driver, so
 * {@link #REPLAYS_SKIPPED} stays 0 for it; its offsets are committed on the driver afterwards. A
 * per-batch sink commits on the driver; its figures are the driver's ({@link ExactlyOnceMetrics}).
 */
public final class ExactlyOnceExecutorMetrics implements SparkPlugin {

  /** Counter: outputs the executor's task attempts wrote in ranges they committed. */
  public static final String ROWS_WRITTEN = "rowsWritten";

  /** Counter: Kafka records the executor's task attempts read for ranges they committed. */
  public static final String RECORDS_READ = "recordsRead";

  /**
   * Counter: non-empty ranges the executor's task attempts committed (or trimmed and committed).
   */
  public static final String RANGES_COMMITTED = "rangesCommitted";

  /** Counter: non-empty ranges the executor's task attempts found already committed. */
  public static final String REPLAYS_SKIPPED = "replaysSkipped";

  /** Histogram: outputs written per committed range, one value per task attempt that wrote. */
  public static final String TASK_ROWS_WRITTEN = "taskRowsWritten";

  /**
   * Histogram: milliseconds from a task attempt's first output to its range's commit (transaction
   * or offset commit included), one value per non-empty range an attempt handled.
   */
  public static final String TASK_COMMIT_MS = "taskCommitMs";

  /** Used by Spark, from {@code spark.plugins}. */
  public ExactlyOnceExecutorMetrics() {}

  @Override
  public DriverPlugin driverPlugin() {
    return null; // the driver's figures are ExactlyOnceMetrics'
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new ExecutorPlugin() {
      @Override
      public void init(PluginContext ctx, Map<String, String> extraConf) {
        ExecutorMetrics.register(ctx.metricRegistry());
      }

      @Override
      public void shutdown() {
        ExecutorMetrics.unregister();
      }
    };
  }
}
