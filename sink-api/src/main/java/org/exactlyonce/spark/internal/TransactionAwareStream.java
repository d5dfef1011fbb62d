package org.exactlyonce.spark.internal;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.StreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategy;
import org.apache.spark.streaming.kafka010.DefaultPerPartitionConfig;
import org.apache.spark.streaming.kafka010.DirectKafkaInputDStream;
import org.apache.spark.streaming.kafka010.LocationStrategy;
import scala.collection.JavaConverters;

/**
 * Spark's direct stream with one change: batch end offsets are chosen by {@link VisibleEnds}, so
 * that a topic written with Kafka transactions (commit markers, aborted records) never leaves a
 * partition range that Spark's reader cannot finish (SPARK-24720). Everything else (rate limits,
 * backpressure, cached consumers, preferred locations, offset ranges) is Spark's own.
 *
 * <p>Overrides {@code clamp}, the one step between "latest offsets" and "this batch's end offsets"
 * in Spark 3.x's {@code DirectKafkaInputDStream.compute}; tested with Spark 3.5.5.
 */
// Raw supertype: javac cannot reconcile the generic signatures Scala gives compute() in
// DStream<T> and DirectKafkaInputDStream<K, V> (same erasure, different return types).
@SuppressWarnings({"rawtypes", "unchecked"})
public final class TransactionAwareStream<K, V> extends DirectKafkaInputDStream {
  private static final long serialVersionUID = 1L;

  private final Map<String, Object> params;
  private transient VisibleEnds ends;

  public TransactionAwareStream(
      StreamingContext ssc,
      LocationStrategy locations,
      ConsumerStrategy<K, V> consumers,
      Map<String, Object> params) {
    super(ssc, locations, consumers, new DefaultPerPartitionConfig(ssc.sparkContext().getConf()));
    this.params = new HashMap<>(params);
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
    Map<TopicPartition, Object> boxed = new HashMap<>(adjusted);
    return JavaConverters.mapAsScalaMapConverter(boxed)
        .asScala()
        .toMap(scala.Predef$.MODULE$.$conforms());
  }

  @Override
  public synchronized void stop() {
    super.stop();
    if (ends != null) {
      ends.close();
      ends = null;
    }
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
   * Lets Spark's reader skip offset gaps (commit markers, aborted or compacted records): without
   * it, the first marker fails the task. Set on the running context's configuration unless the user
   * chose a value; read by every Kafka RDD when it is created.
   */
  public static void allowMarkers(org.apache.spark.streaming.api.java.JavaStreamingContext ssc) {
    org.apache.spark.SparkConf conf = ssc.sparkContext().sc().conf();
    if (!conf.contains(ALLOW)) {
      conf.set(ALLOW, "true");
    } else if (!conf.getBoolean(ALLOW, false)) {
      org.slf4j.LoggerFactory.getLogger(TransactionAwareStream.class)
          .warn(
              "{}=false: a topic written with Kafka transactions fails at its first commit marker;"
                  + " remove the setting to let the library set it",
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
