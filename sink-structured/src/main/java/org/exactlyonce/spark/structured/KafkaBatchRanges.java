package org.exactlyonce.spark.structured;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.Dependency;
import org.apache.spark.Partition;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.Dataset;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SourceRange;

/**
 * The Kafka offset ranges a micro-batch reads, taken from the batch itself: the input partitions
 * Spark's Kafka source planned for it, found in the lineage of the batch DataFrame's RDD.
 *
 * <p>Why not the rows' {@code offset} column: transaction markers, aborted records, compaction and
 * filters make the lowest and highest offset of the rows differ from the range Spark read, and a
 * partition whose rows were all filtered out would not show at all, so its stored offset would stay
 * behind and the next batch would look like a gap. Why not the query's offset log: partitions added
 * to a topic since the batch's start are in none of its offsets, and the log lives in a checkpoint
 * the adapter does not need.
 *
 * <p>The input partitions are Spark internals ({@code KafkaBatchInputPartition} and its {@code
 * KafkaOffsetRange}, the same names on Spark 3.5 and 4.x), so they are read by reflection, in this
 * one class, and anything unexpected fails the batch with the Spark version named: the ranges are
 * never guessed.
 */
final class KafkaBatchRanges {
  private static final String DATA_SOURCE_RDD =
      "org.apache.spark.sql.execution.datasources.v2.DataSourceRDD";
  private static final String KAFKA_INPUT_PARTITION =
      "org.apache.spark.sql.kafka010.KafkaBatchInputPartition";

  private KafkaBatchRanges() {}

  /**
   * The ranges of {@code batch}, one per topic-partition with records to read (Spark leaves out
   * empty ranges), in lock order. A topic-partition that Spark split into several input partitions
   * ({@code minPartitions}) is one range.
   *
   * @throws ExactlyOnceException if the batch is not read from Spark's Kafka source alone, or this
   *     Spark's internals are not the ones this adapter knows
   */
  static List<SourceRange> of(Dataset<?> batch) {
    List<Object> inputs = new ArrayList<>();
    int sources =
        collect(
            batch.queryExecution().toRdd(),
            inputs,
            Collections.newSetFromMap(new IdentityHashMap<>()));
    if (sources == 0) {
      throw unknown(
          "the batch's lineage holds no data source scan (DataSourceRDD): it was not read by"
              + " spark.readStream().format(\"kafka\")",
          batch);
    }
    Map<TopicPartition, List<long[]>> byPartition =
        new TreeMap<>(
            java.util.Comparator.comparing(TopicPartition::topic)
                .thenComparingInt(TopicPartition::partition));
    for (Object input : inputs) {
      if (!KAFKA_INPUT_PARTITION.equals(input.getClass().getName())) {
        throw unknown(
            "the batch reads an input partition of "
                + input.getClass().getName()
                + ": only Spark's Kafka source can be written exactly once (one source per query)",
            batch);
      }
      Object range = call(input, "offsetRange");
      TopicPartition tp = (TopicPartition) call(range, "topicPartition");
      long from = (Long) call(range, "fromOffset");
      long until = (Long) call(range, "untilOffset");
      byPartition.computeIfAbsent(tp, k -> new ArrayList<>()).add(new long[] {from, until});
    }
    List<SourceRange> ranges = new ArrayList<>();
    byPartition.forEach(
        (tp, parts) -> {
          parts.sort(java.util.Comparator.comparingLong(p -> p[0]));
          for (int i = 1; i < parts.size(); i++) {
            if (parts.get(i)[0] != parts.get(i - 1)[1]) {
              throw unknown(
                  "the input partitions of "
                      + tp
                      + " do not join into one range: "
                      + parts.stream().map(p -> "[" + p[0] + ", " + p[1] + ")").toList(),
                  batch);
            }
          }
          ranges.add(
              SourceRange.of(
                  tp.topic(), tp.partition(), parts.get(0)[0], parts.get(parts.size() - 1)[1]));
        });
    return List.copyOf(ranges);
  }

  /**
   * The range of each partition of {@code rdd}, in partition order, for writes that commit a range
   * per partition: every step from {@code rdd} down to the Kafka scan must keep partition i as
   * partition i (no shuffle, no coalesce), and no topic-partition may be split over several
   * partitions (two tasks committing halves of one partition's range would see each other as a
   * gap).
   *
   * @throws ExactlyOnceException naming what breaks the mapping, and the per-batch alternative
   */
  static List<SourceRange> perPartition(RDD<?> rdd) {
    RDD<?> scan = rdd;
    while (!DATA_SOURCE_RDD.equals(scan.getClass().getName())) {
      scala.collection.Seq<Dependency<?>> deps = scan.dependencies();
      if (deps.size() != 1 || !(deps.head() instanceof org.apache.spark.OneToOneDependency<?>)) {
        throw new ExactlyOnceException(
            "the batch's partitions no longer map one to one to its Kafka ranges ("
                + scan
                + " has "
                + (deps.isEmpty() ? "no" : deps.size() == 1 ? "a shuffle or range" : "several")
                + " dependencies): per-record exactly-once output needs the source's partitions."
                + " For results computed after a shuffle, use ExactlyOnceForeachBatch.perBatch."
                + " Nothing was written.");
      }
      scan = deps.head().rdd();
    }
    List<SourceRange> ranges = new ArrayList<>();
    Set<TopicPartition> seen = new java.util.HashSet<>();
    for (Partition p : scan.partitions()) {
      List<Object> inputs = inputPartitions(p);
      if (inputs.size() != 1 || !KAFKA_INPUT_PARTITION.equals(inputs.get(0).getClass().getName())) {
        throw new ExactlyOnceException(
            "partition "
                + p.index()
                + " of the batch reads "
                + inputs
                + ", not one Kafka range: per-record exactly-once output needs one Kafka range per"
                + " partition. Nothing was written.");
      }
      Object range = call(inputs.get(0), "offsetRange");
      TopicPartition tp = (TopicPartition) call(range, "topicPartition");
      if (!seen.add(tp)) {
        throw new ExactlyOnceException(
            "the batch reads "
                + tp
                + " in several partitions (Kafka source options minPartitions and"
                + " maxRecordsPerPartition split a partition's range): per-record exactly-once"
                + " output commits one range per partition. Remove the option, or use"
                + " ExactlyOnceForeachBatch.perBatch. Nothing was written.");
      }
      ranges.add(
          SourceRange.of(
              tp.topic(),
              tp.partition(),
              (Long) call(range, "fromOffset"),
              (Long) call(range, "untilOffset")));
    }
    return List.copyOf(ranges);
  }

  /** Adds the input partitions of every data source scan under {@code rdd}; returns the scans. */
  private static int collect(RDD<?> rdd, List<Object> inputs, Set<RDD<?>> seen) {
    if (!seen.add(rdd)) {
      return 0;
    }
    if (DATA_SOURCE_RDD.equals(rdd.getClass().getName())) {
      for (Partition p : rdd.partitions()) {
        inputs.addAll(inputPartitions(p));
      }
      return 1;
    }
    int found = 0;
    scala.collection.Iterator<Dependency<?>> deps = rdd.dependencies().iterator();
    while (deps.hasNext()) {
      found += collect(deps.next().rdd(), inputs, seen);
    }
    return found;
  }

  /**
   * The input partitions of one {@code DataSourceRDDPartition}: a {@code Seq} named {@code
   * inputPartitions} on Spark 3.5, an {@code Option} named {@code inputPartition} on Spark 4.
   */
  private static List<Object> inputPartitions(Partition p) {
    List<Object> out = new ArrayList<>();
    Object several = tryCall(p, "inputPartitions");
    if (several instanceof scala.collection.Iterable<?> seq) {
      scala.collection.Iterator<?> it = seq.iterator();
      while (it.hasNext()) {
        out.add(it.next());
      }
      return out;
    }
    Object one = tryCall(p, "inputPartition");
    if (one instanceof scala.Option<?> option) {
      if (option.isDefined()) {
        out.add(option.get());
      }
      return out;
    }
    throw new ExactlyOnceException(
        "cannot read the input partitions of "
            + p.getClass().getName()
            + " on Spark "
            + org.apache.spark.package$.MODULE$.SPARK_VERSION()
            + ": this Spark's internals are not the ones the exactly-once adapter knows, so the"
            + " batch's Kafka ranges are unknown and nothing was written");
  }

  private static Object tryCall(Object target, String method) {
    try {
      Method m = target.getClass().getMethod(method);
      return m.invoke(target);
    } catch (NoSuchMethodException e) {
      return null;
    } catch (ReflectiveOperationException e) {
      throw new ExactlyOnceException("cannot call " + method + " on " + target.getClass(), e);
    }
  }

  private static Object call(Object target, String method) {
    try {
      Method m = target.getClass().getMethod(method);
      return m.invoke(target);
    } catch (ReflectiveOperationException e) {
      throw new ExactlyOnceException(
          "cannot read "
              + method
              + "() of "
              + target.getClass().getName()
              + " on Spark "
              + org.apache.spark.package$.MODULE$.SPARK_VERSION()
              + ": this Spark's Kafka source is not the one the exactly-once adapter knows, so"
              + " the batch's Kafka ranges are unknown and nothing was written",
          e);
    }
  }

  private static ExactlyOnceException unknown(String what, Dataset<?> batch) {
    return new ExactlyOnceException(
        "the Kafka ranges of this micro-batch cannot be read: "
            + what
            + " (Spark "
            + batch.sparkSession().version()
            + "). Nothing was written.");
  }
}
