package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Structured Streaming twin of {@code KafkaProgressRetentionIT}: against a broker of its own
 * whose offset retention is one minute, a query over a topic with one busy and one idle partition,
 * and later with nothing to read at all, keeps every progress offset past the retention; a restart
 * resumes each partition where it was, and the whole output holds every input once.
 *
 * <p>Tagged slow (it waits out the broker's retention twice, about 3 minutes): {@code mvn -B verify
 * -Pslow -pl tests -am}. The default run shows the adapter's keep-alive timer at work on an idle
 * query ({@code StructuredKafkaContract}).
 */
@Tag("slow")
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class StructuredKafkaProgressRetentionIT {
  private static final Duration RETENTION = Duration.ofMinutes(1);
  private static KafkaBroker broker;

  @BeforeAll
  static void startBroker() {
    broker =
        KafkaBroker.start(
            TestServers.newDir("kafka-short-retention-structured", false),
            TestServers.tls(),
            Map.of(
                "offsets.retention.minutes",
                String.valueOf(RETENTION.toMinutes()),
                "offsets.retention.check.interval.ms",
                "1000"));
  }

  @AfterAll
  static void stopBroker() {
    if (broker != null) {
      broker.close();
    }
  }

  @Test
  void idlePartitionsAndAnIdleQueryKeepTheirProgressPastTheBrokersRetention() throws Exception {
    String topic = "s-idle-" + System.nanoTime();
    String out = topic + "-out";
    broker.createTopic(topic, 2);
    broker.createTopic(out, 2);
    KafkaSink<String> sink =
        KafkaSink.<String>transactional("s-idle-" + topic)
            .bootstrapServers(broker.bootstrapServers())
            .topic(out)
            .key(ToBytes.utf8(s -> s))
            .value(ToBytes.utf8(s -> s))
            .apiTimeout(Duration.ofSeconds(10))
            .progressKeepAlive(Duration.ofSeconds(5))
            .build();
    List<String> inputs = Collections.synchronizedList(new ArrayList<>());
    send(topic, 0, "first-p0-", 50, inputs);
    send(topic, 1, "first-p1-", 50, inputs);
    TopicPartition idle = new TopicPartition(topic, 1);
    Map<String, String> source =
        Map.of("kafka.bootstrap.servers", broker.bootstrapServers(), "subscribe", topic);

    SparkSession spark =
        SparkSession.builder()
            .config(SparkSetup.local("structured-retention", 2, 4).set("spark.ui.enabled", "false"))
            .getOrCreate();
    ScheduledExecutorService feeder = Executors.newSingleThreadScheduledExecutor();
    try {
      StreamingQuery q = start(spark, sink, source);
      q.processAllAvailable();
      // Partition 0 keeps receiving, so batches run back to back; partition 1 receives nothing:
      // Spark's Kafka source plans no range for it, so it is in no batch's commit.
      int[] n = {0};
      feeder.scheduleAtFixedRate(
          () -> send(topic, 0, "busy-" + n[0]++ + "-", 1, inputs), 0, 100, TimeUnit.MILLISECONDS);
      awaitKept(q, sink, idle);
      feeder.shutdown();
      assertThat(feeder.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
      q.processAllAvailable();
      // Now nothing arrives at all: the query runs no batch, only the adapter's timer writes.
      awaitKept(q, sink, new TopicPartition(topic, 0));
      q.stop();

      send(topic, 0, "second-p0-", 20, inputs);
      send(topic, 1, "second-p1-", 20, inputs);
      StreamingQuery again = start(spark, sink, source);
      again.processAllAvailable();
      again.stop();
    } finally {
      feeder.shutdownNow();
      spark.stop();
    }

    assertThat(KafkaOutput.groupOffsets(broker, sink.progressGroup()))
        .isEqualTo(StreamHarness.endOffsets(broker, topic, 2));
    assertThat(KafkaOutput.committed(broker, out).stream().map(ConsumerRecord::value).sorted())
        .containsExactlyElementsOf(inputs.stream().sorted().toList());
  }

  private static StreamingQuery start(
      SparkSession spark, KafkaSink<String> sink, Map<String, String> source) {
    return ExactlyOnceForeachBatch.transactional(sink)
        .foreachRecord(r -> List.of(new String(r.value(), StandardCharsets.UTF_8)))
        .kafka(spark, source)
        .start();
  }

  /**
   * Longer than the retention plus the broker's expiry check: without keep-alives, {@code tp}'s
   * offset vanishes about 61 s after its last commit.
   */
  private static void awaitKept(StreamingQuery q, KafkaSink<String> sink, TopicPartition tp) {
    await()
        .during(RETENTION.plusSeconds(15))
        .atMost(RETENTION.plusSeconds(75))
        .pollInterval(Duration.ofSeconds(1))
        .until(
            () ->
                q.isActive()
                    && KafkaOutput.groupOffsets(broker, sink.progressGroup()).containsKey(tp));
  }

  private static void send(String topic, int partition, String prefix, int count, List<String> in) {
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      String v = prefix + i;
      records.add(new ProducerRecord<>(topic, partition, v, v));
      in.add(v);
    }
    broker.send(records);
  }
}
