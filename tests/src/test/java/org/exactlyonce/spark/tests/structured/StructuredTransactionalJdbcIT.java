package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.structured.SparkRows;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.Test;

/**
 * {@link ExactlyOnceForeachBatch#transactional} (strategy T) over PostgreSQL: each range of a batch
 * with its outputs in one transaction on its executor.
 */
class StructuredTransactionalJdbcIT extends StructuredForeachBatchContract {

  @Override
  JdbcSink<Out> sink(String pipeline) {
    return JdbcSink.<Out>transactional(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .build();
  }

  @Override
  ExactlyOnceForeachBatch.Builder<?> query(String pipeline) {
    return ExactlyOnceForeachBatch.transactional(sink(pipeline))
        .foreachRecord(
            r ->
                List.of(
                    new Out(
                        new String(r.value(), StandardCharsets.UTF_8),
                        r.topic(),
                        r.partition(),
                        r.offset())));
  }

  @Test
  void minPartitionsIsRefusedBecauseItSplitsARangeOverSeveralTransactions() {
    var q = query(pipeline).kafka(spark, source(Map.of("minPartitions", "12")));
    assertThatThrownBy(q::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("minPartitions")
        .hasMessageContaining("perBatch");
  }

  /**
   * Values by name are checked against the table only for per-batch queries so far: a per-record
   * query over such a sink is refused by {@code start()}, naming the strategy that takes them.
   */
  @Test
  void valuesByNameAreRefusedForAPerRecordQueryNamingPerBatch() {
    JdbcSink<org.apache.spark.sql.Row> byName =
        JdbcSink.<org.apache.spark.sql.Row>transactional(pipeline)
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(SparkRows.byName())
            .build();
    var q =
        ExactlyOnceForeachBatch.transactional(byName)
            .kafka(spark, source())
            .foreachRecord(r -> List.of());

    assertThatThrownBy(q::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("values by name")
        .hasMessageContaining("ExactlyOnceForeachBatch.perBatch(...)");
  }

  /** Source options that read what {@code subscription} (subscribePattern, assign) names. */
  private Map<String, String> reading(String subscription, String value) {
    return Map.of("kafka.bootstrap.servers", kafka.bootstrapServers(), subscription, value);
  }

  /** A query of {@code pipeline} reading what {@code options} name (no subscribe added). */
  private StreamingQuery startReading(Map<String, String> options) {
    StreamingQuery q = query(pipeline).kafka(spark, options).start();
    queries.add(q);
    return q;
  }

  /**
   * {@code subscribePattern}: the start sequence stores offsets for every topic the pattern matches
   * now, and a matching topic created while the query runs is written from its first record (the
   * source finds it at a later batch and reads it from its earliest offset); a restart without a
   * checkpoint resumes both topics from the sink's offsets. Reads the whole output table.
   */
  @Test
  void aPatternSubscriptionWritesEveryMatchingTopicOnceATopicCreatedWhileRunningFromItsStart()
      throws Exception {
    String second = topic + "-b";
    Map<String, String> options = reading("subscribePattern", Pattern.quote(topic));
    produce(100);
    StreamingQuery q = startReading(options);
    q.processAllAvailable();
    kafka.createTopic(second, 2);
    produce(second, 60);
    produce(50);
    Map<TopicPartition, Long> end = new HashMap<>(StreamHarness.endOffsets(kafka, topic, 3));
    end.putAll(StreamHarness.endOffsets(kafka, second, 2));
    // The source lists the topics matching its pattern again at every batch.
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              q.processAllAvailable();
              return stored(pipeline).equals(end);
            });
    q.stop();

    produce(second, 30);
    produce(30);
    StreamingQuery again = startReading(options);
    again.processAllAvailable();
    again.stop();

    Map<TopicPartition, Long> last = new HashMap<>(StreamHarness.endOffsets(kafka, topic, 3));
    last.putAll(StreamHarness.endOffsets(kafka, second, 2));
    assertThat(stored(pipeline)).isEqualTo(last);
    assertThat(sorted(ids())).isEqualTo(sorted(produced));
  }

  /**
   * A topic that starts matching the pattern while the query is down is read from its first record
   * when the query starts again, as one created while it runs: only the pipeline's first start
   * takes the start position ({@code latest} here), and the records produced before it are the only
   * ones not written. Reads the whole output table.
   */
  @Test
  void aTopicMatchingThePatternCreatedWhileTheQueryIsDownIsWrittenFromItsFirstRecord()
      throws Exception {
    Map<String, String> options = reading("subscribePattern", Pattern.quote(topic));
    produce(50);
    int before = produced.size();
    StreamingQuery q =
        query(pipeline).kafka(spark, options).startPosition(StartPosition.latest()).start();
    queries.add(q);
    produce(40);
    q.processAllAvailable();
    q.stop();

    kafka.createTopic(topic + "-b", 2);
    produce(topic + "-b", 30);
    produce(20);
    StreamingQuery again =
        query(pipeline).kafka(spark, options).startPosition(StartPosition.latest()).start();
    queries.add(again);
    again.processAllAvailable();
    again.stop();

    assertThat(sorted(ids())).isEqualTo(sorted(produced.subList(before, produced.size())));
  }

  /**
   * {@code assign}: only the assigned partitions are read, stored and written, across a restart
   * without a checkpoint; the start offsets the query passes to Spark name exactly those partitions
   * (Spark refuses any other set). Reads the whole output table and the whole input topic.
   */
  @Test
  void anAssignmentWritesItsPartitionsOnceAndStoresNoOther() throws Exception {
    Map<String, String> options = reading("assign", "{\"" + topic + "\":[0,2]}");
    produce(150);
    StreamingQuery q = startReading(options);
    q.processAllAvailable();
    q.stop();
    produce(60);
    StreamingQuery again = startReading(options);
    again.processAllAvailable();
    again.stop();

    Map<TopicPartition, Long> end = new HashMap<>(StreamHarness.endOffsets(kafka, topic, 3));
    end.remove(new TopicPartition(topic, 1));
    assertThat(stored(pipeline)).isEqualTo(end);
    List<String> assigned =
        KafkaOutput.committed(kafka, topic).stream()
            .filter(r -> r.partition() != 1)
            .map(r -> r.value())
            .toList();
    assertThat(assigned).as("records of the assigned partitions").isNotEmpty();
    assertThat(assigned.size()).as("records of all partitions").isLessThan(produced.size());
    assertThat(sorted(ids())).isEqualTo(sorted(assigned));
  }

  /**
   * With an explicit start position, a topic the pattern comes to match later starts where the
   * position names it (a hand-over from another job, say), not at its earliest offset. Reads the
   * whole output table and the whole new topic.
   */
  @Test
  void anExplicitStartPositionNamingATopicThePatternMatchesLaterStartsItThere() throws Exception {
    Map<String, String> options = reading("subscribePattern", topic + "-x.*");
    String first = topic + "-x1";
    String later = topic + "-x2";
    kafka.createTopic(first, 1);
    produce(first, 20);
    Map<TopicPartition, Long> position = new HashMap<>();
    position.put(new TopicPartition(first, 0), 5L);
    position.put(new TopicPartition(later, 0), 7L);
    StreamingQuery q =
        query(pipeline)
            .kafka(spark, options)
            .startPosition(StartPosition.offsets(position))
            .start();
    queries.add(q);
    q.processAllAvailable();
    q.stop();

    kafka.createTopic(later, 1);
    produce(later, 20);
    StreamingQuery again =
        query(pipeline)
            .kafka(spark, options)
            .startPosition(StartPosition.offsets(position))
            .start();
    queries.add(again);
    again.processAllAvailable();
    again.stop();

    List<String> expected = new ArrayList<>();
    KafkaOutput.committed(kafka, first).stream()
        .filter(r -> r.offset() >= 5)
        .forEach(r -> expected.add(r.value()));
    KafkaOutput.committed(kafka, later).stream()
        .filter(r -> r.offset() >= 7)
        .forEach(r -> expected.add(r.value()));
    assertThat(expected).hasSize(15 + 13);
    assertThat(sorted(ids())).isEqualTo(sorted(expected));
  }

  /**
   * An option Spark's Kafka source refuses ({@code kafka.auto.offset.reset}: the source sets it) is
   * refused by {@code start()} before the start sequence, so the running query of the pipeline is
   * not fenced and goes on writing: the whole output holds every record once.
   */
  @Test
  void anOptionSparksSourceRefusesLeavesTheRunningQueryOfThePipelineWriting() throws Exception {
    produce(60);
    StreamingQuery running = startQuery(pipeline, null);
    running.processAllAvailable();

    var refused =
        query(pipeline).kafka(spark, source(Map.of("kafka.auto.offset.reset", "earliest")));
    assertThatThrownBy(refused::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("Spark's Kafka source did not take the query's options")
        .hasMessageContaining("auto.offset.reset")
        .hasMessageContaining("Nothing was started");

    produce(40);
    running.processAllAvailable();
    running.stop();
    assertThat(sorted(ids())).isEqualTo(sorted(produced));
  }
}
