package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.SourcePosition;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.kafka.internal.Outputs;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Poison records: routed to dead letters in the same exactly-once unit, or stop the job. */
class BadInputIT {
  private static final long SEED = 20261124L;

  private JdbcTestSupport db;
  private StreamHarness h;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    h = new StreamHarness("poison", 3);
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
    h.close();
  }

  /** Strict UTF-8 "valid-<n>", or an exception: the kind of parser a real job has. */
  static Out parse(ConsumerRecord<byte[], byte[]> r) throws CharacterCodingException {
    String s =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(r.value()))
            .toString();
    if (!s.matches("valid-\\d+")) {
      throw new IllegalArgumentException("not a click: " + s.length() + " chars");
    }
    return new Out(s, r.topic(), r.partition(), r.offset());
  }

  /** Half valid records, half random bytes (some empty); returns how many are valid. */
  private int produceFuzz(int n) {
    Random random = new Random(SEED);
    System.out.println("BadInputIT fuzz seed " + SEED);
    List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
    int valid = 0;
    for (int i = 0; i < n; i++) {
      byte[] value;
      if (random.nextBoolean()) {
        value = ("valid-" + i).getBytes(StandardCharsets.UTF_8);
        valid++;
      } else {
        value = new byte[random.nextInt(64)];
        random.nextBytes(value);
      }
      records.add(new ProducerRecord<>(h.topic, ("k" + i).getBytes(StandardCharsets.UTF_8), value));
    }
    h.kafka.sendBytes(records);
    return valid;
  }

  private Map<String, Object> bytesParams() {
    Map<String, Object> p = h.kafkaParams();
    p.put("key.deserializer", ByteArrayDeserializer.class);
    p.put("value.deserializer", ByteArrayDeserializer.class);
    return p;
  }

  private Set<String> positions(String sql) {
    Set<String> out = new HashSet<>();
    List<String> all = new ArrayList<>();
    try (var c = db.connect();
        ResultSet rs = c.createStatement().executeQuery(sql)) {
      while (rs.next()) {
        all.add(rs.getString(1) + "-" + rs.getInt(2) + "@" + rs.getLong(3));
      }
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
    out.addAll(all);
    assertThat(all).as("positions in " + sql).doesNotHaveDuplicates();
    return out;
  }

  /** Every input position is in the output or the dead letters, exactly once, never both. */
  private void assertEveryRecordOnceInOutputOrDeadLetters(int total, int valid) {
    Set<String> written = positions("SELECT topic, kafka_partition, src_offset FROM out");
    Set<String> dead =
        positions(
            "SELECT topic, kafka_partition, src_offset FROM dead_letters WHERE pipeline_id = 'fuzz'");
    assertThat(written).hasSize(valid);
    assertThat(dead).hasSize(total - valid);
    assertThat(written).doesNotContainAnyElementsOf(dead);
    Set<String> all = new HashSet<>(written);
    all.addAll(dead);
    Set<String> expected = new HashSet<>();
    h.endOffsets()
        .forEach(
            (tp, end) -> {
              for (long o = 0; o < end; o++) {
                expected.add(tp.topic() + "-" + tp.partition() + "@" + o);
              }
            });
    assertThat(all).isEqualTo(expected);
  }

  @Test
  void randomBytesEndUpInTheOutputOrTheDeadLettersExactlyOnceThroughATransactionalSink() {
    int valid = produceFuzz(1200);
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional("fuzz")
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .deadLetterTable("dead_letters")
            .build();
    Map<TopicPartition, Long> end = h.endOffsets();
    assertThat(
            h.<byte[], byte[]>run(
                bytesParams(),
                sink,
                s -> ExactlyOnce.foreachRDD(s, r -> List.of(parse(r)), sink),
                () -> db.stored("fuzz").equals(end)))
        .isNull();
    assertEveryRecordOnceInOutputOrDeadLetters(1200, valid);
  }

  @Test
  void randomBytesEndUpInTheOutputTopicOrTheDeadLetterTopicExactlyOnceThroughTheKafkaSink() {
    int valid = produceFuzz(1200);
    String out = "fuzz-out-" + System.nanoTime();
    String dlq = "fuzz-dlq-" + System.nanoTime();
    h.kafka.createTopic(out, 2);
    h.kafka.createTopic(dlq, 1);
    KafkaSink<Out> sink =
        KafkaSink.<Out>transactional("fuzz-kafka")
            .bootstrapServers(h.kafka.bootstrapServers())
            .topic(out)
            .value(ToBytes.utf8(Out::id))
            .deadLetterTopic(dlq)
            .build();
    // One attempt dies after sending part of its outputs and dead letters: its retry must not
    // duplicate either.
    var fired = FaultPoints.failOnce(Outputs.BEFORE_COMMIT, "task dies before its commit");
    Map<TopicPartition, Long> end = h.endOffsets();
    assertThat(
            h.<byte[], byte[]>run(
                bytesParams(),
                sink,
                s -> ExactlyOnce.foreachRDD(s, r -> List.of(parse(r)), sink),
                () -> KafkaOutput.groupOffsets(h.kafka, sink.progressGroup()).equals(end)))
        .isNull();

    assertThat(fired).isTrue();
    List<String> written = sourcePositions(KafkaOutput.committed(h.kafka, out));
    List<String> dead = sourcePositions(KafkaOutput.committed(h.kafka, dlq));
    assertThat(written).doesNotHaveDuplicates().hasSize(valid);
    assertThat(dead).doesNotHaveDuplicates().hasSize(1200 - valid);
    assertThat(KafkaOutput.committed(h.kafka, dlq))
        .allSatisfy(r -> assertThat(r.headers().lastHeader(Outputs.ERROR_HEADER)).isNotNull());
    Set<String> all = new HashSet<>(written);
    all.addAll(dead);
    Set<String> expected = new HashSet<>();
    end.forEach(
        (tp, e) -> {
          for (long o = 0; o < e; o++) {
            expected.add(tp.topic() + "-" + tp.partition() + "@" + o);
          }
        });
    assertThat(all).isEqualTo(expected);
  }

  private static List<String> sourcePositions(List<ConsumerRecord<String, String>> records) {
    return records.stream()
        .map(r -> SourcePosition.of(r.headers()).orElseThrow())
        .map(p -> p.topic() + "-" + p.partition() + "@" + p.offset())
        .toList();
  }

  @Test
  void deadLettersOfAnIdempotentSinkAreNotDuplicatedByAReplay() {
    db.execute("CREATE UNIQUE INDEX ON out (topic, kafka_partition, src_offset, id)");
    db.execute("ALTER TABLE out ADD COLUMN src_index int");
    db.execute("CREATE UNIQUE INDEX ON out (topic, kafka_partition, src_offset, src_index)");
    int valid = produceFuzz(900);
    var sink =
        JdbcSink.<Out>idempotent("fuzz")
            .connection(db.settings)
            .table("out")
            .columns("id")
            .values(o -> List.of(o.id()))
            .keyedBySourcePosition("topic", "kafka_partition", "src_offset", "src_index")
            .deadLetterTable("dead_letters")
            .build();
    AtomicBoolean fired =
        FaultPoints.failOnce(
            FaultPoints.IDEMPOTENT_BEFORE_OFFSET_COMMIT, "driver lost after the writes");
    Map<TopicPartition, Long> end = h.endOffsets();
    assertThat(
            h.<byte[], byte[]>run(
                bytesParams(),
                sink,
                s -> ExactlyOnce.foreachRDD(s, r -> List.of(parse(r)), sink),
                () -> db.stored("fuzz").equals(end)))
        .hasMessageContaining("injected");
    FaultPoints.clear();
    assertThat(
            h.<byte[], byte[]>run(
                bytesParams(),
                sink,
                s -> ExactlyOnce.foreachRDD(s, r -> List.of(parse(r)), sink),
                () -> db.stored("fuzz").equals(end)))
        .isNull();
    assertEveryRecordOnceInOutputOrDeadLetters(900, valid);
  }

  @Test
  void withoutADeadLetterTableABadRecordStopsTheJobNamingItsPosition() {
    h.send(List.of(new String[] {"k0", "valid-0"}, new String[] {"k1", "garbage"}));
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional("strict")
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .build();
    Throwable failure =
        h.run(
            sink,
            s ->
                ExactlyOnce.foreachRDD(
                    s,
                    r -> {
                      if (!r.value().startsWith("valid-")) {
                        throw new IllegalArgumentException("not a click: " + r.value());
                      }
                      return List.of(new Out(r.value(), r.topic(), r.partition(), r.offset()));
                    },
                    sink),
            () -> false);
    assertThat(failure)
        .hasMessageContaining("the record mapper failed on record " + h.topic + "-")
        .hasMessageContaining("not a click: garbage");
    // The bad record's range wrote nothing; it stays unread until someone fixes the job.
    assertThat(db.allIds()).doesNotContain("garbage");
  }
}
