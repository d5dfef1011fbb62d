package org.exactlyonce.spark.structured;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.internal.KeepAlive;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a sink's stored offsets alive while its query has no batch, for stores whose offsets expire
 * when not written (a Kafka sink's progress group, after the broker's {@code
 * offsets.retention.minutes}).
 *
 * <p>Why not the batches alone, as on a DStream: a DStream's batch holds a range for every
 * partition (empty ones included), so keeping its ranges' partitions alive keeps them all. A query
 * runs no batch while nothing arrives, and Spark's Kafka source plans no range for a partition with
 * nothing new, so an idle partition of a busy topic is in no batch at all. So every stored
 * partition of the pipeline is kept alive when due: by each batch before it runs, and by a driver
 * timer while no batch runs. Never beside a batch: a keep-alive re-writes the offsets a batch is
 * advancing (and, for the transactional Kafka sink, fences the producers a batch's tasks use). Each
 * batch holds the lock for its whole run; the timer skips a tick it cannot take the lock for.
 *
 * <p>A keep-alive that finds the pipeline fenced stops the query: a newer query writes it now. The
 * query then ends without an exception (Spark offers no way to fail a query from outside it); the
 * driver's log says why, at ERROR. Any other failure (the backend briefly unreachable) is logged
 * and tried again at the next tick; one that lasts a whole interval more (the sink's settings leave
 * the offsets at least two intervals before they expire) stops the query the same way, so that the
 * outage is seen before the broker drops the offsets.
 */
final class IdleKeepAlive {
  private static final Logger LOG = LoggerFactory.getLogger(IdleKeepAlive.class);

  private final ExactlyOnceSink sink;
  private final long epoch;
  private final PipelineGuard guard;
  private final ReentrantLock batch = new ReentrantLock();
  private long failingSince = -1; // nanoTime of the first failed keep-alive in a row; timer only

  IdleKeepAlive(ExactlyOnceSink sink, long epoch, PipelineGuard guard) {
    this.sink = sink;
    this.epoch = epoch;
    this.guard = guard;
  }

  /** Whether the sink's offsets need it at all. */
  static boolean needed(ExactlyOnceSink sink) {
    return !sink.progressKeepAlive().isZero();
  }

  /** {@code function}, run under the lock the timer waits for. */
  VoidFunction2<Dataset<Row>, Long> aroundBatches(VoidFunction2<Dataset<Row>, Long> function) {
    return new Locked(function, this);
  }

  private void ifDue() {
    KeepAlive.ifDue(sink, epoch, guard.storedPartitions(sink.pipelineId()), guard);
  }

  /** Starts the timer; it ends by itself with the query. */
  void start(StreamingQuery query) {
    Duration interval = sink.progressKeepAlive();
    // Ticks are cheap (the guard says whether one is due), so a few per interval keep the delay
    // after an interval's end short without writing more often than the interval.
    long tickMs = Math.max(200, Math.min(interval.toMillis() / 4, 10_000));
    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "eos-keep-alive-" + sink.pipelineId());
              t.setDaemon(true);
              return t;
            });
    timer.scheduleWithFixedDelay(() -> tick(query, timer), tickMs, tickMs, TimeUnit.MILLISECONDS);
  }

  private void tick(StreamingQuery query, ScheduledExecutorService timer) {
    if (!query.isActive()) {
      timer.shutdown();
      return;
    }
    if (!batch.tryLock()) {
      return;
    }
    try {
      if (guard.failure() != null) {
        timer.shutdown();
        return;
      }
      ifDue();
      failingSince = -1;
    } catch (WriterFencedException e) {
      giveUp(query, timer, e, "while it had nothing to read");
    } catch (Throwable e) {
      // Throwable: an Error escaping a scheduled task would cancel the timer without a word.
      long now = System.nanoTime();
      if (failingSince < 0) {
        failingSince = now;
      }
      if (now - failingSince > sink.progressKeepAlive().toNanos()) {
        giveUp(
            query,
            timer,
            e,
            "after failing to keep its stored offsets alive for longer than "
                + sink.progressKeepAlive());
      } else {
        LOG.warn(
            "pipeline '{}': could not keep the stored offsets alive, trying again: {}",
            sink.pipelineId(),
            e.toString());
      }
    } finally {
      batch.unlock();
    }
  }

  private void giveUp(
      StreamingQuery query, ScheduledExecutorService timer, Throwable e, String when) {
    LOG.error("pipeline '{}': stopping query {} {}", sink.pipelineId(), query.id(), when, e);
    guard.fail(sink.pipelineId(), e);
    timer.shutdown();
    stop(query);
  }

  private void stop(StreamingQuery query) {
    // On another thread: stop() waits for the query's thread, which may be waiting for this lock.
    Thread t =
        new Thread(
            () -> {
              try {
                query.stop();
              } catch (Exception e) {
                LOG.warn("pipeline '{}': stopping the query failed: {}", sink.pipelineId(), e);
              }
            },
            "eos-stop-" + sink.pipelineId());
    t.setDaemon(true);
    t.start();
  }

  /** A batch function that holds the keep-alive lock while it runs. */
  private static final class Locked implements VoidFunction2<Dataset<Row>, Long> {
    private static final long serialVersionUID = 1L;
    private final VoidFunction2<Dataset<Row>, Long> function;
    private final transient IdleKeepAlive keepAlive;

    Locked(VoidFunction2<Dataset<Row>, Long> function, IdleKeepAlive keepAlive) {
      this.function = function;
      this.keepAlive = keepAlive;
    }

    @Override
    public void call(Dataset<Row> batch, Long batchId) throws Exception {
      // Interruptibly: query.stop() interrupts the query's thread, which must not wait out a
      // keep-alive in progress.
      keepAlive.batch.lockInterruptibly();
      try {
        function.call(batch, batchId);
      } finally {
        keepAlive.batch.unlock();
      }
    }
  }
}
