package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryException;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@link ExactlyOnceForeachBatch} guarantees, whatever the strategy: a Structured Streaming
 * query over Spark's Kafka source writes every record once into PostgreSQL, whatever Spark's
 * checkpoint says. Each test reads the whole output table (no unique key: a duplicate shows as a
 * second row) and compares it with everything produced. A subclass per strategy.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // processAllAvailable() waits for ever on a stall
abstract class StructuredForeachBatchContract {

  final KafkaBroker kafka = TestServers.kafka();
  JdbcTestSupport db;
  SparkSession spark;
  String topic;
  final List<String> produced = new ArrayList<>();
  final List<StreamingQuery> queries = new ArrayList<>();

  /** This test's pipeline id (unique: a backend's offsets table may serve several tests). */
  String pipeline;

  /** The sink under test for {@code pipeline}, writing each record's id. */
  abstract ExactlyOnceSink sink(String pipeline);

  /** A builder of the strategy under test over {@link #sink}. */
  abstract ExactlyOnceForeachBatch.Builder<?> query(String pipeline);

  /** Empties the output of this test. */
  void clearOutput() {
    db.execute("TRUNCATE out");
  }

  /** The offsets {@code pipeline} has stored, read through its sink's own store. */
  Map<TopicPartition, Long> stored(String pipeline) {
    try (OffsetStore store = sink(pipeline).openOffsetStore()) {
      return store.storedOffsets();
    }
  }

  /** Every id in the output table, duplicates included. */
  List<String> ids() {
    return db.allIds();
  }

  @TempDir Path tmp;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    topic = "structured-" + System.nanoTime();
    pipeline = "clicks-" + topic;
    kafka.createTopic(topic, 3);
    spark =
        SparkSession.builder()
            .config(
                SparkSetup.local("structured", 2, 4)
                    // A few tasks per batch, not Spark SQL's 200 after a shuffle.
                    .set("spark.sql.shuffle.partitions", "2")
                    .set("spark.ui.enabled", "false"))
            .getOrCreate();
  }

  @AfterEach
  void tearDown() {
    for (StreamingQuery q : queries) {
      stop(q);
    }
    spark.stop();
  }

  private static void stop(StreamingQuery q) {
    try {
      q.stop();
    } catch (Exception e) {
      // a query that failed has stopped already
    }
  }

  /** Sends {@code n} records, spread over the topic's partitions by their keys. */
  void produce(int n) {
    produce(topic, n);
  }

  /** Sends {@code n} records to {@code to}, spread over its partitions by their keys. */
  void produce(String to, int n) {
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String id = "click-" + produced.size();
      produced.add(id);
      records.add(new ProducerRecord<>(to, "k" + produced.size(), id));
    }
    kafka.send(records);
  }

  Map<String, String> source() {
    return source(Map.of());
  }

  /** The source options of this test's topic, with {@code extra} ones. */
  Map<String, String> source(Map<String, String> extra) {
    Map<String, String> options = new java.util.HashMap<>(extra);
    options.put("kafka.bootstrap.servers", kafka.bootstrapServers());
    options.put("subscribe", topic);
    return options;
  }

  /** The rows the sink writes: one per record, with its source position. */
  static Dataset<Row> toOutput(Dataset<Row> batch) {
    return batch.selectExpr(
        "CAST(value AS STRING) AS id", "topic", "partition AS kafka_partition", "offset");
  }

  StreamingQuery startQuery(String pipeline, String checkpoint) {
    ExactlyOnceForeachBatch.Builder<?> b = query(pipeline).kafka(spark, source());
    if (checkpoint != null) {
      b.checkpointLocation(checkpoint);
    }
    StreamingQuery q = b.start();
    queries.add(q);
    return q;
  }

  /** Runs a query until it has read everything produced so far, then stops it. */
  void runToEnd(String pipeline, String checkpoint) throws Exception {
    StreamingQuery q = startQuery(pipeline, checkpoint);
    q.processAllAvailable();
    q.stop();
  }

  List<String> sorted(List<String> ids) {
    return ids.stream().sorted().toList();
  }

  @Test
  void everyRecordIsWrittenOnceAcrossRestartsThatStartFromTheSinksOffsets() throws Exception {
    produce(300);
    runToEnd(pipeline, null);
    produce(300);
    runToEnd(pipeline, null); // no checkpoint: the sink's stored offsets are where it resumes
    runToEnd(pipeline, null); // nothing new: writes nothing

    assertThat(sorted(ids())).isEqualTo(sorted(produced));
    assertThat(stored(pipeline)).isEqualTo(StreamHarness.endOffsets(kafka, topic, 3));
  }

  /**
   * A checkpoint restored from an older copy makes Spark replay batches the sink has committed: its
   * last batch again when the copy was taken before Spark marked it done (the whole batch is
   * skipped), then one batch from its end to Kafka's, partly committed (only the new records are
   * written).
   */
  @Test
  void batchesReplayedFromACheckpointBehindTheSinkWriteNothingTwice() throws Exception {
    Path checkpoint = tmp.resolve("checkpoint");
    Path older = tmp.resolve("older-checkpoint");
    produce(200);
    runToEnd(pipeline, checkpoint.toString());
    copy(checkpoint, older);
    forgetLastCommit(older);
    produce(200);
    runToEnd(pipeline, checkpoint.toString());
    produce(100);

    runToEnd(pipeline, older.toString()); // its last batch again, then 300 of which 100 are new

    assertThat(sorted(ids())).isEqualTo(sorted(produced));
  }

  /**
   * A checkpoint ahead of the sink (the sink's database restored from a backup, or another
   * pipeline's checkpoint) would skip records the sink never wrote: the query stops at its first
   * batch and writes nothing.
   */
  @Test
  void aCheckpointAheadOfTheSinkStopsTheQueryBeforeItWrites() throws Exception {
    Path checkpoint = tmp.resolve("checkpoint");
    produce(200);
    runToEnd(pipeline, checkpoint.toString());
    clearOutput();
    produce(100);

    // A new pipeline id starts at the earliest offsets; the checkpoint resumes after record 200.
    StreamingQuery q = startQuery(pipeline + "-restored", checkpoint.toString());

    assertThatThrownBy(q::processAllAvailable)
        .isInstanceOf(StreamingQueryException.class)
        .hasRootCauseInstanceOf(OffsetMismatchException.class)
        .rootCause()
        .hasMessageContaining("GAP: the batch reads " + topic)
        .hasMessageContaining("stored offset is 0")
        .hasMessageContaining(checkpoint + " is ahead of the sink")
        .hasMessageContaining("Move the checkpoint away");
    assertThat(ids()).isEmpty();
  }

  /**
   * Whichever query reads the new records first, the older one stops: fenced when it commits them,
   * and also when it finds them committed by the newer one (a replay for it, which must not let a
   * fenced writer run on).
   */
  @Test
  void aNewerQueryOnTheSamePipelineFencesTheOlderOne() throws Exception {
    produce(100);
    StreamingQuery older = startQuery(pipeline, null);
    older.processAllAvailable();

    StreamingQuery newer = startQuery(pipeline, null); // takes a new writer epoch
    produce(100);
    newer.processAllAvailable();

    assertThatThrownBy(older::processAllAvailable)
        .isInstanceOf(StreamingQueryException.class)
        .hasRootCauseInstanceOf(WriterFencedException.class);
    newer.stop();
    assertThat(sorted(ids())).isEqualTo(sorted(produced));
  }

  @Test
  void aPartitionAddedWhileTheQueryRunsIsWrittenFromItsFirstRecord() throws Exception {
    produce(150);
    StreamingQuery q = startQuery(pipeline, null);
    q.processAllAvailable();
    try (var admin = kafka.admin()) {
      admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
    }
    List<ProducerRecord<String, String>> toNew = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      String id = "click-" + produced.size();
      produced.add(id);
      toNew.add(new ProducerRecord<>(topic, 3, "k" + i, id));
    }
    kafka.send(toNew);
    produce(50);

    var end = StreamHarness.endOffsets(kafka, topic, 4);
    // The source finds the new partition when it next lists the topic's partitions.
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              q.processAllAvailable();
              return stored(pipeline).equals(end);
            });
    q.stop();

    assertThat(stored(pipeline)).isEqualTo(end);
    assertThat(sorted(ids())).isEqualTo(sorted(produced));
  }

  /**
   * A topic written with Kafka transactions holds commit markers and aborted records: a batch's
   * last record is not its range's end. Ranges taken from the batch's input partitions still end
   * where Spark read (the stored offsets reach Kafka's end, past the markers), and no aborted
   * record is written.
   */
  @Test
  void aTopicWrittenWithKafkaTransactionsIsWrittenOnceAndItsOffsetsPassTheMarkers()
      throws Exception {
    try (KafkaProducer<String, String> p =
        kafka.transactionalProducer("structured-writer-" + topic)) {
      transaction(p, 60, true);
      transaction(p, 30, false);
      transaction(p, 60, true);
    }
    StreamingQuery q =
        query(pipeline)
            .kafka(spark, source(Map.of("kafka.isolation.level", "read_committed")))
            .start();
    queries.add(q);
    q.processAllAvailable();
    q.stop();

    assertThat(sorted(ids())).isEqualTo(sorted(produced));
    assertThat(stored(pipeline)).isEqualTo(StreamHarness.endOffsets(kafka, topic, 3));
  }

  /** One transaction of {@code n} records over the topic's partitions; aborted ones go unlisted. */
  private void transaction(KafkaProducer<String, String> p, int n, boolean commit) {
    p.beginTransaction();
    for (int i = 0; i < n; i++) {
      String id = (commit ? "click-" : "aborted-") + produced.size() + "-" + i;
      if (commit) {
        produced.add(id);
      }
      p.send(new ProducerRecord<>(topic, i % 3, id, id));
    }
    p.flush();
    if (commit) {
      p.commitTransaction();
    } else {
      p.abortTransaction();
    }
  }

  @Test
  void aStartingOffsetsOptionIsRefusedBeforeAnythingRuns() {
    Map<String, String> options = source(Map.of("startingOffsets", "latest"));
    assertThatThrownBy(() -> query(pipeline).kafka(spark, options))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("startingOffsets")
        .hasMessageContaining("Remove the option"); // from kafka(...): start() is never reached
  }

  /**
   * Removes the commit mark of a checkpoint's last batch, as if the copy had been taken between the
   * batch's write and Spark's mark: Spark then runs that batch again with the same offsets.
   */
  static void forgetLastCommit(Path checkpoint) throws IOException {
    Path commits = checkpoint.resolve("commits");
    long last;
    try (Stream<Path> files = Files.list(commits)) {
      last =
          files
              .map(p -> p.getFileName().toString())
              .filter(n -> n.matches("[0-9]+"))
              .mapToLong(Long::parseLong)
              .max()
              .orElseThrow();
    }
    Files.delete(commits.resolve(Long.toString(last)));
    Files.deleteIfExists(commits.resolve("." + last + ".crc"));
  }

  static void copy(Path from, Path to) throws IOException {
    try (Stream<Path> paths = Files.walk(from)) {
      for (Path p : paths.sorted(Comparator.naturalOrder()).toList()) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else {
          Files.copy(p, target);
        }
      }
    }
  }
}
