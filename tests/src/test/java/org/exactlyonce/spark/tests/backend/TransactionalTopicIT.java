package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Reading topics written with Kafka transactions (SPARK-24720): commit markers, aborted records and
 * idle tails must neither stall nor fail the stream, and nothing aborted may be delivered.
 */
class TransactionalTopicIT {
  /** Spark's reader gives up after this long; the idle periods below last longer. */
  private static final long POLL_MS = 1000;

  private final KafkaBroker kafka = TestServers.kafka();
  private JdbcTestSupport db;
  private JavaSparkContext sc;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    sc =
        new JavaSparkContext(
            SparkSetup.local("txn-topic", 2, 4)
                .set("spark.streaming.kafka.consumer.poll.ms", String.valueOf(POLL_MS))
                .set("spark.streaming.kafka.maxRatePerPartition", "500"));
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
    sc.stop();
  }

  private Map<String, Object> params() {
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", kafka.bootstrapServers());
    p.put("key.deserializer", StringDeserializer.class);
    p.put("value.deserializer", StringDeserializer.class);
    return p;
  }

  private JdbcSink<Out> pgSink(String pipeline) {
    return JdbcSink.<Out>transactional(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .build();
  }

  private static void transaction(
      KafkaProducer<String, String> p,
      String topic,
      int partitions,
      String prefix,
      int perPartition,
      boolean commit) {
    p.beginTransaction();
    for (int part = 0; part < partitions; part++) {
      for (int i = 0; i < perPartition; i++) {
        String id = prefix + "-" + part + "-" + i;
        p.send(new ProducerRecord<>(topic, part, id, id));
      }
    }
    p.flush();
    if (commit) {
      p.commitTransaction();
    } else {
      p.abortTransaction();
    }
  }

  private static long rows(List<BatchResult> batches) {
    return batches.stream().mapToLong(BatchResult::rowsWritten).sum();
  }

  /** Lets the topic sit idle for {@code ms}, failing at once if the stream fails meanwhile. */
  private static void idleFor(long ms, ExactlyOnceStream<?, ?> stream) {
    await("no failure while the topic sits idle for " + ms + " ms")
        .during(Duration.ofMillis(ms))
        .atMost(Duration.ofMillis(ms).plusSeconds(30))
        .failFast("the stream failed while the topic sat idle", () -> stream.failure() != null)
        .until(() -> stream.failure() == null);
  }

  @Test
  void aTailOfCommitMarkersAndAbortedRecordsYieldsEmptyBatchesNotFailures() throws Exception {
    String topic = "txn-tail-" + System.nanoTime();
    kafka.createTopic(topic, 2);
    List<String> expected = new ArrayList<>();
    List<BatchResult> batches = new CopyOnWriteArrayList<>();
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(300));
    try (KafkaProducer<String, String> p = kafka.transactionalProducer("txn-tail-writer")) {
      transaction(p, topic, 2, "c1", 5, true); // each partition: 5 records, then a commit marker
      for (int part = 0; part < 2; part++) {
        for (int i = 0; i < 5; i++) {
          expected.add("c1-" + part + "-" + i);
        }
      }
      JdbcSink<Out> sink = pgSink("txn-tail");
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params(), List.of(topic), sink);
      stream.onBatch(batches::add);
      ExactlyOnce.foreachRDD(
          stream, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), sink);
      ssc.start();
      await()
          .atMost(Duration.ofSeconds(60))
          .until(() -> stream.failure() != null || rows(batches) >= 10);
      int before = batches.size();
      idleFor(3 * POLL_MS, stream);
      assertThat(batches.size()).as("batches keep coming while idle").isGreaterThan(before + 3);
      // A copy first: batches keep arriving, and a live sub-list of the list fails when they do.
      List<BatchResult> idle = List.copyOf(batches);
      assertThat(idle.subList(before, idle.size()))
          .allSatisfy(b -> assertThat(b.rowsWritten()).isZero());

      // An aborted transaction, then a committed one: the aborted records are never delivered.
      transaction(p, topic, 2, "ab", 3, false);
      idleFor(3 * POLL_MS, stream);
      transaction(p, topic, 2, "c2", 2, true);
      for (int part = 0; part < 2; part++) {
        for (int i = 0; i < 2; i++) {
          expected.add("c2-" + part + "-" + i);
        }
      }
      await()
          .atMost(Duration.ofSeconds(60))
          .until(() -> stream.failure() != null || db.count() >= 14);
      idleFor(3 * POLL_MS, stream);
    } finally {
      ssc.stop(false, true);
    }
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(expected);
  }

  /**
   * Spark caches executor consumers by group and partition only, whatever their isolation level. An
   * application that reads the same topic outside the library with the same {@code group.id} (one
   * {@code kafkaParams} map for both is common) leaves read_uncommitted consumers in that cache;
   * the library's stream must not be served by them, or it would deliver aborted records.
   */
  @Test
  void abortedRecordsStayUndeliveredAfterTheApplicationReadTheTopicWithTheSameGroup()
      throws Exception {
    String topic = "txn-shared-group-" + System.nanoTime();
    kafka.createTopic(topic, 2);
    try (KafkaProducer<String, String> p = kafka.transactionalProducer("txn-shared-group-writer")) {
      transaction(p, topic, 2, "c1", 3, true); // offsets 0-2, commit marker at 3
      transaction(p, topic, 2, "ab", 3, false);
      transaction(p, topic, 2, "c2", 3, true);
    }
    List<String> expected = new ArrayList<>();
    for (String prefix : List.of("c1", "c2")) {
      for (int part = 0; part < 2; part++) {
        for (int i = 0; i < 3; i++) {
          expected.add(prefix + "-" + part + "-" + i);
        }
      }
    }
    Map<String, Object> params = params();
    params.put("group.id", "shared-" + System.nanoTime());
    // The application's own read, with Kafka's default isolation (read_uncommitted), of the
    // first transaction's records: Spark caches one consumer per partition for this group.
    org.apache.spark.streaming.kafka010.OffsetRange[] firstTransaction = {
      org.apache.spark.streaming.kafka010.OffsetRange.create(topic, 0, 0, 3),
      org.apache.spark.streaming.kafka010.OffsetRange.create(topic, 1, 0, 3)
    };
    List<String> readByTheApplication =
        org.apache.spark.streaming.kafka010.KafkaUtils.<String, String>createRDD(
                sc,
                params,
                firstTransaction,
                org.apache.spark.streaming.kafka010.LocationStrategies.PreferConsistent())
            .map(r -> r.value())
            .collect();
    assertThat(readByTheApplication).hasSize(6);

    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(300));
    try {
      JdbcSink<Out> sink = pgSink("txn-shared-group");
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
      ExactlyOnce.foreachRDD(
          stream, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), sink);
      ssc.start();
      // Every committed record sits after the aborted ones: 12 rows means the stream read past
      // them, and in offset order an aborted record delivered would be among the first 12.
      await()
          .atMost(Duration.ofSeconds(90))
          .until(() -> stream.failure() != null || db.count() >= 12);
      assertThat(stream.failure()).isNull();
    } finally {
      ssc.stop(false, true);
    }
    assertThat(db.allIds())
        .as("rows written; aborted records are the 'ab-' ones")
        .containsExactlyInAnyOrderElementsOf(expected);
  }

  /**
   * Spark's own stream, with non-consecutive offsets allowed, counts each batch with a Spark job
   * that reads every record a second time; the library's stream must not (it reports offsets).
   */
  @Test
  void eachBatchIsReadOnceWithoutASecondCountingJob() throws Exception {
    String topic = "read-once-" + System.nanoTime();
    kafka.createTopic(topic, 2);
    List<String> callSites = new CopyOnWriteArrayList<>();
    sc.sc()
        .addSparkListener(
            new org.apache.spark.scheduler.SparkListener() {
              @Override
              public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart job) {
                callSites.add(String.valueOf(job.properties().getProperty("callSite.short")));
              }
            });
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(300));
    try (KafkaProducer<String, String> p = kafka.transactionalProducer("read-once-writer")) {
      for (int t = 0; t < 3; t++) {
        transaction(p, topic, 2, "t" + t, 200, true);
      }
      JdbcSink<Out> sink = pgSink("read-once");
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params(), List.of(topic), sink);
      ExactlyOnce.foreachRDD(
          stream, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), sink);
      ssc.start();
      await()
          .atMost(Duration.ofSeconds(60))
          .until(() -> stream.failure() != null || db.count() >= 1200);
    } finally {
      ssc.stop(false, true);
    }
    assertThat(db.count()).isEqualTo(1200);
    assertThat(callSites).as("the batches' own jobs ran").isNotEmpty();
    assertThat(callSites)
        .as("jobs started by the stream itself (a count of each batch)")
        .noneMatch(site -> site.contains("DirectKafkaInputDStream"));
  }

  @Test
  void aChainOfTwoJobsDeliversEveryRecordToPostgresExactlyOnce() throws Exception {
    String in = "chain-in-" + System.nanoTime();
    String mid = "chain-mid-" + System.nanoTime();
    kafka.createTopic(in, 3);
    kafka.createTopic(mid, 2);
    List<ProducerRecord<String, String>> input = new ArrayList<>();
    List<String> expected = new ArrayList<>();
    for (int i = 0; i < 1500; i++) {
      String id = "rec-" + i;
      input.add(new ProducerRecord<>(in, id, id));
      expected.add(id);
    }
    kafka.send(input);
    var failed = KafkaOutput.failSendsEvery(211, 4);
    KafkaSink<String> job1 =
        KafkaSink.<String>transactional("chain-1")
            .bootstrapServers(kafka.bootstrapServers())
            .topic(mid)
            .key(ToBytes.utf8(s -> s))
            .value(ToBytes.utf8(s -> s))
            .build();
    JdbcSink<Out> job2 = pgSink("chain-2");
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(500));
    try {
      ExactlyOnceStream<String, String> s1 =
          ExactlyOnce.directStream(ssc, params(), List.of(in), job1);
      ExactlyOnce.foreachRDD(s1, r -> List.of(r.value()), job1);
      ExactlyOnceStream<String, String> s2 =
          ExactlyOnce.directStream(ssc, params(), List.of(mid), job2);
      ExactlyOnce.foreachRDD(
          s2, r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())), job2);
      ssc.start();
      await()
          .atMost(Duration.ofSeconds(120))
          .until(() -> s1.failure() != null || s2.failure() != null || db.count() >= 1500);
      assertThat(s1.failure()).isNull();
      // Job 1's output now sits idle after its last commit marker, longer than the poll timeout.
      idleFor(3 * POLL_MS, s2);
      assertThat(s1.failure()).isNull();
    } finally {
      ssc.stop(false, true);
    }
    assertThat(failed.get()).as("injected aborts").isEqualTo(4);
    assertThat(KafkaOutput.uncommitted(kafka, mid).size())
        .as("aborted records in job 1's output")
        .isGreaterThan(1500);
    assertThat(db.allIds()).containsExactlyInAnyOrderElementsOf(expected);
  }
}
