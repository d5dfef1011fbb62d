package org.exactlyonce.spark.internal;

import java.util.Iterator;
import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.streaming.Time;
import org.apache.spark.util.LongAccumulator;
import org.exactlyonce.spark.ExactlyOnceException;
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

  /**
   * Runs on executors: passes the records of partition i at or after {@code low[i]} (what this sink
   * has not committed), counts them, and fails the task on a record outside its range: an aggregate
   * must never count a record of another batch.
   */
  private static final class WithinRange<K, V>
      implements Function2<
          Integer, Iterator<ConsumerRecord<K, V>>, Iterator<ConsumerRecord<K, V>>> {
    private static final long serialVersionUID = 1L;
    private final long[] low;
    private final long[] high;
    private final LongAccumulator read;

    WithinRange(long[] low, long[] high, LongAccumulator read) {
      this.low = low;
      this.high = high;
      this.read = read;
    }

    @Override
    public Iterator<ConsumerRecord<K, V>> call(
        Integer index, Iterator<ConsumerRecord<K, V>> records) {
      long from = low[index];
      long until = high[index];
      return new Iterator<>() {
        private ConsumerRecord<K, V> next = advance();

        private ConsumerRecord<K, V> advance() {
          while (records.hasNext()) {
            ConsumerRecord<K, V> r = records.next();
            if (r.offset() >= until) {
              throw new ExactlyOnceException(
                  "record "
                      + r.topic()
                      + "-"
                      + r.partition()
                      + "@"
                      + r.offset()
                      + " lies past its batch's range end "
                      + until
                      + ": nothing of the batch is written, and the task fails");
            }
            if (r.offset() >= from) {
              read.add(1);
              return r;
            }
          }
          return null;
        }

        @Override
        public boolean hasNext() {
          return next != null;
        }

        @Override
        public ConsumerRecord<K, V> next() {
          if (next == null) {
            throw new java.util.NoSuchElementException();
          }
          ConsumerRecord<K, V> r = next;
          next = advance();
          return r;
        }
      };
    }
  }

  @Override
  public void call(JavaRDD<ConsumerRecord<K, V>> rdd, Time time) throws Exception {
    PipelineGuard guard = PipelineGuard.of(this.guard);
    guard.checkRunning();
    long started = System.currentTimeMillis();
    try {
      List<SourceRange> ranges = TransactionalBatch.sourceRanges(TransactionalBatch.rangesOf(rdd));
      NewPartitions.storeStarts(sink, epoch, ranges, guard);
      // Per partition, skip what this sink already committed; the rest is computed and committed.
      BatchPlan plan = BatchPlan.of(sink, ranges);
      // Counts records as the computation reads them (a metric: a retried task counts twice).
      LongAccumulator read = rdd.context().longAccumulator("records read");
      JavaRDD<R> none = JavaSparkContext.fromSparkContext(rdd.context()).emptyRDD();
      JavaRDD<R> results = none;
      if (plan.writes()) {
        long[] low = new long[ranges.size()];
        long[] high = new long[ranges.size()];
        for (int i = 0; i < ranges.size(); i++) {
          low[i] = plan.floorOf(ranges.get(i));
          high[i] = ranges.get(i).until();
        }
        results =
            compute.call(rdd.mapPartitionsWithIndex(new WithinRange<>(low, high, read), true));
      }
      plan.commitAndPublish(sink, epoch, results, none, guard, read, time.milliseconds(), started);
    } catch (Throwable e) {
      // Not only RuntimeException: Spark's SparkException ("Job aborted") is a checked exception
      // that Scala throws undeclared, and it is the usual way a batch fails.
      guard.fail(sink.pipelineId(), e);
      throw e;
    }
  }
}
