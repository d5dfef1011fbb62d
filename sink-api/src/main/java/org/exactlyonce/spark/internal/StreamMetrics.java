package org.exactlyonce.spark.internal;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NavigableMap;
import java.util.concurrent.ConcurrentSkipListMap;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.SparkContext;
import org.apache.spark.metrics.MetricsSystem;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.PipelineId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The metrics sources of one stream's pipelines, and the end offsets Spark saw when it cut each
 * batch (for lag). Registered with the driver's Spark metrics system while the streaming context
 * runs, the way Spark registers its own {@code StreamingSource}: when the context starts, removed
 * when it stops. Thread-safe.
 */
public final class StreamMetrics implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(StreamMetrics.class);

  /** Batches whose end offsets are kept: a batch is published long before this many are cut. */
  private static final int KEPT_BATCHES = 64;

  private final Map<PipelineId, PipelineMetrics> pipelines = new LinkedHashMap<>();
  private final NavigableMap<Long, Map<TopicPartition, Long>> ends = new ConcurrentSkipListMap<>();
  private final boolean register;
  private MetricsSystem registeredIn;

  /**
   * @param register whether to register the sources with Spark's metrics system (false: count only,
   *     nothing is visible)
   */
  public StreamMetrics(Collection<PipelineId> pipelines, boolean register) {
    pipelines.forEach(p -> this.pipelines.put(p, new PipelineMetrics(p)));
    this.register = register;
  }

  /** The source of {@code pipeline}, or null if the stream does not write it. */
  PipelineMetrics of(PipelineId pipeline) {
    return pipelines.get(pipeline);
  }

  /** Records the end offsets Spark saw when it cut the batch of {@code batchTimeMs}. */
  public void batchCut(long batchTimeMs, Map<TopicPartition, Long> endOffsets) {
    ends.put(batchTimeMs, Map.copyOf(endOffsets));
    while (ends.size() > KEPT_BATCHES) {
      ends.pollFirstEntry();
    }
  }

  /** Counts a committed batch of one pipeline. */
  void batchCommitted(
      BatchResult result,
      long deadLetters,
      java.util.function.ToLongFunction<TopicPartition> committed) {
    PipelineMetrics m = pipelines.get(result.pipelineId());
    if (m != null) {
      m.batchCommitted(
          result, deadLetters, ends.getOrDefault(result.batchTimeMs(), Map.of()), committed);
    }
  }

  /**
   * The records {@code pipeline} is behind after its last counted batch, over all its partitions,
   * or -1 if not known (no end offsets seen yet, or a pipeline this stream does not write).
   */
  long totalLag(PipelineId pipeline) {
    PipelineMetrics m = pipelines.get(pipeline);
    return m == null ? -1 : m.totalLag();
  }

  /** Registers every pipeline's source with {@code sc}'s metrics system. */
  public synchronized void start(SparkContext sc) {
    if (!register || registeredIn != null) {
      return;
    }
    registeredIn = sc.env().metricsSystem();
    pipelines.values().forEach(registeredIn::registerSource);
    LOG.debug(
        "metrics sources registered: {}",
        pipelines.values().stream().map(PipelineMetrics::sourceName).toList());
  }

  /**
   * Removes the sources from the metrics system. Spark removes a source by name prefix: that
   * removes the sources of every pipeline of this stream, and only those (one streaming context
   * runs per JVM, and every source of the library's starts with {@code exactlyonce.}).
   */
  @Override
  public synchronized void close() {
    pipelines.values().forEach(PipelineMetrics::close);
    if (registeredIn != null) {
      pipelines.values().forEach(registeredIn::removeSource);
      registeredIn = null;
    }
  }
}
