package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;
import org.exactlyonce.spark.internal.VisibleEnds;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.junit.jupiter.api.Test;

/**
 * Batch ends chosen by {@link VisibleEnds} against a real broker: kept when the last offset of the
 * range is a record (checked for all partitions in one pass), cut back over a trailing commit
 * marker, moved forward over a range of aborted records and markers only.
 */
class VisibleEndsIT {
  private final KafkaBroker kafka = TestServers.kafka();

  private Map<String, Object> params() {
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", kafka.bootstrapServers());
    p.put("isolation.level", "read_committed");
    return p;
  }

  @Test
  void endsOnRecordsStandAndEndsOnMarkersMoveToTheNearestVisibleRecord() throws Exception {
    String topic = "visible-ends-" + System.nanoTime();
    kafka.createTopic(topic, 3);
    TopicPartition plain = new TopicPartition(topic, 0);
    TopicPartition committed = new TopicPartition(topic, 1);
    TopicPartition abortedThenCommitted = new TopicPartition(topic, 2);
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      records.add(new ProducerRecord<>(topic, 0, "k", "v" + i)); // offsets 0-4
    }
    kafka.send(records);
    try (KafkaProducer<String, String> p =
        new KafkaProducer<>(
            Map.of(
                "bootstrap.servers", kafka.bootstrapServers(), "transactional.id", "visible-ends"),
            new StringSerializer(),
            new StringSerializer())) {
      p.initTransactions();
      // partition 1: records 0-2, commit marker 3
      p.beginTransaction();
      for (int i = 0; i < 3; i++) {
        p.send(new ProducerRecord<>(topic, 1, "k", "c" + i));
      }
      p.commitTransaction();
      // partition 2: aborted 0-1, abort marker 2, records 3-4, commit marker 5
      p.beginTransaction();
      p.send(new ProducerRecord<>(topic, 2, "k", "a0"));
      p.send(new ProducerRecord<>(topic, 2, "k", "a1"));
      p.flush();
      p.abortTransaction();
      p.beginTransaction();
      p.send(new ProducerRecord<>(topic, 2, "k", "c0"));
      p.send(new ProducerRecord<>(topic, 2, "k", "c1"));
      p.commitTransaction();
    }
    try (VisibleEnds ends = new VisibleEnds(params(), Duration.ofSeconds(30))) {
      Map<TopicPartition, Long> adjusted =
          ends.adjust(
              Map.of(plain, 0L, committed, 0L, abortedThenCommitted, 0L),
              Map.of(plain, 5L, committed, 4L, abortedThenCommitted, 3L),
              Map.of(plain, 5L, committed, 4L, abortedThenCommitted, 6L));
      assertThat(adjusted)
          .containsEntry(plain, 5L) // ends on record 4: stands
          .containsEntry(committed, 3L) // ends on the commit marker: cut back after record 2
          .containsEntry(abortedThenCommitted, 4L); // nothing visible: forward to record 3
      // Empty ranges are left alone.
      assertThat(ends.adjust(Map.of(plain, 5L), Map.of(plain, 5L), Map.of(plain, 5L)))
          .containsEntry(plain, 5L);
    }
  }

  @Test
  void manyPartitionsEndingOnRecordsAreCheckedInOnePass() throws Exception {
    String topic = "visible-ends-many-" + System.nanoTime();
    int partitions = 48;
    kafka.createTopic(topic, partitions);
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    Map<TopicPartition, Long> from = new HashMap<>();
    Map<TopicPartition, Long> until = new HashMap<>();
    for (int part = 0; part < partitions; part++) {
      for (int i = 0; i < 3; i++) {
        records.add(new ProducerRecord<>(topic, part, "k", "v" + i));
      }
      from.put(new TopicPartition(topic, part), 0L);
      until.put(new TopicPartition(topic, part), 1L + part % 3); // ends on offset 0, 1 or 2
    }
    kafka.send(records);
    try (VisibleEnds ends = new VisibleEnds(params(), Duration.ofSeconds(30))) {
      long t0 = System.nanoTime();
      Map<TopicPartition, Long> adjusted = ends.adjust(from, until, until);
      long firstMs = (System.nanoTime() - t0) / 1_000_000;
      t0 = System.nanoTime();
      ends.adjust(from, until, until);
      long secondMs = (System.nanoTime() - t0) / 1_000_000;
      System.out.printf(
          "VisibleEnds: %d partitions probed in %d ms (first call, with connection), %d ms%n",
          partitions, firstMs, secondMs);
      assertThat(adjusted).isEqualTo(until);
    }
  }
}
