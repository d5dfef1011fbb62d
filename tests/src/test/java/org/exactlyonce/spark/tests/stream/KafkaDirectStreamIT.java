package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.api.java.JavaInputDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.apache.spark.streaming.kafka010.HasOffsetRanges;
import org.apache.spark.streaming.kafka010.KafkaUtils;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.apache.spark.streaming.kafka010.OffsetRange;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.junit.jupiter.api.Test;

/** Proves the forked broker is real and that partition i of a direct-stream RDD holds range i. */
class KafkaDirectStreamIT {

  /** One RDD partition as seen on an executor: its range and the records it held. */
  record SeenPartition(
      OffsetRange range,
      List<String> topics,
      List<Integer> partitions,
      List<Long> offsets,
      List<String> values)
      implements java.io.Serializable {}

  static final ConcurrentLinkedQueue<SeenPartition> SEEN = new ConcurrentLinkedQueue<>();

  @Test
  void tenThousandRecordsRoundTripWithPartitionIHoldingOffsetRangeI() throws Exception {
    KafkaBroker kafka = TestServers.kafka();
    String topic = "smoke-" + System.nanoTime();
    kafka.createTopic(topic, 4);
    Set<String> sent = new HashSet<>();
    List<ProducerRecord<String, String>> input = new ArrayList<>();
    for (int i = 0; i < 10_000; i++) {
      String v = "v" + i;
      sent.add(v);
      input.add(new ProducerRecord<>(topic, "k" + i, v));
    }
    kafka.send(input);

    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", kafka.bootstrapServers());
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);
    params.put("group.id", "smoke");
    params.put("auto.offset.reset", "earliest");
    params.put("enable.auto.commit", false);

    SEEN.clear();
    JavaStreamingContext ssc =
        new JavaStreamingContext(
            new JavaSparkContext(SparkSetup.local("smoke", 2, 1)),
            org.apache.spark.streaming.Durations.milliseconds(500));
    try {
      JavaInputDStream<ConsumerRecord<String, String>> stream =
          KafkaUtils.createDirectStream(
              ssc,
              LocationStrategies.PreferConsistent(),
              ConsumerStrategies.<String, String>Subscribe(List.of(topic), params));
      stream.foreachRDD(
          rdd -> {
            OffsetRange[] ranges = ((HasOffsetRanges) rdd.rdd()).offsetRanges();
            rdd.foreachPartition(
                it -> {
                  OffsetRange r = ranges[org.apache.spark.TaskContext.get().partitionId()];
                  List<String> topics = new ArrayList<>();
                  List<Integer> parts = new ArrayList<>();
                  List<Long> offsets = new ArrayList<>();
                  List<String> values = new ArrayList<>();
                  it.forEachRemaining(
                      rec -> {
                        topics.add(rec.topic());
                        parts.add(rec.partition());
                        offsets.add(rec.offset());
                        values.add(rec.value());
                      });
                  SEEN.add(new SeenPartition(r, topics, parts, offsets, values));
                });
          });
      ssc.start();
      await("all 10,000 records seen")
          .atMost(Duration.ofSeconds(120))
          .until(() -> SEEN.stream().mapToInt(s -> s.values().size()).sum() >= 10_000);
    } finally {
      ssc.stop(true, true);
    }

    List<String> received = new ArrayList<>();
    Map<Integer, Long> covered = new HashMap<>();
    for (SeenPartition s : SEEN) {
      for (int i = 0; i < s.values().size(); i++) {
        assertThat(s.topics().get(i)).isEqualTo(s.range().topic());
        assertThat(s.partitions().get(i)).isEqualTo(s.range().partition());
        assertThat(s.offsets().get(i))
            .isBetween(s.range().fromOffset(), s.range().untilOffset() - 1);
      }
      // Without transactions every offset of the range holds one record.
      assertThat((long) s.values().size()).isEqualTo(s.range().count());
      received.addAll(s.values());
      covered.merge(s.range().partition(), s.range().count(), Long::sum);
    }
    assertThat(received).hasSize(10_000).doesNotHaveDuplicates();
    assertThat(new HashSet<>(received)).isEqualTo(sent);
    assertThat(covered.keySet()).containsExactlyInAnyOrder(0, 1, 2, 3);
  }
}
