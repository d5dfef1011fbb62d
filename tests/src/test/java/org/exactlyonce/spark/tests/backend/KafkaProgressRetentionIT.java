package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A Kafka sink's progress lives in consumer-group offsets, which the broker expires {@code
 * offsets.retention.minutes} after each partition's own last commit. Against a broker of its own
 * whose retention is one minute (checked every second), a partition that receives nothing for
 * longer than that keeps its offset while its neighbour is busy, and a restart resumes it where it
 * was: the whole output holds every input exactly once.
 *
 * <p>Tagged slow (it waits out the broker's retention, about 75 s): {@code mvn -B verify -Pslow -pl
 * tests -am}. The default run covers the restart side with offsets deleted by hand ({@code
 * KafkaTransactionalSinkIT}).
 */
@Tag("slow")
class KafkaProgressRetentionIT {
  private static final Duration RETENTION = Duration.ofMinutes(1);

  private static KafkaBroker broker;

  @BeforeAll
  static void startBroker() {
    broker =
        KafkaBroker.start(
            TestServers.newDir("kafka-short-retention", false),
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
  void anIdlePartitionKeepsItsProgressPastTheBrokersOffsetRetentionAndResumesExactlyOnce()
      throws Exception {
    try (StreamHarness h = new StreamHarness(broker, "k-idle", 2, Map.of())) {
      String out = "k-idle-out-" + System.nanoTime();
      broker.createTopic(out, 2);
      KafkaSink<String> sink =
          KafkaSink.<String>transactional("k-idle")
              .bootstrapServers(broker.bootstrapServers())
              .topic(out)
              .key(ToBytes.utf8(s -> s))
              .value(ToBytes.utf8(s -> s))
              .apiTimeout(Duration.ofSeconds(10))
              .progressKeepAlive(Duration.ofSeconds(5))
              .build();
      List<String> inputs = Collections.synchronizedList(new ArrayList<>());
      send(h, 0, "first-p0-", 50, inputs);
      send(h, 1, "first-p1-", 50, inputs);
      TopicPartition idle = new TopicPartition(h.topic, 1);

      JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.milliseconds(500));
      ScheduledExecutorService feeder = Executors.newSingleThreadScheduledExecutor();
      try {
        ExactlyOnceStream<String, String> stream =
            ExactlyOnce.directStream(ssc, h.kafkaParams(), List.of(h.topic), sink);
        ExactlyOnce.foreachRDD(stream, KafkaTransactionalSinkIT.TWO_OUTPUTS, sink);
        ssc.start();
        awaitCaughtUp(h, sink, stream);
        // Partition 0 keeps receiving and committing; partition 1 receives nothing from now on.
        int[] n = {0};
        feeder.scheduleAtFixedRate(
            () -> send(h, 0, "busy-" + n[0]++ + "-", 1, inputs), 0, 500, TimeUnit.MILLISECONDS);
        // Longer than the retention plus the broker's expiry check: without keep-alives the idle
        // partition's offset vanishes about 61 s after its last commit.
        await()
            .during(RETENTION.plusSeconds(15))
            .atMost(RETENTION.plusSeconds(75))
            .pollInterval(Duration.ofSeconds(1))
            .until(
                () ->
                    stream.failure() == null
                        && KafkaOutput.groupOffsets(broker, sink.progressGroup())
                            .containsKey(idle));
        feeder.shutdown();
        assertThat(feeder.awaitTermination(30, TimeUnit.SECONDS)).isTrue();
        awaitCaughtUp(h, sink, stream);
      } finally {
        feeder.shutdownNow();
        ssc.stop(false, true);
      }

      // A restart (the default start position, earliest): the idle partition resumes where it
      // was, not from its earliest offset.
      send(h, 0, "second-p0-", 20, inputs);
      send(h, 1, "second-p1-", 20, inputs);
      assertThat(
              h.run(
                  sink,
                  s -> ExactlyOnce.foreachRDD(s, KafkaTransactionalSinkIT.TWO_OUTPUTS, sink),
                  () ->
                      KafkaOutput.groupOffsets(broker, sink.progressGroup())
                          .equals(h.endOffsets())))
          .isNull();
      List<String> expected = new ArrayList<>();
      for (String v : inputs) {
        expected.add(v + "/a");
        expected.add(v + "/b");
      }
      assertThat(KafkaOutput.committed(broker, out).stream().map(r -> r.value()).sorted().toList())
          .containsExactlyElementsOf(expected.stream().sorted().toList());
    }
  }

  private static void awaitCaughtUp(
      StreamHarness h, KafkaSink<String> sink, ExactlyOnceStream<String, String> stream) {
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () ->
                stream.failure() != null
                    || KafkaOutput.groupOffsets(broker, sink.progressGroup())
                        .equals(h.endOffsets()));
    assertThat(stream.failure()).isNull();
  }

  private static void send(
      StreamHarness h, int partition, String prefix, int count, List<String> inputs) {
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      String v = prefix + i;
      records.add(new ProducerRecord<>(h.topic, partition, v, v));
      inputs.add(v);
    }
    broker.send(records);
  }
}
