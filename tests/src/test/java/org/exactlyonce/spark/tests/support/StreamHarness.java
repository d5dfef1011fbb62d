package org.exactlyonce.spark.tests.support;

import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;

/** A topic, a Spark context and the loop "start the job, wait for a condition, stop it". */
public final class StreamHarness implements AutoCloseable {
  public final KafkaBroker kafka;
  public final String topic;
  public final int partitions;
  public final JavaSparkContext sc;

  public StreamHarness(String prefix, int partitions) {
    this(prefix, partitions, Map.of());
  }

  /** With extra Spark settings, for example a rate limit so that a run has several batches. */
  public StreamHarness(String prefix, int partitions, Map<String, String> sparkConf) {
    this(TestServers.kafka(), prefix, partitions, sparkConf);
  }

  /** On a broker of the test's own (for example one with short offset retention). */
  public StreamHarness(
      KafkaBroker kafka, String prefix, int partitions, Map<String, String> sparkConf) {
    this(kafka, prefix, partitions, withSettings(SparkSetup.local(prefix, 2, 4), sparkConf));
  }

  /** On a Spark of its own, for example a standalone cluster's driver. */
  public StreamHarness(String prefix, int partitions, SparkConf conf) {
    this(TestServers.kafka(), prefix, partitions, conf);
  }

  private StreamHarness(KafkaBroker kafka, String prefix, int partitions, SparkConf conf) {
    this.kafka = kafka;
    this.topic = prefix + "-" + System.nanoTime();
    this.partitions = partitions;
    kafka.createTopic(topic, partitions);
    this.sc = new JavaSparkContext(conf);
  }

  private static SparkConf withSettings(SparkConf conf, Map<String, String> settings) {
    settings.forEach(conf::set);
    return conf;
  }

  public Map<String, Object> kafkaParams() {
    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", kafka.bootstrapServers());
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);
    params.put("max.poll.records", 1000);
    return params;
  }

  /** Sends (key, value) records, each acknowledged. */
  public void send(List<String[]> keyValues) {
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (String[] kv : keyValues) {
      records.add(new ProducerRecord<>(topic, kv[0], kv[1]));
    }
    kafka.send(records);
  }

  public Map<TopicPartition, Long> endOffsets() {
    return endOffsets(kafka, topic, partitions);
  }

  /** The end offset of each of the {@code partitions} partitions of {@code topic}. */
  public static Map<TopicPartition, Long> endOffsets(
      KafkaBroker kafka, String topic, int partitions) {
    Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
    for (int p = 0; p < partitions; p++) {
      specs.put(new TopicPartition(topic, p), OffsetSpec.latest());
    }
    Map<TopicPartition, Long> end = new HashMap<>();
    try (var admin = kafka.admin()) {
      admin.listOffsets(specs).all().get().forEach((tp, info) -> end.put(tp, info.offset()));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
    return end;
  }

  /**
   * Runs a job on {@code sink} wired by {@code wire} until {@code done} or the stream fails, then
   * stops it; returns the stream's failure (null if none).
   */
  public Throwable run(
      ExactlyOnceSink sink,
      Consumer<ExactlyOnceStream<String, String>> wire,
      Callable<Boolean> done) {
    return run(kafkaParams(), sink, wire, done);
  }

  /** Like {@link #run(ExactlyOnceSink, Consumer, Callable)} with other consumer settings. */
  public <K, V> Throwable run(
      Map<String, Object> params,
      ExactlyOnceSink sink,
      Consumer<ExactlyOnceStream<K, V>> wire,
      Callable<Boolean> done) {
    return run(
        ssc -> {
          ExactlyOnceStream<K, V> stream =
              ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
          wire.accept(stream);
          return stream;
        },
        done);
  }

  /**
   * Runs the stream {@code create} builds on a new streaming context (for example through {@link
   * ExactlyOnce#stream}) until {@code done} or the stream fails, then stops it; returns the
   * stream's failure (null if none).
   */
  public <K, V> Throwable run(
      Function<JavaStreamingContext, ExactlyOnceStream<K, V>> create, Callable<Boolean> done) {
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    ExactlyOnceStream<K, V> stream = null;
    try {
      stream = create.apply(ssc);
      ExactlyOnceStream<K, V> started = stream;
      ssc.start();
      await()
          .atMost(Duration.ofSeconds(120))
          .pollInterval(Duration.ofMillis(200))
          // The probe reads the backend, which a chaos test may have just killed: try again.
          .ignoreExceptions()
          .until(() -> started.failure() != null || done.call());
      return stream.failure();
    } finally {
      // After a failure every later batch is refused and writes nothing: a graceful stop only
      // waited for them, up to its timeout of ten batch intervals (5 s), after a failing run.
      boolean failed = stream != null && stream.failure() != null;
      ssc.stop(false, !failed);
    }
  }

  @Override
  public void close() {
    sc.stop();
  }
}
