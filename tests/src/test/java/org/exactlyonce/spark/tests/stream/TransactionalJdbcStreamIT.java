package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.KafkaUtils;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.apache.spark.streaming.kafka010.OffsetRange;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.internal.TransactionalBatch;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Kafka -> Spark direct stream -> PostgreSQL, end to end, through the public API. */
class TransactionalJdbcStreamIT {
  /**
   * Fails the mapper once, on the first record it sees at this offset (executors share the JVM).
   */
  static final AtomicBoolean FAIL_ONCE = new AtomicBoolean();

  private KafkaBroker kafka;
  private JdbcTestSupport db;
  private String topic;
  private JavaSparkContext sc;
  private final List<String> produced = new ArrayList<>();

  @BeforeEach
  void setUp() {
    kafka = TestServers.kafka();
    db = new JdbcTestSupport();
    topic = "clicks-" + System.nanoTime();
    kafka.createTopic(topic, 4);
    sc = new JavaSparkContext(SparkSetup.local("jdbc-stream", 2, 4));
  }

  @AfterEach
  void tearDown() {
    sc.stop();
  }

  private void produce(int n) {
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String id = "click-" + produced.size();
      produced.add(id);
      records.add(new ProducerRecord<>(topic, id, id));
    }
    kafka.send(records);
  }

  private Map<String, Object> kafkaParams() {
    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", kafka.bootstrapServers());
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);
    params.put("max.poll.records", 500);
    return params;
  }

  private JdbcSink<Out> sink() {
    return JdbcSink.<Out>transactional("clicks-to-postgres")
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .build();
  }

  private Map<TopicPartition, Long> endOffsets() {
    Map<TopicPartition, Long> end = new HashMap<>();
    try (var admin = kafka.admin()) {
      var specs = new HashMap<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec>();
      for (int p = 0; p < 4; p++) {
        specs.put(new TopicPartition(topic, p), org.apache.kafka.clients.admin.OffsetSpec.latest());
      }
      admin.listOffsets(specs).all().get().forEach((tp, info) -> end.put(tp, info.offset()));
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
    return end;
  }

  /** Runs the job until it wrote {@code expectedRows}, then stops it gracefully. */
  private List<BatchResult> runUntil(long expectedRows, boolean failOnce) {
    List<BatchResult> results = new CopyOnWriteArrayList<>();
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      JdbcSink<Out> sink = sink();
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink);
      stream.onBatch(results::add);
      ExactlyOnce.foreachRDD(
          stream,
          record -> {
            if (failOnce && record.offset() == 7 && FAIL_ONCE.compareAndSet(true, false)) {
              throw new IllegalStateException("injected failure on " + record.partition() + "@7");
            }
            return List.of(
                new Out(record.value(), record.topic(), record.partition(), record.offset()));
          },
          sink);
      ssc.start();
      await().atMost(Duration.ofSeconds(90)).until(() -> db.count() >= expectedRows);
    } finally {
      ssc.stop(false, true);
    }
    return results;
  }

  @Test
  void everyRecordIsWrittenOnceAcrossAStopAndARestart() {
    produce(3000);
    runUntil(3000, false);
    produce(2000);
    List<BatchResult> second = runUntil(5000, false);

    assertThat(db.allIds())
        .hasSize(5000)
        .doesNotHaveDuplicates()
        .containsExactlyInAnyOrderElementsOf(produced);
    assertThat(db.stored("clicks-to-postgres")).isEqualTo(endOffsets());
    // The restarted job started from the stored offsets: it read only the 2000 new records.
    assertThat(second.stream().mapToLong(BatchResult::recordsIn).sum()).isEqualTo(2000);
  }

  @Test
  void aTaskThatFailsMidPartitionIsRetriedAndWritesOnce() {
    produce(2000);
    FAIL_ONCE.set(true);
    runUntil(2000, true);

    assertThat(FAIL_ONCE.get()).as("the injected failure fired").isFalse();
    assertThat(db.allIds())
        .hasSize(2000)
        .doesNotHaveDuplicates()
        .containsExactlyInAnyOrderElementsOf(produced);
    assertThat(db.stored("clicks-to-postgres")).isEqualTo(endOffsets());
  }

  @Test
  void latestStartPositionIsStoredBeforeTheFirstBatch() {
    produce(100); // before the pipeline exists: must be skipped under "latest"
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), StartPosition.latest(), sink());
      // Stored before any batch ran: a crash now restarts from the same place.
      assertThat(db.stored("clicks-to-postgres")).isEqualTo(endOffsets());
    } finally {
      ssc.stop(false, false);
    }
  }

  @Test
  void aDriverFencedByANewerOneStopsAndWritesNothingMore() throws Exception {
    produce(500);
    runUntil(500, false);

    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    JdbcSink<Out> sink = sink();
    ExactlyOnceStream<String, String> stream =
        ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink);
    ExactlyOnce.foreachRDD(
        stream, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), sink);
    ssc.start();
    try {
      // Another deployment of the same pipeline starts: it takes a newer writer epoch.
      try (OffsetStore other = sink().openOffsetStore()) {
        other.takeWriterEpoch();
      }
      produce(300);
      await().atMost(Duration.ofSeconds(60)).until(() -> stream.failure() != null);
      assertThat(stream.failure()).isInstanceOf(WriterFencedException.class);
      assertThatThrownBy(() -> ssc.awaitTerminationOrTimeout(30_000))
          .isInstanceOf(WriterFencedException.class);
    } finally {
      ssc.stop(false, false);
    }
    assertThat(db.count()).as("rows written after the fence").isEqualTo(500);
  }

  @Test
  void aStoredOffsetMovedBackwardsStopsThePipelineAndNothingLaterIsWritten() throws Exception {
    produce(400);
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    JdbcSink<Out> sink = sink();
    ExactlyOnceStream<String, String> stream =
        ExactlyOnce.directStream(ssc, kafkaParams(), List.of(topic), sink);
    ExactlyOnce.foreachRDD(
        stream, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), sink);
    ssc.start();
    try {
      await().atMost(Duration.ofSeconds(60)).until(() -> db.count() >= 400);
      // Someone resets partition 0's stored offset by hand while the job runs.
      db.execute(
          "UPDATE eos_offsets SET until_offset = 0 WHERE topic = '"
              + topic
              + "' AND kafka_partition = 0");
      long before = db.count();
      // Enough records that every partition, partition 0 included, gets a non-empty range.
      produce(400);
      await().atMost(Duration.ofSeconds(60)).until(() -> stream.failure() != null);

      assertThat(stream.failure())
          .isInstanceOf(OffsetMismatchException.class)
          .hasMessageContaining(topic + "-0 REGRESSION");
      assertThat(((OffsetMismatchException) stream.failure()).commits())
          .extracting(c -> c.outcome())
          .containsOnly(CommitOutcome.REGRESSION);
      // Other partitions of that batch committed their own ranges; partition 0 wrote nothing, and
      // no later batch writes anything.
      long afterFailure = db.count();
      produce(400);
      await("no row written after the failed batch")
          .during(Duration.ofSeconds(3))
          .atMost(Duration.ofSeconds(60))
          .failFast("rows written after the failed batch", () -> db.count() != afterFailure)
          .until(() -> db.count() == afterFailure);
      assertThat(db.count()).isEqualTo(afterFailure).isLessThan(before + 400);
      assertThat(db.allIds()).doesNotHaveDuplicates();
    } finally {
      ssc.stop(false, false);
    }
  }

  @Test
  void partitionsAddedWhileTheJobRunsAreReadFromTheirEarliestOffset() throws Exception {
    produce(200);
    Map<String, Object> params = kafkaParams();
    params.put("metadata.max.age.ms", 500); // notice the new partitions quickly
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    JdbcSink<Out> sink = sink();
    ExactlyOnceStream<String, String> stream =
        ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
    ExactlyOnce.foreachRDD(
        stream, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), sink);
    ssc.start();
    try {
      await().atMost(Duration.ofSeconds(60)).until(() -> db.count() >= 200);
      try (var admin = kafka.admin()) {
        admin
            .createPartitions(
                Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(6)))
            .all()
            .get();
      }
      // Written to the new partitions before the job has noticed them: must not be skipped.
      List<ProducerRecord<String, String>> records = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        String id = "new-partition-" + i;
        produced.add(id);
        records.add(new ProducerRecord<>(topic, 4 + i % 2, id, id));
      }
      kafka.send(records);
      await().atMost(Duration.ofSeconds(60)).until(() -> db.count() >= 300);
    } finally {
      ssc.stop(false, true);
    }
    assertThat(db.allIds())
        .hasSize(300)
        .doesNotHaveDuplicates()
        .containsExactlyInAnyOrderElementsOf(produced);
    assertThat(db.stored("clicks-to-postgres"))
        .containsEntry(new TopicPartition(topic, 4), 50L)
        .containsEntry(new TopicPartition(topic, 5), 50L);
  }

  @Test
  void anRddThatNoLongerMapsPartitionsToRangesIsRefusedWithTheFix() {
    produce(100);
    OffsetRange[] ranges = new OffsetRange[4];
    Map<TopicPartition, Long> end = endOffsets();
    for (int p = 0; p < 4; p++) {
      ranges[p] = OffsetRange.create(topic, p, 0, end.get(new TopicPartition(topic, p)));
    }
    Map<String, Object> params = kafkaParams();
    params.put("group.id", "range-check");
    JavaRDD<ConsumerRecord<String, String>> direct =
        KafkaUtils.createRDD(sc, params, ranges, LocationStrategies.PreferConsistent());

    assertThat(TransactionalBatch.rangesOf(direct)).hasSize(4);
    assertThatThrownBy(() -> TransactionalBatch.rangesOf(direct.repartition(3)))
        .isInstanceOf(ExactlyOnceException.class)
        .hasMessageContaining("per-batch sink");
  }
}
