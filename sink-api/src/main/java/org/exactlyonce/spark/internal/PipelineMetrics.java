package org.exactlyonce.spark.internal;

import com.codahale.metrics.Counter;
import com.codahale.metrics.Gauge;
import com.codahale.metrics.Histogram;
import com.codahale.metrics.MetricRegistry;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.metrics.source.Source;
import org.exactlyonce.spark.BackendUnavailableException;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceMetrics;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.WriterFencedException;

/**
 * The Spark metrics source of one pipeline: what its batches committed, as the driver learns it.
 * The names are {@link ExactlyOnceMetrics}'. Thread-safe.
 */
public final class PipelineMetrics implements Source {
  private static final String[] FAILURE_KINDS = {
    ExactlyOnceMetrics.FAILURE_FENCED,
    ExactlyOnceMetrics.FAILURE_OFFSET_MISMATCH,
    ExactlyOnceMetrics.FAILURE_BACKEND_UNAVAILABLE,
    ExactlyOnceMetrics.FAILURE_CONFIGURATION,
    ExactlyOnceMetrics.FAILURE_OTHER
  };

  private final String name;
  private final MetricRegistry registry = new MetricRegistry();
  private final Counter batches = registry.counter(ExactlyOnceMetrics.BATCHES_COMMITTED);
  private final Counter records = registry.counter(ExactlyOnceMetrics.RECORDS_READ);
  private final Counter rows = registry.counter(ExactlyOnceMetrics.ROWS_WRITTEN);
  private final Counter replays = registry.counter(ExactlyOnceMetrics.REPLAYS_SKIPPED);
  private final Counter trimmed = registry.counter(ExactlyOnceMetrics.RANGES_TRIMMED);
  private final Counter deadLetters = registry.counter(ExactlyOnceMetrics.DEAD_LETTERS);
  private final Counter fenced = registry.counter(ExactlyOnceMetrics.FENCED);
  private final Histogram commitLatency = registry.histogram(ExactlyOnceMetrics.COMMIT_LATENCY_MS);
  private final AtomicLong lastBatchTime = new AtomicLong();
  private final Map<TopicPartition, AtomicLong> lag = new ConcurrentHashMap<>();
  private final Map<TopicPartition, BehindSince> lagMs = new ConcurrentHashMap<>();
  private final java.util.function.LongSupplier clock;
  private volatile boolean closed;

  PipelineMetrics(PipelineId pipeline) {
    this(pipeline, System::currentTimeMillis);
  }

  PipelineMetrics(PipelineId pipeline, java.util.function.LongSupplier clock) {
    this.clock = clock;
    this.name = ExactlyOnceMetrics.sourceName(pipeline);
    for (String kind : FAILURE_KINDS) {
      registry.counter(ExactlyOnceMetrics.failureName(kind));
    }
    registry.gauge(ExactlyOnceMetrics.LAST_COMMITTED_BATCH_TIME_MS, () -> lastBatchTime::get);
  }

  @Override
  public String sourceName() {
    return name;
  }

  @Override
  public MetricRegistry metricRegistry() {
    return registry;
  }

  /**
   * Counts a batch that passed {@link Outcomes#check}.
   *
   * @param deadLetters dead letters written by its committed ranges
   * @param ends per partition, the end offset Spark saw when it cut the batch (may lack some)
   * @param committed per partition of the batch, the offset now committed
   */
  void batchCommitted(
      BatchResult result,
      long deadLetters,
      Map<TopicPartition, Long> ends,
      java.util.function.ToLongFunction<TopicPartition> committed) {
    batches.inc();
    records.inc(result.recordsIn());
    rows.inc(result.rowsWritten());
    replays.inc(result.replaysSkipped());
    trimmed.inc(result.rangesTrimmed());
    this.deadLetters.inc(deadLetters);
    for (PartitionCommit c : result.commits()) {
      if (!c.range().isEmpty()) {
        commitLatency.update(c.millis());
      }
      TopicPartition tp = c.range().topicPartition();
      Long end = ends.get(tp);
      if (end != null && c.outcome().isSuccess()) {
        // A skipped replay's stored offset may lie past its range (a sink ahead of the stream).
        long stored =
            c.outcome() == CommitOutcome.ALREADY_COMMITTED
                ? Math.max(c.range().until(), c.storedBefore())
                : c.range().until();
        long committedNow = Math.max(stored, committed.applyAsLong(tp));
        long behind = Math.max(0, end - committedNow);
        lagOf(tp).set(behind);
        behindSince(tp).observe(result.batchTimeMs(), end, committedNow);
      } else if (c.outcome().isSuccess()) {
        // No end known for this batch: what it committed still ends the wait of older records.
        BehindSince waiting = lagMs.get(tp);
        if (waiting != null) {
          waiting.committed(Math.max(c.range().until(), committed.applyAsLong(tp)));
        }
      }
    }
    lastBatchTime.set(result.batchTimeMs());
  }

  /**
   * The records behind over every partition seen so far (the sum of the lag gauges), or -1 before
   * any batch had its end offsets known.
   */
  long totalLag() {
    if (lag.isEmpty()) {
      return -1;
    }
    return lag.values().stream().mapToLong(AtomicLong::get).sum();
  }

  private AtomicLong lagOf(TopicPartition tp) {
    AtomicLong value = lag.get(tp);
    if (value != null) {
      return value;
    }
    AtomicLong created = new AtomicLong();
    value = lag.putIfAbsent(tp, created);
    if (value != null) {
      return value;
    }
    // Once the source is removed from Spark's metrics system, a gauge added to this registry
    // would be copied into Spark's registry again (Dropwizard forwards a child registry's
    // additions) and outlive the stream.
    if (!closed) {
      registry.gauge(
          ExactlyOnceMetrics.lagName(tp.topic(), tp.partition()), () -> (Gauge<Long>) created::get);
    }
    return created;
  }

  private BehindSince behindSince(TopicPartition tp) {
    BehindSince value = lagMs.get(tp);
    if (value != null) {
      return value;
    }
    BehindSince created = new BehindSince();
    value = lagMs.putIfAbsent(tp, created);
    if (value != null) {
      return value;
    }
    if (!closed) { // as in lagOf
      registry.gauge(
          ExactlyOnceMetrics.lagMsName(tp.topic(), tp.partition()),
          () -> (Gauge<Long>) () -> created.millisBehind(clock.getAsLong()));
    }
    return created;
  }

  /**
   * How long a partition's oldest uncommitted record has waited, at least: the end offsets Spark
   * saw at each committed batch's time, as long as the committed offset is below them. The record
   * at the committed offset existed at the first batch time whose end lay past it, so it is at
   * least that old; when the committed offset reaches every end seen, the partition is not behind.
   * Read at the gauge's read time, so the value keeps growing while the pipeline is stuck behind.
   */
  static final class BehindSince {
    private final java.util.ArrayDeque<long[]> seen = new java.util.ArrayDeque<>();

    synchronized void observe(long batchTimeMs, long end, long committedOffset) {
      long[] last = seen.peekLast();
      if (last == null || end > last[1]) {
        seen.addLast(new long[] {batchTimeMs, end});
      }
      // A rewind moves the committed offset back below ends already dropped: those records count
      // from the batch that saw them again, which is later than they arrived (a lower bound).
      while (!seen.isEmpty() && seen.peekFirst()[1] <= committedOffset) {
        seen.removeFirst();
      }
    }

    /** The committed offset moved to {@code committedOffset}, with no end offset seen. */
    synchronized void committed(long committedOffset) {
      while (!seen.isEmpty() && seen.peekFirst()[1] <= committedOffset) {
        seen.removeFirst();
      }
    }

    synchronized long millisBehind(long nowMs) {
      long[] first = seen.peekFirst();
      return first == null ? 0 : Math.max(0, nowMs - first[0]);
    }
  }

  /** Counts ranges refused because a newer driver holds the pipeline. */
  void fenced(int ranges) {
    fenced.inc(ranges);
  }

  /** Counts a failed batch under the kind of {@code error} (or of an error it was caused by). */
  void failed(Throwable error) {
    registry.counter(ExactlyOnceMetrics.failureName(kindOf(error))).inc();
  }

  /** The failure kind of {@code error}: the first of the library's types in its cause chain. */
  static String kindOf(Throwable error) {
    for (Throwable t = error; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof WriterFencedException) {
        return ExactlyOnceMetrics.FAILURE_FENCED;
      }
      if (t instanceof OffsetMismatchException) {
        return ExactlyOnceMetrics.FAILURE_OFFSET_MISMATCH;
      }
      if (t instanceof BackendUnavailableException) {
        return ExactlyOnceMetrics.FAILURE_BACKEND_UNAVAILABLE;
      }
      if (t instanceof SinkConfigurationException) {
        return ExactlyOnceMetrics.FAILURE_CONFIGURATION;
      }
    }
    return ExactlyOnceMetrics.FAILURE_OTHER;
  }

  /** After this, no new gauge is added (see {@link #lagOf}). */
  void close() {
    closed = true;
  }
}
