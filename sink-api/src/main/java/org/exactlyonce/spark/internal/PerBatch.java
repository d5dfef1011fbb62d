package org.exactlyonce.spark.internal;

import java.util.Arrays;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.streaming.Time;
import org.apache.spark.util.LongAccumulator;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.BatchSink;

/**
 * The body of {@code foreachRDD} for a per-batch sink: the user's computation turns the batch into
 * results (shuffles allowed), and the sink commits them with every range of the batch at once.
 */
public final class PerBatch<K, V, R> implements VoidFunction2<JavaRDD<ConsumerRecord<K, V>>, Time> {
  private static final long serialVersionUID = 1L;

  private final BatchSink<R> sink;
  private final Function<JavaRDD<ConsumerRecord<K, V>>, JavaRDD<R>> compute;
  private final long epoch;
  private final transient PipelineGuard guard;

  public PerBatch(
      BatchSink<R> sink,
      Function<JavaRDD<ConsumerRecord<K, V>>, JavaRDD<R>> compute,
      long epoch,
      PipelineGuard guard) {
    this.sink = sink;
    this.compute = compute;
    this.epoch = epoch;
    this.guard = guard;
  }

  @Override
  public void call(JavaRDD<ConsumerRecord<K, V>> rdd, Time time) throws Exception {
    guard.checkRunning();
    long started = System.currentTimeMillis();
    try {
      List<SourceRange> ranges =
          Arrays.stream(TransactionalBatch.rangesOf(rdd)).map(SourceRange::of).toList();
      // Counts records as the computation reads them (a metric: a retried task counts twice).
      LongAccumulator read = rdd.context().longAccumulator("records read");
      JavaRDD<R> results =
          compute.call(
              rdd.map(
                  r -> {
                    read.add(1);
                    return r;
                  }));
      BatchSink.BatchCommit commit = sink.commitBatch(epoch, ranges, results);
      Outcomes.check(guard, sink.pipelineId(), epoch, commit.commits());
      guard.publish(
          new BatchResult(
              sink.pipelineId(),
              time.milliseconds(),
              commit.commits(),
              read.value(),
              commit.rowsWritten(),
              System.currentTimeMillis() - started));
    } catch (Throwable e) {
      // Not only RuntimeException: Spark's SparkException ("Job aborted") is a checked exception
      // that Scala throws undeclared, and it is the usual way a batch fails.
      guard.fail(e);
      throw e;
    }
  }
}
