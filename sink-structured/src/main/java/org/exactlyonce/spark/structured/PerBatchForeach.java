package org.exactlyonce.spark.structured;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FilterFunction;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.util.LongAccumulator;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.BatchPlan;
import org.exactlyonce.spark.internal.NewPartitions;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.spi.BatchSink;
import org.exactlyonce.spark.spi.OutputColumn;

/**
 * The {@code foreachBatch} function of a per-batch sink (strategy T-batch): the batch's ranges from
 * the batch itself, what the sink already committed skipped or trimmed, the user's function over
 * the rest, and the results committed with every range in one step. Runs on the driver, on the
 * query's thread; a failure throws, which stops the query before Spark records the batch.
 */
final class PerBatchForeach implements VoidFunction2<Dataset<Row>, Long> {
  private static final long serialVersionUID = 1L;

  private final BatchSink<Row> sink;
  private final Function<Dataset<Row>, Dataset<Row>> compute;
  private final long epoch;
  private final String checkpointLocation;
  private final List<OutputColumn> columnsByName;
  private final transient PipelineGuard guard;

  PerBatchForeach(
      BatchSink<Row> sink,
      Function<Dataset<Row>, Dataset<Row>> compute,
      long epoch,
      String checkpointLocation,
      List<OutputColumn> columnsByName,
      PipelineGuard guard) {
    this.sink = sink;
    this.compute = compute;
    this.epoch = epoch;
    this.checkpointLocation = checkpointLocation;
    this.columnsByName = List.copyOf(columnsByName);
    this.guard = guard;
  }

  @Override
  public void call(Dataset<Row> batch, Long batchId) {
    PipelineGuard guard = PipelineGuard.of(this.guard);
    guard.checkRunning();
    long started = System.currentTimeMillis();
    try {
      List<SourceRange> ranges = KafkaBatchRanges.of(batch);
      NewPartitions.storeStarts(sink, epoch, ranges, guard);
      BatchPlan plan = BatchPlan.of(sink, ranges);
      CheckpointGaps.check(sink.pipelineId(), plan, checkpointLocation);
      LongAccumulator read = batch.sparkSession().sparkContext().longAccumulator("records read");
      JavaRDD<Row> none =
          JavaSparkContext.fromSparkContext(batch.sparkSession().sparkContext()).emptyRDD();
      JavaRDD<Row> rows = none;
      if (plan.writes()) {
        Map<TopicPartition, long[]> bounds = new HashMap<>();
        for (SourceRange r : ranges) {
          bounds.put(r.topicPartition(), new long[] {plan.floorOf(r), r.until()});
        }
        Dataset<Row> input = batch.filter(new WithinRange(bounds, read));
        Dataset<Row> results = compute.apply(input);
        if (results == null) {
          throw new ExactlyOnceException(
              "the batch function of pipeline '"
                  + sink.pipelineId()
                  + "' returned null: return the Dataset to write (an empty one writes nothing)");
        }
        // Checked before start too; a batch function's schema can depend on its input.
        OutputSchema.check(sink.pipelineId(), columnsByName, results.schema());
        rows = results.toJavaRDD();
      }
      plan.commitAndPublish(sink, epoch, rows, none, guard, read, started, started);
    } catch (Throwable e) {
      // Not only RuntimeException: Spark's SparkException ("Job aborted") is a checked exception
      // that Scala throws undeclared, and it is the usual way a batch fails.
      guard.fail(sink.pipelineId(), e);
      throw e;
    }
  }

  /**
   * Passes the rows of a partition at or after its floor (what the sink has not committed) and
   * counts them; fails on a row outside its batch's range, which an aggregate must never count.
   */
  private static final class WithinRange implements FilterFunction<Row> {
    private static final long serialVersionUID = 1L;
    private final Map<TopicPartition, long[]> bounds;
    private final LongAccumulator read;

    WithinRange(Map<TopicPartition, long[]> bounds, LongAccumulator read) {
      this.bounds = bounds;
      this.read = read;
    }

    @Override
    public boolean call(Row row) {
      String topic = row.getAs("topic");
      int partition = row.<Integer>getAs("partition");
      long offset = row.<Long>getAs("offset");
      long[] b = bounds.get(new TopicPartition(topic, partition));
      if (b == null || offset >= b[1]) {
        throw new ExactlyOnceException(
            "record "
                + topic
                + "-"
                + partition
                + "@"
                + offset
                + " lies outside its batch's ranges: nothing of the batch is written, and the"
                + " task fails");
      }
      if (offset < b[0]) {
        return false;
      }
      read.add(1);
      return true;
    }
  }
}
