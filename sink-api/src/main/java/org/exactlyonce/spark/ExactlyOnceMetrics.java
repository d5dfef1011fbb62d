package org.exactlyonce.spark;

/**
 * The names of the metrics every exactly-once stream reports through Spark's metrics system, one
 * metrics source per pipeline. Whatever {@code metrics.properties} (or {@code
 * spark.metrics.conf.*}) configures on the driver sees them: JMX, the Prometheus servlet, Graphite,
 * CSV, the console.
 *
 * <p>A pipeline's source is named {@code exactlyonce.<pipeline id>} ({@link #SOURCE_PREFIX}); Spark
 * puts the application id and {@code driver} in front of it, so the JMX name of the batches of
 * pipeline {@code clicks} is {@code metrics:name=<app
 * id>.driver.exactlyonce.clicks.batchesCommitted, type=counters}. The source is registered when the
 * streaming context starts and removed when it stops; the counters start at zero with every stream.
 * Every value is learnt on the driver from the batches' commit outcomes.
 *
 * <p>On by default; {@link #ENABLED_SETTING}{@code =false} in the application's Spark configuration
 * registers no source (the library only reads the setting).
 */
public final class ExactlyOnceMetrics {
  private ExactlyOnceMetrics() {}

  /**
   * Spark setting {@value}: {@code false} registers no metrics source (default {@code true}). Read,
   * never written, when the stream is created.
   */
  public static final String ENABLED_SETTING = "spark.exactlyonce.metrics.enabled";

  /** A pipeline's source name is this prefix, a dot and the pipeline id. */
  public static final String SOURCE_PREFIX = "exactlyonce";

  /**
   * Counter: batches whose every range committed or was already committed (empty batches included).
   */
  public static final String BATCHES_COMMITTED = "batchesCommitted";

  /**
   * Counter: Kafka records read and written by the committed batches. A range replayed and skipped
   * counts zero, as does the already committed part of a trimmed range.
   */
  public static final String RECORDS_READ = "recordsRead";

  /**
   * Counter: outputs written by the committed batches, as the attempts whose results reached the
   * driver report them. A task that committed and died before reporting is retried, and its retry
   * is counted as a skipped replay with zero rows.
   */
  public static final String ROWS_WRITTEN = "rowsWritten";

  /**
   * Counter: ranges found already committed (a retried or speculative task, a restart, a second
   * sink ahead of the stream), so nothing was written for them.
   */
  public static final String REPLAYS_SKIPPED = "replaysSkipped";

  /**
   * Counter: ranges of which an older attempt had committed a prefix, so only the rest was written.
   */
  public static final String RANGES_TRIMMED = "rangesTrimmed";

  /**
   * Counter: records the mapper failed on that went to the sink's dead letters, in committed ranges
   * (per-record outputs only; a per-batch sink has no dead letters).
   */
  public static final String DEAD_LETTERS = "deadLetters";

  /**
   * Counter: ranges refused because a newer driver took the pipeline's writer epoch. The pipeline
   * stops on the first.
   */
  public static final String FENCED = "fenced";

  /**
   * Counters {@code failures.<kind>}: batches that failed and stopped the pipeline, by kind of
   * error: {@value #FAILURE_FENCED}, {@value #FAILURE_OFFSET_MISMATCH}, {@value
   * #FAILURE_BACKEND_UNAVAILABLE}, {@value #FAILURE_CONFIGURATION} or {@value #FAILURE_OTHER} (for
   * example a task that failed after Spark's retries). Every kind is registered from the start, at
   * zero.
   */
  public static final String FAILURES = "failures";

  /** Failure kind: a {@link WriterFencedException}. */
  public static final String FAILURE_FENCED = "fenced";

  /** Failure kind: an {@link OffsetMismatchException} (a gap, or a stored offset moved back). */
  public static final String FAILURE_OFFSET_MISMATCH = "offsetMismatch";

  /** Failure kind: a {@link BackendUnavailableException}. */
  public static final String FAILURE_BACKEND_UNAVAILABLE = "backendUnavailable";

  /** Failure kind: a {@link SinkConfigurationException}. */
  public static final String FAILURE_CONFIGURATION = "configuration";

  /** Failure kind: any other error. */
  public static final String FAILURE_OTHER = "other";

  /**
   * Histogram: the time one range's commit took, in milliseconds (transaction included; for an
   * idempotent sink, the write plus its share of the offset commit), one value per non-empty range.
   */
  public static final String COMMIT_LATENCY_MS = "commitLatencyMs";

  /**
   * Gauges {@code lag.<topic>-<partition>}: records the partition's committed offset was behind the
   * partition's end offset at its latest committed batch (the end Spark saw when it cut the batch).
   * A partition's gauge appears with its first committed batch.
   */
  public static final String LAG = "lag";

  /**
   * Gauges {@code lagMs.<topic>-<partition>}: how long, in milliseconds, the partition's oldest
   * uncommitted record has waited at least: the time since the earliest committed batch whose end
   * offset (as Spark saw it when it cut the batch) lay past the committed offset, 0 when the
   * committed offset has reached the latest end seen. Computed when read, so it keeps growing while
   * the pipeline is stuck behind; records that arrived after the last committed batch are not seen
   * until the next one. A partition's gauge appears with its first committed batch.
   */
  public static final String LAG_MS = "lagMs";

  /**
   * Gauge: Spark's batch time of the last committed batch, in epoch milliseconds; 0 before the
   * first.
   */
  public static final String LAST_COMMITTED_BATCH_TIME_MS = "lastCommittedBatchTimeMs";

  /** The source name of {@code pipeline}: {@code exactlyonce.<pipeline id>}. */
  public static String sourceName(PipelineId pipeline) {
    return SOURCE_PREFIX + "." + pipeline.value();
  }

  /** The name, within its source, of the lag gauge of {@code topic}'s {@code partition}. */
  public static String lagName(String topic, int partition) {
    return LAG + "." + topic + "-" + partition;
  }

  /** The name, within its source, of the time-lag gauge of {@code topic}'s {@code partition}. */
  public static String lagMsName(String topic, int partition) {
    return LAG_MS + "." + topic + "-" + partition;
  }

  /** The name, within its source, of the failure counter of {@code kind}. */
  public static String failureName(String kind) {
    return FAILURES + "." + kind;
  }
}
