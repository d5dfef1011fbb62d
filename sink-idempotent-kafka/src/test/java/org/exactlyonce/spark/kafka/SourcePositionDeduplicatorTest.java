package org.exactlyonce.spark.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;

class SourcePositionDeduplicatorTest {

  private static ConsumerRecord<String, String> output(int outPartition, SourcePosition p) {
    ConsumerRecord<String, String> r =
        new ConsumerRecord<>(
            "out", outPartition, 0, null, p.topic() + p.offset() + "#" + p.index());
    r.headers().add(new RecordHeader(SourcePosition.HEADER, p.toBytes()));
    return r;
  }

  @Test
  void replaysOfEveryAttemptAreDroppedAndTheExactSequenceRemains() {
    // Two source partitions, outputs 0..99 each with two outputs per record, written to two output
    // partitions; every "attempt" fails after a random prefix and the next one starts over at the
    // last committed offset, which is at or before where the failed attempt got to.
    Random random = new Random(42);
    List<ConsumerRecord<String, String>> wire = new ArrayList<>();
    List<String> expected = new ArrayList<>();
    for (int source = 0; source < 2; source++) {
      for (long o = 0; o < 100; o++) {
        for (int i = 0; i < 2; i++) {
          expected.add("in-" + source + ":" + o + "#" + i);
        }
      }
      long committed = 0;
      while (committed < 100) {
        long until = Math.min(100, committed + 1 + random.nextInt(20));
        boolean fails = random.nextInt(3) == 0;
        long sentUntil = fails ? committed + random.nextInt((int) (until - committed) + 1) : until;
        for (long o = committed; o < sentUntil; o++) {
          for (int i = 0; i < 2; i++) {
            wire.add(output((int) (o % 2), new SourcePosition("in-" + source, source, o, i)));
          }
        }
        if (!fails) {
          committed = until;
        }
      }
    }
    SourcePositionDeduplicator dedupe = new SourcePositionDeduplicator();
    List<String> kept =
        dedupe.filter(wire).stream()
            .map(r -> SourcePosition.of(r.headers()).orElseThrow())
            .map(p -> p.topic() + ":" + p.offset() + "#" + p.index())
            .sorted()
            .toList();

    assertThat(wire.size())
        .as("the wire must hold duplicates for this test to mean anything")
        .isGreaterThan(expected.size());
    assertThat(kept).containsExactlyElementsOf(expected.stream().sorted().toList());
    assertThat(dedupe.dropped()).isEqualTo(wire.size() - expected.size());
    assertThat(dedupe.tracked()).isEqualTo(4); // 2 output partitions x 2 source partitions
  }

  private static ConsumerRecord<String, String> output(
      int outPartition, String pipeline, SourcePosition p) {
    ConsumerRecord<String, String> r = output(outPartition, p);
    r.headers()
        .add(
            new RecordHeader(
                SourcePosition.PIPELINE_HEADER,
                pipeline.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    return r;
  }

  @Test
  void twoPipelinesReadingOneSourceIntoOneTopicDoNotDropEachOthersRecords() {
    SourcePositionDeduplicator dedupe = new SourcePositionDeduplicator();
    for (int o = 0; o < 5; o++) {
      assertThat(dedupe.isFirst(output(0, "clicks", new SourcePosition("in", 0, o, 0)))).isTrue();
      assertThat(dedupe.isFirst(output(0, "revenue", new SourcePosition("in", 0, o, 0))))
          .as("the other pipeline's output of the same source position")
          .isTrue();
    }
    assertThat(dedupe.isFirst(output(0, "clicks", new SourcePosition("in", 0, 3, 0)))).isFalse();
    assertThat(dedupe.dropped()).isEqualTo(1);
    assertThat(dedupe.tracked()).isEqualTo(2);
  }

  @Test
  void recordsWithoutAPositionAreKept() {
    SourcePositionDeduplicator dedupe = new SourcePositionDeduplicator();
    var plain = new ConsumerRecord<String, String>("out", 0, 7, null, "v");
    assertThat(dedupe.isFirst(plain)).isTrue();
    assertThat(dedupe.isFirst(plain)).isTrue();
  }

  @Test
  void seenSeedsTheReaderWhenItResumes() {
    SourcePositionDeduplicator dedupe = new SourcePositionDeduplicator();
    dedupe.seen(output(0, new SourcePosition("in", 3, 10, 0)));
    assertThat(dedupe.isFirst(output(0, new SourcePosition("in", 3, 10, 0)))).isFalse();
    assertThat(dedupe.isFirst(output(0, new SourcePosition("in", 3, 10, 1)))).isTrue();
  }

  @Test
  void positionsRoundTripThroughTheirHeaderText() {
    SourcePosition p = new SourcePosition("a.b_c-d", 12, 345678901234L, 3);
    assertThat(SourcePosition.parse(p.format())).isEqualTo(p);
    assertThatThrownBy(() -> SourcePosition.parse("nope:1"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("topic:partition:offset:index");
  }
}
