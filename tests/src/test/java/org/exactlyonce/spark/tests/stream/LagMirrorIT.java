package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The lag mirror ({@code mirrorOffsetsTo}): lag tools that read Kafka consumer groups see the
 * offsets a PostgreSQL sink stored, read here with Kafka's own Admin client.
 */
class LagMirrorIT {
  private static final RecordMapper<String, String, Out> TO_OUT =
      r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset()));

  private static StreamHarness h;
  private final JdbcTestSupport db = new JdbcTestSupport();

  @BeforeAll
  static void setUp() {
    h = new StreamHarness("lag", 3);
    List<String[]> kvs = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      kvs.add(new String[] {"k" + i, "v" + i});
    }
    h.send(kvs);
  }

  @AfterAll
  static void tearDown() {
    h.close();
  }

  private JdbcSink<Out> sink(String pipeline) {
    return JdbcSink.<Out>transactional(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .build();
  }

  @Test
  void theMirrorGroupHoldsTheOffsetsTheSinkStored() {
    String pipeline = "lag-on-" + System.nanoTime();
    String group = pipeline + "-lag";
    Map<TopicPartition, Long> end = h.endOffsets();
    Set<String> groupsSeenWhileRunning = ConcurrentHashMap.newKeySet();
    // Batch listeners run after the mirror's copy of the same batch: once they saw every end
    // offset committed, the copy of it has been made (or failed).
    Map<TopicPartition, Long> published = new ConcurrentHashMap<>();

    Throwable failure =
        h.run(
            ssc ->
                ExactlyOnce.<String, String>stream(ssc, h.kafkaParams(), List.of(h.topic))
                    .foreachRDD(TO_OUT, sink(pipeline))
                    .mirrorOffsetsTo(group)
                    .create()
                    .onBatch(
                        r ->
                            r.commits()
                                .forEach(
                                    c ->
                                        published.merge(
                                            c.range().topicPartition(),
                                            c.range().until(),
                                            Math::max))),
            () -> {
              groupsSeenWhileRunning.addAll(groups());
              return published.equals(end);
            });

    assertThat(failure).isNull();
    Map<TopicPartition, Long> stored = db.stored(pipeline);
    assertThat(stored).isEqualTo(end).hasSize(3).allSatisfy((tp, o) -> assertThat(o).isPositive());
    assertThat(KafkaOutput.groupOffsets(h.kafka, group))
        .as("the mirror group's offsets, read with Admin.listConsumerGroupOffsets")
        .isEqualTo(stored);
    assertThat(db.count()).isEqualTo(300);
    // The stream's own consumer (default group.id) must not show up as a group with no offsets.
    assertThat(groupsSeenWhileRunning).doesNotContain("exactly-once-" + pipeline);
  }

  @Test
  void withoutTheOptionNoGroupGetsOffsets() {
    String pipeline = "lag-off-" + System.nanoTime();
    Map<TopicPartition, Long> end = h.endOffsets();
    Set<String> before = groups();

    Throwable failure =
        h.run(
            ssc ->
                ExactlyOnce.<String, String>stream(ssc, h.kafkaParams(), List.of(h.topic))
                    .foreachRDD(TO_OUT, sink(pipeline))
                    .create(),
            () -> db.stored(pipeline).equals(end));

    assertThat(failure).isNull();
    Set<String> created = groups();
    created.removeAll(before);
    assertThat(created).as("groups created by a run without mirrorOffsetsTo").isEmpty();
    assertThat(groups()).doesNotContain(pipeline + "-lag", "exactly-once-" + pipeline);
  }

  /**
   * The control of the check above: Spark's {@code Subscribe} strategy, which the library used
   * before, joins the stream's group.id, and the group shows up in {@code listConsumerGroups}.
   */
  @Test
  void aSubscribedDirectStreamConsumerWouldShowUpAsAGroup() {
    String group = "exactly-once-lag-control-" + System.nanoTime();
    Map<String, Object> params = h.kafkaParams();
    params.put("group.id", group);
    params.put("enable.auto.commit", false);
    Map<TopicPartition, Long> start = new HashMap<>();
    h.endOffsets().keySet().forEach(tp -> start.put(tp, 0L));
    try (Consumer<String, String> subscribed =
        ConsumerStrategies.<String, String>Subscribe(List.of(h.topic), params, start)
            .onStart(new HashMap<>(start))) {
      assertThat(subscribed.assignment()).hasSize(3);
      assertThat(groups()).contains(group);
    }
  }

  @Test
  void aMirrorGroupTheStreamOrASinkUsesIsRefusedAtCreate() {
    String pipeline = "lag-refused-" + System.nanoTime();
    JavaStreamingContext ssc = new JavaStreamingContext(h.sc, Durations.milliseconds(500));
    try {
      Map<String, Object> params = h.kafkaParams();
      params.put("group.id", "lag-shared");
      assertThatThrownBy(
              () ->
                  ExactlyOnce.<String, String>stream(ssc, params, List.of(h.topic))
                      .foreachRDD(TO_OUT, sink(pipeline))
                      .mirrorOffsetsTo("lag-shared")
                      .create())
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("mirrorOffsetsTo(\"lag-shared\")")
          .hasMessageContaining("stream's own group.id")
          .hasMessageContaining("\"lag-shared-lag\"");

      // The default group.id is refused the same way.
      assertThatThrownBy(
              () ->
                  ExactlyOnce.<String, String>stream(ssc, h.kafkaParams(), List.of(h.topic))
                      .foreachRDD(TO_OUT, sink(pipeline))
                      .mirrorOffsetsTo("exactly-once-" + pipeline)
                      .create())
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("stream's own group.id");

      KafkaSink<String> kafkaSink =
          KafkaSink.<String>transactional(pipeline + "-k")
              .bootstrapServers(h.kafka.bootstrapServers())
              .topic(h.topic)
              .value(ToBytes.utf8(s -> s))
              .progressGroup("lag-progress")
              .apiTimeout(Duration.ofSeconds(10))
              .build();
      assertThatThrownBy(
              () ->
                  ExactlyOnce.<String, String>stream(ssc, h.kafkaParams(), List.of(h.topic))
                      .foreachRDD(r -> List.of(r.value()), kafkaSink)
                      .mirrorOffsetsTo("lag-progress")
                      .create())
          .isInstanceOf(SinkConfigurationException.class)
          .hasMessageContaining("mirrorOffsetsTo(\"lag-progress\")")
          .hasMessageContaining("progress group")
          .hasMessageContaining(pipeline + "-k");
    } finally {
      ssc.stop(false, true);
    }
  }

  private static Set<String> groups() {
    try (Admin admin = h.kafka.admin()) {
      return admin.listConsumerGroups().all().get().stream()
          .map(ConsumerGroupListing::groupId)
          .collect(Collectors.toSet());
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
