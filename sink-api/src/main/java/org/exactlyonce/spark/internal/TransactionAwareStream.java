package org.exactlyonce.spark.internal;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.StreamingContext;
import org.apache.spark.streaming.Time;
import org.apache.spark.streaming.kafka010.ConsumerStrategy;
import org.apache.spark.streaming.kafka010.DefaultPerPartitionConfig;
import org.apache.spark.streaming.kafka010.DirectKafkaInputDStream;
import org.apache.spark.streaming.kafka010.KafkaRDD;
import org.apache.spark.streaming.kafka010.LocationStrategy;
import org.apache.spark.streaming.kafka010.OffsetRange;
import org.apache.spark.streaming.scheduler.StreamInputInfo;
import scala.collection.JavaConverters;

/**
 * Spark's direct stream with one change: batch end offsets are chosen by {@link VisibleEnds}, so
 * that a topic written with Kafka transactions (commit markers, aborted records) never leaves a
 * partition range that Spark's reader cannot finish (SPARK-24720). Everything else (rate limits,
 * backpressure, cached consumers, preferred locations, offset ranges) is Spark's own.
 *
 * <p>Overrides {@code clamp}, the one step between "latest offsets" and "this batch's end offsets"
 * in Spark 3.x's {@code DirectKafkaInputDStream.compute}, and {@code compute} itself for one
 * reason: with {@code spark.streaming.kafka.allowNonConsecutiveOffsets} (which the library sets so
 * that readers step over commit markers), Spark's {@code compute} reports a batch's size with
 * {@code KafkaRDD.count()}, a Spark job that reads every record of the batch a second time,
 * synchronously, before the batch's own job starts. This class reports the number of offsets in the
 * ranges instead (markers included), and builds the same {@code KafkaRDD}. Tested with Spark 3.5.5.
 */
// Raw supertype: javac cannot reconcile the generic signatures Scala gives compute() in
// DStream<T> and DirectKafkaInputDStream<K, V> (same erasure, different return types).
@SuppressWarnings({"rawtypes", "unchecked"})
public final class TransactionAwareStream<K, V> extends DirectKafkaInputDStream {
  private static final long serialVersionUID = 1L;

  private final Map<String, Object> params;
  private final List<String> topics;
  private transient VisibleEnds ends;
  private final transient List<AutoCloseable> closeOnStop = new ArrayList<>();
  private transient StreamMetrics metrics;

  /**
   * @param consumers assigns the driver's consumer its partitions (it must not subscribe: a
   *     subscribed consumer joins the consumer group)
   * @param topics the topics whose partitions added later the stream assigns itself
   */
  public TransactionAwareStream(
      StreamingContext ssc,
      LocationStrategy locations,
      ConsumerStrategy<K, V> consumers,
      Map<String, Object> params,
      Collection<String> topics) {
    super(ssc, locations, consumers, new DefaultPerPartitionConfig(ssc.sparkContext().getConf()));
    this.params = new HashMap<>(params);
    this.topics = List.copyOf(topics);
  }

  /**
   * Spark's latest offsets, after assigning the driver's consumer the partitions added to the
   * topics since the last batch (Spark then starts them at their earliest offset, {@code
   * auto.offset.reset=earliest}; {@link NewPartitions} stores that start before they write). The
   * consumer's metadata refreshes every {@code metadata.max.age.ms}, as a subscribed consumer's
   * would.
   */
  @Override
  public scala.collection.immutable.Map latestOffsets() {
    Consumer<K, V> c = consumer();
    Set<TopicPartition> all = new HashSet<>(c.assignment());
    for (String topic : topics) {
      List<PartitionInfo> infos = c.partitionsFor(topic);
      if (infos != null) {
        infos.forEach(i -> all.add(new TopicPartition(i.topic(), i.partition())));
      }
    }
    if (!all.equals(c.assignment())) {
      c.assign(all);
    }
    return super.latestOffsets();
  }

  @Override
  public scala.collection.immutable.Map clamp(scala.collection.immutable.Map latest) {
    scala.collection.immutable.Map<TopicPartition, Object> clamped = super.clamp(latest);
    if (ends == null) {
      long pollMs =
          ssc().sparkContext().getConf().getLong("spark.streaming.kafka.consumer.poll.ms", 120_000);
      ends = new VisibleEnds(params, Duration.ofMillis(Math.max(5_000, pollMs)));
    }
    Map<TopicPartition, Long> adjusted =
        ends.adjust(toJava(currentOffsets()), toJava(clamped), toJava(latest));
    return toScala(new HashMap<TopicPartition, Object>(adjusted));
  }

  /**
   * Built with {@code updated}, which Scala 2.12 and 2.13 share: {@code toMap}'s implicit evidence
   * has another type on each (a {@code Function1} from {@code Predef.$conforms} on 2.12, a {@code
   * <:<} on 2.13), so no one Java call of it compiles on both Spark lines.
   */
  private static <A> scala.collection.immutable.Map<A, Object> toScala(Map<A, Object> m) {
    scala.collection.immutable.Map<A, Object> out = scala.collection.immutable.Map$.MODULE$.empty();
    for (Map.Entry<A, Object> e : m.entrySet()) {
      out = out.updated(e.getKey(), e.getValue());
    }
    return out;
  }

  /**
   * Spark's {@code compute} without the second read: the same ranges, RDD, input report and offset
   * commits, but the input report counts offsets, not records (the batch is not read to count it).
   */
  @Override
  public scala.Option compute(Time validTime) {
    scala.collection.immutable.Map<TopicPartition, Object> latest = latestOffsets();
    StreamMetrics m = metrics;
    if (m != null) {
      m.batchCut(validTime.milliseconds(), toJava(latest));
    }
    scala.collection.immutable.Map<TopicPartition, Object> until = clamp(latest);
    Map<TopicPartition, Long> from = toJava(currentOffsets());
    List<OffsetRange> ranges = new ArrayList<>();
    long positions = 0;
    for (Map.Entry<TopicPartition, Long> e : toJava(until).entrySet()) {
      OffsetRange r = OffsetRange.create(e.getKey(), from.get(e.getKey()), e.getValue());
      ranges.add(r);
      positions += r.count();
    }
    boolean cache = ssc().conf().getBoolean("spark.streaming.kafka.consumer.cache.enabled", true);
    KafkaRDD<K, V> rdd =
        new KafkaRDD<>(
            ssc().sparkContext(),
            ownExecutorParams(),
            ranges.toArray(new OffsetRange[0]),
            getPreferredHosts(),
            cache);
    allowMarkers(rdd);
    StringBuilder description = new StringBuilder();
    ranges.stream()
        .filter(r -> r.count() > 0)
        .sorted(Comparator.comparing(OffsetRange::topic).thenComparingInt(OffsetRange::partition))
        .forEach(
            r ->
                description
                    .append(description.length() == 0 ? "" : "\n")
                    .append(
                        String.format(
                            "topic: %s\tpartition: %d\toffsets: %d to %d",
                            r.topic(), r.partition(), r.fromOffset(), r.untilOffset())));
    Map<String, Object> metadata = new HashMap<>();
    metadata.put("offsets", JavaConverters.asScalaBuffer(ranges).toList());
    metadata.put(StreamInputInfo.METADATA_KEY_DESCRIPTION(), description.toString());
    ssc()
        .scheduler()
        .inputInfoTracker()
        .reportInfo(validTime, new StreamInputInfo(id(), positions, toScala(metadata)));
    currentOffsets_$eq(until);
    commitAll();
    return scala.Option.apply(rdd);
  }

  private transient Map<String, Object> ownExecutorParams;

  /**
   * Spark's executor settings under a consumer group of the library's own. Spark caches executor
   * consumers by group and partition only, whatever their settings: a stream or RDD of the same
   * application with the same {@code group.id} and Kafka's default isolation would otherwise leave
   * read_uncommitted consumers in that cache for this stream's tasks, which would then deliver
   * aborted records. Nothing is committed to the group (consumers are assigned their partitions),
   * so its name only separates the cache entries.
   */
  private Map<String, Object> ownExecutorParams() {
    if (ownExecutorParams == null) {
      Map<String, Object> p = new HashMap<>(executorKafkaParams());
      Object isolation =
          p.getOrDefault(
              org.apache.kafka.clients.consumer.ConsumerConfig.ISOLATION_LEVEL_CONFIG,
              "read_uncommitted");
      p.put(
          org.apache.kafka.clients.consumer.ConsumerConfig.GROUP_ID_CONFIG,
          p.get(org.apache.kafka.clients.consumer.ConsumerConfig.GROUP_ID_CONFIG)
              + "-exactly-once-"
              + isolation);
      ownExecutorParams = p;
    }
    return ownExecutorParams;
  }

  /**
   * Reports each batch's end offsets to {@code metrics}, registers its sources with Spark's metrics
   * system when the streaming context starts this stream and removes them when it stops it.
   */
  public synchronized void measure(StreamMetrics metrics) {
    this.metrics = metrics;
    closeOnStop.add(metrics);
  }

  @Override
  public synchronized void start() {
    super.start();
    if (metrics != null) {
      metrics.start(ssc().sparkContext());
    }
  }

  /**
   * Closes {@code resource} when the streaming context stops this stream (Spark stops its input
   * streams on every stop of a started context, graceful or not).
   */
  public synchronized void closeOnStop(AutoCloseable resource) {
    closeOnStop.add(resource);
  }

  @Override
  public synchronized void stop() {
    super.stop();
    if (ends != null) {
      ends.close();
      ends = null;
    }
    for (AutoCloseable c : closeOnStop) {
      try {
        c.close();
      } catch (Exception e) {
        org.slf4j.LoggerFactory.getLogger(TransactionAwareStream.class)
            .warn("closing {} on stop failed", c, e);
      }
    }
    closeOnStop.clear();
  }

  private static Map<TopicPartition, Long> toJava(scala.collection.Map<TopicPartition, Object> m) {
    Map<TopicPartition, Long> out = new HashMap<>();
    JavaConverters.mapAsJavaMapConverter(m)
        .asJava()
        .forEach((tp, o) -> out.put(tp, ((Number) o).longValue()));
    return out;
  }

  private static final String ALLOW = "spark.streaming.kafka.allowNonConsecutiveOffsets";

  /**
   * Lets the reader of this stream's RDDs skip offset gaps (commit markers, aborted or compacted
   * records): without it, the first marker fails the task.
   *
   * <p>Spark reads {@code spark.streaming.kafka.allowNonConsecutiveOffsets} from the application's
   * configuration when a Kafka RDD is created. Setting it there would change every other Kafka
   * stream of the application for the rest of its life, so the library never does: it sets the
   * choice on its own RDDs only (Spark's field {@code KafkaRDD.compacted}, checked at start). A
   * value the user set explicitly is respected.
   */
  private static final java.lang.reflect.Field COMPACTED = compactedField();

  private static java.lang.reflect.Field compactedField() {
    try {
      java.lang.reflect.Field f = KafkaRDD.class.getDeclaredField("compacted");
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw new IllegalStateException(
          "this Spark version's KafkaRDD has no field 'compacted' (tested with Spark 3.5):"
              + " the library cannot let its reader step over Kafka commit markers",
          e);
    }
  }

  private void allowMarkers(KafkaRDD<K, V> rdd) {
    org.apache.spark.SparkConf conf = ssc().sparkContext().conf();
    boolean allow = !conf.contains(ALLOW) || conf.getBoolean(ALLOW, false);
    try {
      COMPACTED.setBoolean(rdd, allow);
    } catch (IllegalAccessException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Warns when the user turned off what a reader of transactional topics needs. */
  public static void checkMarkersSetting(
      org.apache.spark.streaming.api.java.JavaStreamingContext ssc) {
    org.apache.spark.SparkConf conf = ssc.sparkContext().sc().conf();
    if (conf.contains(ALLOW) && !conf.getBoolean(ALLOW, false)) {
      org.slf4j.LoggerFactory.getLogger(TransactionAwareStream.class)
          .warn(
              "{}=false: a topic written with Kafka transactions fails at its first commit marker;"
                  + " remove the setting to let the library's stream step over markers",
              ALLOW);
    }
  }

  /** The element type, for Spark's Java wrappers. */
  public static <K, V> scala.reflect.ClassTag<ConsumerRecord<K, V>> classTag() {
    @SuppressWarnings("unchecked")
    scala.reflect.ClassTag<ConsumerRecord<K, V>> tag =
        (scala.reflect.ClassTag<ConsumerRecord<K, V>>)
            (Object) scala.reflect.ClassTag$.MODULE$.apply(ConsumerRecord.class);
    return tag;
  }
}
