package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import com.datastax.oss.driver.api.core.CqlSession;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.internal.StartOffsets;
import org.exactlyonce.spark.internal.StartSequence;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
import org.exactlyonce.spark.tool.OffsetsTool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The offsets tool on the Cassandra sink's offsets table, and its {@code export} and {@code import}
 * verbs, against real servers, on pipelines the library's own start sequence started and the sink's
 * offset store committed. One source topic per test with two partitions: 10 records in partition 0,
 * 6 in partition 1. Cassandra is slow to start: every test of the tool on it is here, sharing one
 * keyspace.
 */
class OffsetsToolCassandraIT {
  private static CassandraServer cassandra;
  private static CassandraSettings settings;
  private static String ks;

  private final KafkaBroker kafka = TestServers.kafka();
  private final String suffix = Long.toString(System.nanoTime());
  private final String topic = "tool-cas-src-" + suffix;
  private final TopicPartition p0 = new TopicPartition(topic, 0);
  private final TopicPartition p1 = new TopicPartition(topic, 1);

  @BeforeAll
  static void keyspace() {
    cassandra = TestServers.cassandra();
    settings =
        CassandraSettings.contactPoints(
                cassandra.localDatacenter(), cassandra.host() + ":" + cassandra.nativePort())
            .requestTimeout(Duration.ofSeconds(60));
    ks = "eos_tool_it_" + System.currentTimeMillis();
    try (CqlSession s = CassandraTestSupport.session(cassandra)) {
      s.execute(
          "CREATE KEYSPACE "
              + ks
              + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
      s.execute(
          "CREATE TABLE "
              + ks
              + ".events (src_topic text, src_partition int, src_offset bigint, src_index int,"
              + " id text, PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
    }
  }

  @AfterAll
  static void dropKeyspace() {
    if (ks != null) {
      CassandraTestSupport.cql(cassandra, "DROP KEYSPACE IF EXISTS " + ks);
    }
  }

  /** What one run of the tool printed, and its exit code. */
  private record Run(int exit, String out, String err) {}

  private Run tool(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit =
        OffsetsTool.commandLine(Map.of())
            .setOut(new PrintWriter(out))
            .setErr(new PrintWriter(err))
            .execute(args);
    System.out.println("$ exactly-once-offsets " + String.join(" ", args) + "\n" + out + err);
    return new Run(exit, out.toString(), err.toString());
  }

  /** The tool's options naming the Cassandra store and the source cluster, then {@code more}. */
  private String[] args(String verb, String... more) {
    List<String> all =
        new ArrayList<>(
            List.of(
                verb,
                "--cassandra",
                cassandra.host() + ":" + cassandra.nativePort(),
                "--cassandra-dc",
                cassandra.localDatacenter(),
                "--keyspace",
                ks,
                "--bootstrap-servers",
                kafka.bootstrapServers()));
    all.addAll(List.of(more));
    return all.toArray(new String[0]);
  }

  private void sourceTopic() {
    kafka.createTopic(topic, 2);
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      records.add(new ProducerRecord<>(topic, 0, "k" + i, "v" + i));
    }
    for (int i = 0; i < 6; i++) {
      records.add(new ProducerRecord<>(topic, 1, "k" + i, "v" + i));
    }
    kafka.send(records);
  }

  private static CassandraSink<String> sink(String pipeline) {
    return CassandraSink.<String>idempotent(pipeline)
        .connection(settings)
        .table(ks + ".events")
        .columns("id")
        .values(v -> List.of(v))
        .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
        .build();
  }

  /** The library's own start sequence over the source topic: it throws where a start refuses. */
  private StartSequence.Started start(ExactlyOnceSink sink) {
    Map<String, Object> params = new HashMap<>();
    params.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    params.put(ConsumerConfig.GROUP_ID_CONFIG, "tool-cas-it-" + suffix);
    try (StartSequence.Validated v = StartSequence.validate(List.of(sink));
        StartOffsets k = new StartOffsets(params, List.of(topic))) {
      return v.takeEpochs(k).resolve(k, StartPosition.earliest());
    }
  }

  private static long epochOf(StartSequence.Started s) {
    return s.epochs().values().iterator().next();
  }

  private static Map<TopicPartition, Long> storedOf(StartSequence.Started s) {
    return s.stored().values().iterator().next();
  }

  /** The sink's offsets commit of one range (the outputs do not matter to the tool). */
  private CommitOutcome commit(CassandraSink<String> sink, long epoch, int p, long from, long to) {
    try (OffsetStore store = sink.openOffsetStore()) {
      return store
          .commitRanges(epoch, List.of(SourceRange.of(topic, p, from, to)))
          .get(0)
          .outcome();
    }
  }

  private static Map<TopicPartition, Long> stored(CassandraSink<String> sink) {
    try (OffsetStore store = sink.openOffsetStore()) {
      return store.storedOffsets();
    }
  }

  @Test
  void cassandraShowLagResetAndDoctorThroughTheLibrary() {
    sourceTopic();
    String pipeline = "tool-cas-" + suffix;
    CassandraSink<String> sink = sink(pipeline);
    long epoch = epochOf(start(sink));
    assertThat(commit(sink, epoch, 0, 0, 8)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 4)).isEqualTo(CommitOutcome.COMMITTED);

    Run show = tool(args("show", "--pipeline", pipeline));
    assertThat(show.exit()).as(show.err()).isZero();
    // The table keeps no epoch per offset ("-"); the write times come from Cassandra.
    assertThat(show.out())
        .contains("offsets table " + ks + ".eos_offsets")
        .contains("pipeline '" + pipeline + "': writer epoch " + epoch)
        .containsPattern(topic + " +0 +8 +- +\\d{4}-")
        .containsPattern(topic + " +1 +4 +- +\\d{4}-");
    Run showAll = tool(args("show"));
    assertThat(showAll.exit()).as(showAll.err()).isZero();
    assertThat(showAll.out()).contains("pipeline '" + pipeline + "'");

    Run lag = tool(args("lag", "--pipeline", pipeline));
    assertThat(lag.exit()).as(lag.err()).isZero();
    assertThat(lag.out())
        .containsPattern(topic + " +0 +8 +0 +10 +2")
        .containsPattern(topic + " +1 +4 +0 +6 +2")
        .contains("TOTAL LAG 4");

    Run dryRun = tool(args("reset", "--pipeline", pipeline, "--to-earliest"));
    assertThat(dryRun.exit()).as(dryRun.err()).isZero();
    assertThat(dryRun.out())
        .containsPattern(topic + " +0 +8 +0 +-8 +0 +10")
        .contains("dry run: nothing was changed");
    assertThat(stored(sink)).isEqualTo(Map.of(p0, 8L, p1, 4L));

    // Committed just now: the driver may still run.
    String toThreeAndTwo = topic + ":0=3," + topic + ":1=2";
    Run refused =
        tool(args("reset", "--pipeline", pipeline, "--to-offset", toThreeAndTwo, "--execute"));
    assertThat(refused.exit()).as(refused.out() + refused.err()).isEqualTo(OffsetsTool.REFUSED);
    assertThat(refused.err())
        .contains("refused: pipeline '" + pipeline + "' may still be held")
        .contains("its offsets were last written")
        .contains("--force");
    assertThat(stored(sink)).isEqualTo(Map.of(p0, 8L, p1, 4L));

    // Once nothing was written for --idle-for (1 s here), the reset goes ahead.
    String[] idleReset =
        args(
            "reset",
            "--pipeline",
            pipeline,
            "--to-offset",
            toThreeAndTwo,
            "--execute",
            "--idle-for",
            "1s");
    await().atMost(Duration.ofSeconds(60)).until(() -> tool(idleReset).exit() == 0);
    assertThat(stored(sink)).isEqualTo(Map.of(p0, 3L, p1, 2L));
    // The older writer is fenced; the next start accepts the offsets moved back.
    assertThat(commit(sink, epoch, 1, 4, 6)).isEqualTo(CommitOutcome.FENCED);
    StartSequence.Started next = start(sink);
    assertThat(storedOf(next)).isEqualTo(Map.of(p0, 3L, p1, 2L));

    // That start took an epoch and committed nothing: doctor tells, once --idle-for has passed.
    Run[] doctor = new Run[1];
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () -> {
              doctor[0] = tool(args("doctor", "--pipeline", pipeline, "--idle-for", "1s"));
              return doctor[0].out().contains("has committed nothing since");
            });
    assertThat(doctor[0].exit()).as(doctor[0].err()).isZero();
    assertThat(doctor[0].out()).contains("INFO").contains("under writer epoch " + epochOf(next));

    // An offset moved back by hand, outside the library: doctor finds what the start refuses.
    CassandraTestSupport.cql(
        cassandra,
        "UPDATE "
            + ks
            + ".eos_offsets SET until_offset = 1 WHERE pipeline_id = '"
            + pipeline
            + "' AND topic = '"
            + topic
            + "' AND kafka_partition = 0");
    // The start refuses it, naming the tool's command for this store.
    assertThatThrownBy(() -> start(sink))
        .hasMessageContaining("stored offset 1 is below its high-water mark 3")
        .hasMessageContaining(
            "bin/exactly-once-offsets reset --pipeline "
                + pipeline
                + " --bootstrap-servers "
                + kafka.bootstrapServers()
                + " --cassandra "
                + cassandra.host()
                + ":"
                + cassandra.nativePort()
                + " --cassandra-dc "
                + cassandra.localDatacenter()
                + " --keyspace "
                + ks
                + " --to-offset "
                + topic
                + ":0=1 --execute");
    Run found = tool(args("doctor", "--pipeline", pipeline));
    assertThat(found.exit()).as(found.out() + found.err()).isEqualTo(OffsetsTool.FOUND_ERRORS);
    assertThat(found.out())
        .contains("stored offset 1 is below its high-water mark 3")
        .contains("reset --pipeline " + pipeline)
        .contains("--cassandra-dc " + cassandra.localDatacenter())
        .contains("--to-offset " + topic + ":0=1 --execute");
    Run fixed =
        tool(
            args(
                "reset",
                "--pipeline",
                pipeline,
                "--to-offset",
                topic + ":0=1",
                "--execute",
                "--force"));
    assertThat(fixed.exit()).as(fixed.out() + fixed.err()).isZero();
    assertThat(storedOf(start(sink))).isEqualTo(Map.of(p0, 1L, p1, 2L));
  }

  @Test
  void exportWritesTheStoredOffsetsIntoAConsumerGroup() throws Exception {
    sourceTopic();
    String pipeline = "tool-cas-export-" + suffix;
    String group = "moved-away-" + suffix;
    CassandraSink<String> sink = sink(pipeline);
    long epoch = epochOf(start(sink));
    assertThat(commit(sink, epoch, 0, 0, 7)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 5)).isEqualTo(CommitOutcome.COMMITTED);

    Run dryRun = tool(args("export", "--pipeline", pipeline, "--to-group", group));
    assertThat(dryRun.exit()).as(dryRun.err()).isZero();
    assertThat(dryRun.out())
        .containsPattern(topic + " +0 +- +7")
        .contains("dry run: nothing was changed");
    assertThat(groupOffsets(group)).isEmpty();

    Run applied = tool(args("export", "--pipeline", pipeline, "--to-group", group, "--execute"));
    assertThat(applied.exit()).as(applied.out() + applied.err()).isZero();
    assertThat(groupOffsets(group)).isEqualTo(Map.of(p0, 7L, p1, 5L));
    // The store is only read.
    assertThat(stored(sink)).isEqualTo(Map.of(p0, 7L, p1, 5L));

    // A consumer of the group is running: Kafka would refuse, the tool says why first.
    try (KafkaConsumer<String, String> member = member(group)) {
      Run refused = tool(args("export", "--pipeline", pipeline, "--to-group", group, "--execute"));
      assertThat(refused.exit()).as(refused.out() + refused.err()).isEqualTo(OffsetsTool.REFUSED);
      assertThat(refused.err()).contains("has 1 active member(s)");
    }
  }

  @Test
  void importSetsTheStoredOffsetsFromAConsumerGroupAndTheNextStartBeginsThere() throws Exception {
    sourceTopic();
    String group = "old-job-" + suffix;
    try (Admin admin = kafka.admin()) {
      admin
          .alterConsumerGroupOffsets(
              group, Map.of(p0, new OffsetAndMetadata(6), p1, new OffsetAndMetadata(5)))
          .all()
          .get(30, TimeUnit.SECONDS);
    }
    String pipeline = "tool-cas-import-" + suffix;
    CassandraSink<String> sink = sink(pipeline);

    Run dryRun = tool(args("import", "--pipeline", pipeline, "--from-group", group));
    assertThat(dryRun.exit()).as(dryRun.err()).isZero();
    assertThat(dryRun.out())
        .contains("from consumer group '" + group + "'")
        .containsPattern(topic + " +0 +- +6 +- +0 +10")
        .containsPattern(topic + " +1 +- +5 +- +0 +6")
        .contains("dry run: nothing was changed");

    // The old job still consumes: refused.
    try (KafkaConsumer<String, String> member = member(group)) {
      Run refused =
          tool(args("import", "--pipeline", pipeline, "--from-group", group, "--execute"));
      assertThat(refused.exit()).as(refused.out() + refused.err()).isEqualTo(OffsetsTool.REFUSED);
      assertThat(refused.err()).contains("has 1 active member(s)").contains("--force");
    }

    Run applied = tool(args("import", "--pipeline", pipeline, "--from-group", group, "--execute"));
    assertThat(applied.exit()).as(applied.out() + applied.err()).isZero();
    assertThat(stored(sink)).isEqualTo(Map.of(p0, 6L, p1, 5L));
    Run show = tool(args("show", "--pipeline", pipeline));
    assertThat(show.out()).containsPattern(topic + " +0 +6 +").containsPattern(topic + " +1 +5 +");
    // A stream started from the store starts where the group was.
    StartSequence.Started next = start(sink);
    assertThat(storedOf(next)).isEqualTo(Map.of(p0, 6L, p1, 5L));
    assertThat(next.from()).isEqualTo(Map.of(p0, 6L, p1, 5L));

    // That start holds the pipeline now: a second import is refused unless forced.
    Run held = tool(args("import", "--pipeline", pipeline, "--from-group", group, "--execute"));
    assertThat(held.exit()).as(held.out() + held.err()).isEqualTo(OffsetsTool.REFUSED);
    assertThat(held.err())
        .contains("refused: pipeline '" + pipeline + "' may still be held")
        .contains("its writer epoch was taken");
  }

  /** An active member of {@code group}, subscribed to the source topic. */
  private KafkaConsumer<String, String> member(String group) {
    Map<String, Object> config = new HashMap<>();
    config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    config.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    KafkaConsumer<String, String> c =
        new KafkaConsumer<>(config, new StringDeserializer(), new StringDeserializer());
    c.subscribe(List.of(topic));
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () -> {
              c.poll(Duration.ofMillis(200));
              return !c.assignment().isEmpty();
            });
    return c;
  }

  /** The committed offsets of {@code group}, as Kafka's admin client reads them. */
  private Map<TopicPartition, Long> groupOffsets(String group) throws Exception {
    Map<TopicPartition, Long> out = new HashMap<>();
    try (Admin admin = kafka.admin()) {
      admin
          .listConsumerGroupOffsets(group)
          .partitionsToOffsetAndMetadata()
          .get(30, TimeUnit.SECONDS)
          .forEach((tp, om) -> out.put(tp, om.offset()));
    }
    return out;
  }
}
