package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;

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
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.internal.StartOffsets;
import org.exactlyonce.spark.internal.StartSequence;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tool.OffsetsTool;
import org.junit.jupiter.api.Test;

/**
 * The offsets tool against real servers, on pipelines a real sink started and committed: {@code
 * show} and {@code lag} print what the store holds, {@code reset} changes nothing without {@code
 * --execute}, is refused while a driver may hold the pipeline unless forced, and once applied the
 * next start accepts the new offsets (the high-water mark moved with them) while the older writer
 * is fenced; {@code export} writes a store's offsets into a consumer group and {@code import} sets
 * a store's from one (both stores each way); {@code reset --to-datetime} against the broker's
 * timestamps. One source topic with two partitions: 10 records in partition 0, 6 in partition 1.
 * The Cassandra store is {@link OffsetsToolCassandraIT}'s.
 */
class OffsetsToolIT {
  private final KafkaBroker kafka = TestServers.kafka();
  private final String suffix = Long.toString(System.nanoTime());
  private final String topic = "tool-src-" + suffix;
  private final TopicPartition p0 = new TopicPartition(topic, 0);
  private final TopicPartition p1 = new TopicPartition(topic, 1);

  /** What one run of the tool printed, and its exit code. */
  private record Run(int exit, String out, String err) {}

  private Run tool(Map<String, String> env, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit =
        OffsetsTool.commandLine(env)
            .setOut(new PrintWriter(out))
            .setErr(new PrintWriter(err))
            .execute(args);
    // In the test log, for whoever reads a failure.
    System.out.println("$ exactly-once-offsets " + String.join(" ", args) + "\n" + out + err);
    return new Run(exit, out.toString(), err.toString());
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

  /**
   * The library's own start sequence over the source topic (validate, checks before the epoch,
   * epoch, stored offsets checked against Kafka and the high-water marks): it throws where a job's
   * start would refuse.
   */
  private StartSequence.Started start(ExactlyOnceSink sink) {
    Map<String, Object> params = new HashMap<>();
    params.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    params.put(ConsumerConfig.GROUP_ID_CONFIG, "tool-it-" + suffix);
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

  @Test
  void postgresShowLagResetAndExportThroughTheLibrary() throws Exception {
    sourceTopic();
    JdbcTestSupport db = new JdbcTestSupport();
    PostgresServer pg = TestServers.postgres();
    Map<String, String> env = Map.of("EOS_TEST_PGPASSWORD", pg.password());
    String pipeline = "tool-pg";
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional(pipeline)
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .build();
    long epoch = epochOf(start(sink));
    assertThat(commit(sink, epoch, 0, 0, 8)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 4)).isEqualTo(CommitOutcome.COMMITTED);
    String[] store = {
      "--jdbc-url", db.url, "--user", pg.user(), "--password-env", "EOS_TEST_PGPASSWORD"
    };

    Run show = tool(env, concat(new String[] {"show"}, store));
    assertThat(show.exit()).as(show.err()).isZero();
    assertThat(show.out())
        .contains("pipeline '" + pipeline + "': writer epoch " + epoch + ", taken ")
        .containsPattern(topic + " +0 +8 +" + epoch + " +\\d{4}-")
        .containsPattern(topic + " +1 +4 +" + epoch + " +\\d{4}-");

    Run lag =
        tool(
            env,
            concat(
                new String[] {
                  "lag", "--pipeline", pipeline, "--bootstrap-servers", kafka.bootstrapServers()
                },
                store));
    assertThat(lag.exit()).as(lag.err()).isZero();
    assertThat(lag.out())
        .containsPattern(topic + " +0 +8 +0 +10 +2")
        .containsPattern(topic + " +1 +4 +0 +6 +2")
        .contains("TOTAL LAG 4");

    String[] reset = {
      "reset", "--pipeline", pipeline, "--bootstrap-servers", kafka.bootstrapServers()
    };
    Run dryRun = tool(env, concat(reset, store, new String[] {"--to-earliest"}));
    assertThat(dryRun.exit()).as(dryRun.err()).isZero();
    assertThat(dryRun.out())
        .containsPattern(topic + " +0 +8 +0 +-8 +0 +10")
        .containsPattern(topic + " +1 +4 +0 +-4 +0 +6")
        .contains("dry run: nothing was changed");
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 8L, p1, 4L));

    // The driver took its epoch and committed just now: it may still run.
    String[] toThreeAndTwo = {"--to-offset", topic + ":0=3," + topic + ":1=2", "--execute"};
    Run refused = tool(env, concat(reset, store, toThreeAndTwo));
    assertThat(refused.exit()).as(refused.out() + refused.err()).isEqualTo(OffsetsTool.REFUSED);
    assertThat(refused.err())
        .contains("refused: pipeline '" + pipeline + "' may still be held")
        .contains("its offsets were last written")
        .contains("--force");
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 8L, p1, 4L));
    assertThat(commit(sink, epoch, 0, 8, 9)).isEqualTo(CommitOutcome.COMMITTED);

    // The same driver, stopped ten minutes ago as far as the tables tell.
    db.execute("UPDATE eos_writers SET taken_at = now() - interval '10 minutes'");
    db.execute("UPDATE eos_offsets SET updated_at = now() - interval '10 minutes'");
    Run applied = tool(env, concat(reset, store, toThreeAndTwo));
    assertThat(applied.exit()).as(applied.out() + applied.err()).isZero();
    assertThat(applied.out()).containsPattern(topic + " +0 +9 +3 +-6").contains("done: 2 offset");
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 3L, p1, 2L));
    // The older writer is fenced; the next start accepts the offsets moved back and goes on.
    assertThat(commit(sink, epoch, 1, 4, 6)).isEqualTo(CommitOutcome.FENCED);
    StartSequence.Started next = start(sink);
    assertThat(storedOf(next)).isEqualTo(Map.of(p0, 3L, p1, 2L));
    assertThat(commit(sink, epochOf(next), 0, 3, 10)).isEqualTo(CommitOutcome.COMMITTED);

    // Held again (that start just took an epoch): --force applies anyway.
    Run forced =
        tool(env, concat(reset, store, new String[] {"--shift-by", "-1", "--execute", "--force"}));
    assertThat(forced.exit()).as(forced.out() + forced.err()).isZero();
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 9L, p1, 1L));
    assertThat(storedOf(start(sink))).isEqualTo(Map.of(p0, 9L, p1, 1L));

    // export: the stored offsets become a consumer group's committed offsets.
    String group = "tool-pg-export-" + suffix;
    Run exported =
        tool(
            env,
            concat(
                new String[] {
                  "export",
                  "--pipeline",
                  pipeline,
                  "--bootstrap-servers",
                  kafka.bootstrapServers(),
                  "--to-group",
                  group,
                  "--execute"
                },
                store));
    assertThat(exported.exit()).as(exported.out() + exported.err()).isZero();
    assertThat(groupOffsets(group)).isEqualTo(Map.of(p0, 9L, p1, 1L));

    // import: a consumer group's committed offsets become the PostgreSQL store's, through the
    // library's rewind (held: the start above took an epoch just now, so --force). The group is
    // behind the pipeline on partition 0 (9 -> 4): refused unless --allow-rewind.
    String oldJob = "tool-pg-old-job-" + suffix;
    alterGroup(oldJob, Map.of(p0, 4L, p1, 5L));
    String[] importOldJob = {
      "import",
      "--pipeline",
      pipeline,
      "--bootstrap-servers",
      kafka.bootstrapServers(),
      "--from-group",
      oldJob,
      "--execute",
      "--force"
    };
    Run rewinds = tool(env, concat(importOldJob, store));
    assertThat(rewinds.exit()).as(rewinds.out() + rewinds.err()).isEqualTo(OffsetsTool.REFUSED);
    assertThat(rewinds.err())
        .contains("is behind pipeline '" + pipeline + "' on [" + topic + "-0 9 -> 4]")
        .contains("--allow-rewind");
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 9L, p1, 1L));
    Run imported = tool(env, concat(importOldJob, new String[] {"--allow-rewind"}, store));
    assertThat(imported.exit()).as(imported.out() + imported.err()).isZero();
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 4L, p1, 5L));
    assertThat(storedOf(start(sink))).isEqualTo(Map.of(p0, 4L, p1, 5L));

    // reset --to-datetime against the broker's timestamps: every record was written after
    // 2000-01-01, so that time maps to the first offset of each partition.
    Run byTime =
        tool(
            env,
            concat(
                reset,
                store,
                new String[] {"--to-datetime", "2000-01-01T00:00:00Z", "--execute", "--force"}));
    assertThat(byTime.exit()).as(byTime.out() + byTime.err()).isZero();
    assertThat(db.stored(pipeline)).isEqualTo(Map.of(p0, 0L, p1, 0L));
    assertThat(storedOf(start(sink))).isEqualTo(Map.of(p0, 0L, p1, 0L));
  }

  /** Sets {@code group}'s committed offsets, as another job's consumer would have left them. */
  private void alterGroup(String group, Map<TopicPartition, Long> offsets) throws Exception {
    Map<TopicPartition, OffsetAndMetadata> committed = new HashMap<>();
    offsets.forEach((tp, o) -> committed.put(tp, new OffsetAndMetadata(o)));
    try (Admin admin = kafka.admin()) {
      admin.alterConsumerGroupOffsets(group, committed).all().get(30, TimeUnit.SECONDS);
    }
  }

  private CommitOutcome commit(JdbcSink<Out> sink, long epoch, int partition, long from, long to) {
    return sink.commit(
            epoch,
            SourceRange.of(topic, partition, from, to),
            JdbcTestSupport.outputs(topic, partition, from, to))
        .outcome();
  }

  @Test
  void kafkaProgressGroupShowLagResetAndImportThroughTheLibrary() throws Exception {
    sourceTopic();
    String outTopic = "tool-out-" + suffix;
    kafka.createTopic(outTopic, 1);
    String pipeline = "tool-kafka-" + suffix;
    KafkaSink<String> sink =
        KafkaSink.<String>transactional(pipeline)
            .bootstrapServers(kafka.bootstrapServers())
            .topic(outTopic)
            .value(ToBytes.utf8(s -> s))
            .apiTimeout(Duration.ofSeconds(20))
            .build();
    long epoch = epochOf(start(sink));
    assertThat(commit(sink, epoch, 0, 0, 8)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 4)).isEqualTo(CommitOutcome.COMMITTED);
    Map<String, String> env = Map.of();
    String[] store = {"--bootstrap-servers", kafka.bootstrapServers(), "--pipeline", pipeline};

    Run show = tool(env, concat(new String[] {"show"}, store));
    assertThat(show.exit()).as(show.err()).isZero();
    assertThat(show.out())
        .contains("pipeline '" + pipeline + "': writer epoch " + epoch)
        .containsPattern(topic + " +0 +8 +" + epoch)
        .containsPattern(topic + " +1 +4 +" + epoch);

    Run lag = tool(env, concat(new String[] {"lag"}, store));
    assertThat(lag.exit()).as(lag.err()).isZero();
    assertThat(lag.out())
        .containsPattern(topic + " +0 +8 +0 +10 +2")
        .containsPattern(topic + " +1 +4 +0 +6 +2")
        .contains("TOTAL LAG 4");

    Run dryRun = tool(env, concat(new String[] {"reset"}, store, new String[] {"--to-latest"}));
    assertThat(dryRun.exit()).as(dryRun.err()).isZero();
    assertThat(dryRun.out()).containsPattern(topic + " +0 +8 +10 +\\+2");
    assertThat(progress(pipeline)).isEqualTo(Map.of(p0, 8L, p1, 4L));

    String[] execute = {"--to-offset", topic + ":0=5," + topic + ":1=1", "--execute"};
    Run refused =
        tool(env, concat(new String[] {"reset", "--output-topic", outTopic}, store, execute));
    assertThat(refused.exit()).as(refused.out() + refused.err()).isEqualTo(OffsetsTool.REFUSED);
    assertThat(refused.err()).contains("records no commit times").contains("--force");
    assertThat(progress(pipeline)).isEqualTo(Map.of(p0, 8L, p1, 4L));

    Run forced =
        tool(
            env,
            concat(new String[] {"reset", "--output-topic", outTopic, "--force"}, store, execute));
    assertThat(forced.exit()).as(forced.out() + forced.err()).isZero();
    assertThat(progress(pipeline)).isEqualTo(Map.of(p0, 5L, p1, 1L));
    assertThat(commit(sink, epoch, 1, 4, 6)).isEqualTo(CommitOutcome.FENCED);
    StartSequence.Started next = start(sink);
    assertThat(storedOf(next)).isEqualTo(Map.of(p0, 5L, p1, 1L));
    assertThat(commit(sink, epochOf(next), 0, 5, 10)).isEqualTo(CommitOutcome.COMMITTED);

    // import: a consumer group's committed offsets become the progress group's, through the
    // library's rewind (a progress group records no times: --force).
    String group = "tool-kafka-old-job-" + suffix;
    try (Admin admin = kafka.admin()) {
      admin
          .alterConsumerGroupOffsets(
              group, Map.of(p0, new OffsetAndMetadata(2), p1, new OffsetAndMetadata(3)))
          .all()
          .get(30, TimeUnit.SECONDS);
    }
    Run imported =
        tool(
            env,
            concat(
                new String[] {
                  "import",
                  "--output-topic",
                  outTopic,
                  "--from-group",
                  group,
                  "--execute",
                  "--force",
                  "--allow-rewind" // partition 0 goes back from 10 to 2
                },
                store));
    assertThat(imported.exit()).as(imported.out() + imported.err()).isZero();
    assertThat(imported.out()).containsPattern(topic + " +0 +10 +2 +-8");
    assertThat(progress(pipeline)).isEqualTo(Map.of(p0, 2L, p1, 3L));
    assertThat(storedOf(start(sink))).isEqualTo(Map.of(p0, 2L, p1, 3L));

    // export: the progress group's offsets become another consumer group's.
    String exportGroup = "tool-kafka-export-" + suffix;
    Run exported =
        tool(env, concat(new String[] {"export", "--to-group", exportGroup, "--execute"}, store));
    assertThat(exported.exit()).as(exported.out() + exported.err()).isZero();
    assertThat(groupOffsets(exportGroup)).isEqualTo(Map.of(p0, 2L, p1, 3L));

    // Never into another pipeline's progress group (its offsets store), known by what the library
    // wrote there, whatever the group's name.
    String other = "tool-kafka-other-" + suffix;
    start(
        KafkaSink.<String>transactional(other)
            .bootstrapServers(kafka.bootstrapServers())
            .topic(outTopic)
            .value(ToBytes.utf8(s -> s))
            .apiTimeout(Duration.ofSeconds(20))
            .build());
    Map<TopicPartition, Long> othersOffsets = progress(other);
    assertThat(othersOffsets).isNotEmpty();
    Run intoProgress =
        tool(
            env,
            concat(
                new String[] {"export", "--to-group", "eos-progress-" + other, "--execute"},
                store));
    assertThat(intoProgress.exit()).as(intoProgress.out() + intoProgress.err()).isNotZero();
    assertThat(intoProgress.err()).contains("holds offsets a Kafka sink of this library wrote");
    assertThat(progress(other)).isEqualTo(othersOffsets);
  }

  private CommitOutcome commit(
      KafkaSink<String> sink, long epoch, int partition, long from, long to) {
    SourceRange r = SourceRange.of(topic, partition, from, to);
    return sink.commit(
            epoch,
            r,
            new MappedPartition<String, String, String>(
                JdbcTestSupport.records(topic, partition, from, to).iterator(),
                rec -> List.of(rec.value()),
                r))
        .outcome();
  }

  /** The committed offsets of the pipeline's progress group, as Kafka's admin client reads them. */
  private Map<TopicPartition, Long> progress(String pipeline) throws Exception {
    return groupOffsets("eos-progress-" + pipeline);
  }

  /** The committed offsets of {@code group}, as Kafka's admin client reads them. */
  private Map<TopicPartition, Long> groupOffsets(String group) throws Exception {
    Map<TopicPartition, Long> out = new HashMap<>();
    try (Admin admin = kafka.admin()) {
      Map<TopicPartition, OffsetAndMetadata> committed =
          admin
              .listConsumerGroupOffsets(group)
              .partitionsToOffsetAndMetadata()
              .get(30, TimeUnit.SECONDS);
      committed.forEach((tp, om) -> out.put(tp, om.offset()));
    }
    return out;
  }

  private static String[] concat(String[]... parts) {
    List<String> all = new ArrayList<>();
    for (String[] p : parts) {
      all.addAll(List.of(p));
    }
    return all.toArray(new String[0]);
  }
}
