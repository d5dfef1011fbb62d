package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The contract for the Kafka sinks through the adapter: each record's id written to an output topic
 * of the test's own, read the way the sink's readers read it ({@code read_committed} for the
 * transactional sink, repeated source positions dropped for the idempotent one). Their progress
 * lives in a consumer group the broker expires unless written again, so the adapter keeps it alive
 * between batches; the idle-query test below shows its timer runs while the query reads nothing.
 */
abstract class StructuredKafkaContract extends StructuredForeachBatchContract {
  String out;

  /**
   * Where {@link #ids()} starts reading each output partition: past what {@link #clearOutput} saw.
   */
  private final Map<Integer, Long> clearedTo = new HashMap<>();

  abstract KafkaSink.Builder<String, ?> builder(String pipeline);

  /** The output as this sink's readers see it. */
  abstract List<ConsumerRecord<String, String>> read(String topic);

  @BeforeEach
  void createOutput() {
    out = topic + "-out";
    kafka.createTopic(out, 2);
  }

  @Override
  ExactlyOnceSink sink(String pipeline) {
    return (ExactlyOnceSink) builder(pipeline).build();
  }

  /** The sink with a keep-alive every {@code interval}. */
  ExactlyOnceSink sink(String pipeline, Duration interval) {
    return (ExactlyOnceSink) builder(pipeline).progressKeepAlive(interval).build();
  }

  KafkaSink.Builder<String, ?> configured(KafkaSink.Builder<String, ?> b) {
    // Spark's own Kafka sink options, as a query moved from writeStream().format("kafka") has them.
    return b.sparkKafkaOptions(
            Map.of(
                "kafka.bootstrap.servers",
                kafka.bootstrapServers(),
                "topic",
                out,
                "kafka.linger.ms",
                "5"))
        .key(ToBytes.utf8(s -> s))
        .value(ToBytes.utf8(s -> s));
  }

  @Override
  List<String> ids() {
    return read(out).stream()
        .filter(r -> r.offset() >= clearedTo.getOrDefault(r.partition(), 0L))
        .map(ConsumerRecord::value)
        .toList();
  }

  /** An output topic cannot be emptied: later reads start past every record it holds now. */
  @Override
  void clearOutput() {
    clearedTo.clear();
    for (ConsumerRecord<String, String> r : KafkaOutput.uncommitted(kafka, out)) {
      clearedTo.merge(r.partition(), r.offset() + 1, Math::max);
    }
  }

  /** The adapter's builder for a sink of this contract. */
  abstract ExactlyOnceForeachBatch.Builder<?> query(ExactlyOnceSink sink);

  @Override
  ExactlyOnceForeachBatch.Builder<?> query(String pipeline) {
    return query(sink(pipeline));
  }

  static List<String> value(ConsumerRecord<byte[], byte[]> r) {
    return List.of(new String(r.value(), StandardCharsets.UTF_8));
  }

  /**
   * A query whose pattern matches its sink's own output topic (Spark's source finds the pattern in
   * a topic's name) would write every output again, without end: {@code start()} refuses it before
   * the writer epoch, naming the topic, so the running query of the pipeline goes on writing every
   * record once.
   */
  @Test
  void aQueryWhosePatternMatchesItsOwnOutputTopicIsRefusedBeforeItStarts() throws Exception {
    produce(10);
    StreamingQuery running = startQuery(pipeline, null);
    running.processAllAvailable();
    var q =
        query(sink(pipeline))
            .kafka(
                spark,
                Map.of(
                    "kafka.bootstrap.servers",
                    kafka.bootstrapServers(),
                    "subscribePattern",
                    Pattern.quote(topic)));
    assertThatThrownBy(q::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("reads topic '" + out + "', which is its output topic")
        .hasMessageContaining("without end");

    // Refused before its writer epoch: the running query of the pipeline is not fenced.
    produce(10);
    running.processAllAvailable();
    running.stop();
    assertThat(sorted(ids())).isEqualTo(sorted(produced));
  }

  /**
   * A query with nothing to read runs no batch, so only the adapter's timer writes its progress
   * between batches: when a newer query takes the pipeline, that timer's next keep-alive finds the
   * older query fenced and stops it, though it never reads another record. (This shows the timer
   * runs on an idle query; that it keeps the offsets past the broker's retention is {@code
   * StructuredKafkaProgressRetentionIT}'s, with {@code -Pslow}.)
   */
  @Test
  void anIdleQueryIsStoppedByItsKeepAliveWhenANewerOneTakesThePipeline() throws Exception {
    produce(60);
    StreamingQuery older =
        query(sink(pipeline, Duration.ofSeconds(1))).kafka(spark, source()).start();
    queries.add(older);
    older.processAllAvailable();

    StreamingQuery newer = startQuery(pipeline, null); // a new writer epoch; nothing to read

    await("the idle older query stopped by its keep-alive")
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(() -> !older.isActive());
    assertThat(newer.isActive()).isTrue();
    produce(60);
    newer.processAllAvailable();
    newer.stop();
    assertThat(sorted(ids())).isEqualTo(sorted(produced));
    assertThat(stored(pipeline)).isEqualTo(StreamHarness.endOffsets(kafka, topic, 3));
  }
}
