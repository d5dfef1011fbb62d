package org.exactlyonce.spark.internal;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.PipelineStoppedException;
import org.exactlyonce.spark.SinkConfigurationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Driver-side state of one exactly-once stream: the first failure (after which nothing may write),
 * the offsets this driver saw committed, and the batch listeners. Thread-safe.
 */
public final class PipelineGuard {
  private static final Logger LOG = LoggerFactory.getLogger(PipelineGuard.class);

  private final JavaStreamingContext ssc;
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final Map<PipelineId, Map<TopicPartition, Long>> committed = new ConcurrentHashMap<>();
  private final List<Consumer<BatchResult>> listeners = new CopyOnWriteArrayList<>();
  private final Set<PipelineId> outputs = ConcurrentHashMap.newKeySet();
  private final Map<PipelineId, Set<TopicPartition>> stored = new ConcurrentHashMap<>();
  private final Map<PipelineId, Long> keptAlive = new ConcurrentHashMap<>();
  private volatile LagMirror mirror;
  private final StreamMetrics metrics;

  /** A guard whose pipelines' metrics go to {@code metrics}. */
  public PipelineGuard(JavaStreamingContext ssc, StreamMetrics metrics) {
    this.ssc = ssc;
    this.metrics = metrics;
  }

  /**
   * A guard without a streaming context, for a Structured Streaming query: a failed batch throws
   * from the query's own batch function, which stops the query, so there is no context to stop.
   */
  public static PipelineGuard withoutContext(StreamMetrics metrics) {
    return new PipelineGuard(null, metrics);
  }

  /**
   * {@code guard}, or an error if it is null: the output function was rebuilt by Spark from a
   * checkpoint, without its driver-side state.
   */
  public static PipelineGuard of(PipelineGuard guard) {
    if (guard == null) {
      throw new SinkConfigurationException(
          "this exactly-once output was restored from a Spark checkpoint"
              + " (StreamingContext.getOrCreate): it would resume from the checkpoint's offsets"
              + " instead of the sinks', with no writer epoch, so it writes nothing. Delete the"
              + " checkpoint and create the context with new JavaStreamingContext(...) and"
              + " ExactlyOnce.directStream(...): the sinks store the offsets themselves.");
    }
    return guard;
  }

  /** The streaming context this guard stops; null for a guard {@link #withoutContext}. */
  public JavaStreamingContext context() {
    return ssc;
  }

  /** Records the one output operation of {@code pipeline}; false if it already had one. */
  public boolean registerOutput(PipelineId pipeline) {
    return outputs.add(pipeline);
  }

  /** Records that {@code pipeline} has stored offsets for {@code partitions}. */
  public void markStored(PipelineId pipeline, Collection<TopicPartition> partitions) {
    stored.computeIfAbsent(pipeline, p -> ConcurrentHashMap.newKeySet()).addAll(partitions);
  }

  /**
   * Whether {@code pipeline}'s stored offsets are due to be kept alive, {@code interval} after the
   * last keep-alive that succeeded (or after the first batch: the start wrote every stored offset).
   * A keep-alive that fails stays due, so the next chance tries again.
   */
  public boolean keepAliveDue(PipelineId pipeline, java.time.Duration interval) {
    long now = System.nanoTime();
    Long last = keptAlive.putIfAbsent(pipeline, now);
    return last != null && now - last >= interval.toNanos();
  }

  /** Records that {@code pipeline}'s stored offsets were just kept alive. */
  public void keptAlive(PipelineId pipeline) {
    keptAlive.put(pipeline, System.nanoTime());
  }

  /** The partitions this driver knows {@code pipeline} has a stored offset for. */
  public Set<TopicPartition> storedPartitions(PipelineId pipeline) {
    return Set.copyOf(stored.getOrDefault(pipeline, Set.of()));
  }

  /** Whether this driver knows {@code pipeline} has a stored offset for {@code tp}. */
  public boolean isStored(PipelineId pipeline, TopicPartition tp) {
    return stored.getOrDefault(pipeline, Set.of()).contains(tp);
  }

  /**
   * Throws if an earlier batch failed (after a failure no batch may write or advance offsets), or
   * if Spark checkpointing was turned on after the stream was created.
   */
  public void checkRunning() {
    if (failure.get() == null && ssc != null && ssc.ssc().isCheckpointingEnabled()) {
      fail(
          new SinkConfigurationException(
              "Spark checkpointing was enabled (ssc.checkpoint(...)) after the exactly-once stream"
                  + " was created: a restore from the checkpoint would resume from its offsets"
                  + " instead of the sinks'. Remove ssc.checkpoint(...): the sinks store the"
                  + " offsets themselves."));
    }
    Throwable first = failure.get();
    if (first instanceof ExactlyOnceException typed) {
      // Rethrown as is: Spark reports every failed batch to awaitTermination(), the last one
      // winning, and the caller must see the type that says what to do (fenced, offset mismatch).
      throw typed;
    }
    if (first != null) {
      throw new PipelineStoppedException(
          "an earlier batch failed, so this batch writes nothing; restart the job to resume from"
              + " the stored offsets",
          first);
    }
  }

  /**
   * Counts the failed batch of {@code pipeline} in its metrics, then {@link #fail(Throwable)}.
   * Every failed batch is counted, not only the first.
   */
  public void fail(PipelineId pipeline, Throwable error) {
    PipelineMetrics m = metrics.of(pipeline);
    if (m != null) {
      m.failed(error);
    }
    fail(error);
  }

  /** Counts {@code ranges} of {@code pipeline} refused because a newer driver holds it. */
  void fenced(PipelineId pipeline, int ranges) {
    PipelineMetrics m = metrics.of(pipeline);
    if (m != null) {
      m.fenced(ranges);
    }
  }

  /**
   * Records the first failure and stops the streaming context in the background (stopping from a
   * batch's own thread would wait for that batch, which waits for the stop). The SparkContext is
   * left to its owner: {@code awaitTermination()} throws the failure, and a job's main method
   * usually exits on it.
   */
  public void fail(Throwable error) {
    if (!failure.compareAndSet(null, error)) {
      return;
    }
    if (ssc == null) {
      LOG.error("exactly-once output failed; the query stops", error);
    } else {
      LOG.error("exactly-once output failed; stopping the streaming context", error);
      Thread stopper =
          new Thread(
              () -> {
                try {
                  ssc.stop(false, false);
                } catch (RuntimeException e) {
                  LOG.warn("stopping the streaming context after a failure failed", e);
                }
              },
              "exactly-once-stop");
      stopper.setDaemon(true);
      stopper.start();
    }
  }

  /** The first failure, or null. */
  public Throwable failure() {
    return failure.get();
  }

  /** The offset this driver last saw committed for {@code tp}, or -1. */
  public long lastCommitted(PipelineId pipeline, TopicPartition tp) {
    return committed.getOrDefault(pipeline, Map.of()).getOrDefault(tp, -1L);
  }

  public void recordCommitted(PipelineId pipeline, TopicPartition tp, long offset) {
    committed
        .computeIfAbsent(pipeline, p -> new ConcurrentHashMap<>())
        .merge(tp, offset, Math::max);
  }

  /**
   * Copies the offsets of every batch that passed the check to {@code mirror}'s consumer group,
   * after the batch's log line and before its listeners.
   */
  public void mirrorTo(LagMirror mirror) {
    this.mirror = mirror;
  }

  /**
   * The batch's INFO line: {@link BatchResult#toString()} and, when known, {@code lag=N}, the
   * records the pipeline is behind after the batch (against the end offsets Spark saw when it cut
   * the batch, over every partition: the sum of the lag gauges).
   */
  static String batchLine(BatchResult result, long lag) {
    return lag < 0 ? result.toString() : result + " lag=" + lag;
  }

  public void addListener(Consumer<BatchResult> listener) {
    listeners.add(listener);
  }

  /**
   * Counts the batch in the pipeline's metrics, logs its one INFO line (with the lag the metrics
   * now hold, see {@link #batchLine}), copies its offsets to the lag mirror if there is one and
   * calls the listeners. Only for a batch whose outcomes passed {@link Outcomes#check}; never
   * throws.
   *
   * @param deadLetters the dead letters its committed ranges wrote
   */
  public void publish(BatchResult result, long deadLetters) {
    long lag = -1;
    try {
      PipelineId id = result.pipelineId();
      metrics.batchCommitted(result, deadLetters, tp -> lastCommitted(id, tp));
      lag = metrics.totalLag(id);
    } catch (RuntimeException e) {
      LOG.warn("counting a batch in the metrics failed; the batch itself is committed", e);
    }
    LOG.info("{}", batchLine(result, lag));
    LagMirror m = mirror;
    if (m != null) {
      m.batchCommitted(result, outputs);
    }
    for (Consumer<BatchResult> l : listeners) {
      try {
        l.accept(result);
      } catch (RuntimeException e) {
        LOG.warn("a batch listener failed; the batch itself is committed", e);
      }
    }
  }
}
