package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;
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
 * The offsets tool's {@code doctor} against real servers, on pipelines a real sink started and
 * committed: a healthy pipeline has no findings; a stored offset the log no longer holds (records
 * deleted below it, or the log ending before it), a partition added since, and a transaction left
 * open under the pipeline's transactional id are each reported with the command that resolves them,
 * and running that command clears the finding. One source topic with two partitions: 10 records in
 * partition 0, 6 in partition 1.
 */
class DoctorIT {
  private final KafkaBroker kafka = TestServers.kafka();
  private final String suffix = Long.toString(System.nanoTime());
  private final String topic = "doctor-src-" + suffix;

  private record Run(int exit, String out, String err) {}

  private Run tool(Map<String, String> env, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit =
        OffsetsTool.commandLine(env)
            .setOut(new PrintWriter(out))
            .setErr(new PrintWriter(err))
            .execute(args);
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

  private long start(ExactlyOnceSink sink) {
    Map<String, Object> params = new HashMap<>();
    params.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    params.put(ConsumerConfig.GROUP_ID_CONFIG, "doctor-it-" + suffix);
    try (StartSequence.Validated v = StartSequence.validate(List.of(sink));
        StartOffsets k = new StartOffsets(params, List.of(topic))) {
      return v.takeEpochs(k)
          .resolve(k, StartPosition.earliest())
          .epochs()
          .values()
          .iterator()
          .next();
    }
  }

  /** Deletes the records of {@code tp} below {@code offset}: its log start moves there. */
  private void deleteRecordsBelow(TopicPartition tp, long offset) throws Exception {
    try (Admin admin = kafka.admin()) {
      admin
          .deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(offset)))
          .all()
          .get(30, TimeUnit.SECONDS);
    }
  }

  private void addPartition() throws Exception {
    try (Admin admin = kafka.admin()) {
      admin
          .createPartitions(Map.of(topic, NewPartitions.increaseTo(3)))
          .all()
          .get(30, TimeUnit.SECONDS);
    }
  }

  /** The fix command of the row that matches {@code row}, as the tool's arguments. */
  private static String[] fixOf(String output, String row) {
    Matcher m =
        Pattern.compile(row + ".*?bin/exactly-once-offsets (reset [^\\n]*?--execute( --force)?)")
            .matcher(output);
    assertThat(m.find()).as("a row matching '%s' with a fix command in:%n%s", row, output).isTrue();
    return m.group(1).split(" ");
  }

  @Test
  void postgresPipelineFindingsEachComeWithTheResetThatClearsThem() throws Exception {
    sourceTopic();
    JdbcTestSupport db = new JdbcTestSupport();
    PostgresServer pg = TestServers.postgres();
    Map<String, String> env = Map.of("EOS_TEST_PGPASSWORD", pg.password());
    String pipeline = "doctor-pg";
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional(pipeline)
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .build();
    long epoch = start(sink);
    assertThat(commit(sink, epoch, 0, 0, 8)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 4)).isEqualTo(CommitOutcome.COMMITTED);
    String[] doctor = {
      "doctor",
      "--pipeline",
      pipeline,
      "--bootstrap-servers",
      kafka.bootstrapServers(),
      "--jdbc-url",
      db.url,
      "--user",
      pg.user(),
      "--password-env",
      "EOS_TEST_PGPASSWORD"
    };

    Run healthy = tool(env, doctor);
    assertThat(healthy.exit()).as(healthy.out() + healthy.err()).isZero();
    assertThat(healthy.out()).contains("no findings");

    // Retention deleted records the pipeline never processed; the pipeline's offset of partition 1
    // lies past the log (as after the topic was recreated); a partition was added.
    deleteRecordsBelow(new TopicPartition(topic, 0), 9);
    db.execute(
        "UPDATE eos_offsets SET until_offset = 20 WHERE kafka_partition = 1 AND pipeline_id = '"
            + pipeline
            + "'");
    addPartition();
    Run sick = tool(env, doctor);
    assertThat(sick.exit()).as(sick.out() + sick.err()).isEqualTo(OffsetsTool.FOUND_ERRORS);
    assertThat(sick.out())
        .containsPattern(
            "ERROR +"
                + topic
                + " +0 +stored offset 8 is below the log start 9 .*--to-offset "
                + topic
                + ":0=9 --execute")
        .containsPattern(
            "ERROR +"
                + topic
                + " +1 +stored offset 20 is past the log end 6 .*--to-offset "
                + topic
                + ":1=0 --execute")
        .containsPattern("WARN +" + topic + " +2 +no stored offset .*--to-offset " + topic + ":2=0")
        .contains("2 error(s), 1 warning(s)")
        // The password by the name of its variable, never itself.
        .contains("--password-env EOS_TEST_PGPASSWORD --to-offset")
        .doesNotContain("--password ");

    // The printed commands resolve the errors (the job is stopped: the tables say it has been
    // idle).
    for (String row : new String[] {"ERROR +" + topic + " +0 ", "ERROR +" + topic + " +1 "}) {
      db.execute("UPDATE eos_writers SET taken_at = now() - interval '10 minutes'");
      db.execute("UPDATE eos_offsets SET updated_at = now() - interval '10 minutes'");
      Run fix = tool(env, fixOf(sick.out(), row));
      assertThat(fix.exit()).as(fix.out() + fix.err()).isZero();
    }
    Run fixed = tool(env, doctor);
    assertThat(fixed.exit()).as(fixed.out() + fixed.err()).isEqualTo(OffsetsTool.FOUND_WARNINGS);
    assertThat(fixed.out()).doesNotContain("ERROR").contains("0 error(s), 1 warning(s)");

    // A driver took the pipeline two hours ago and committed nothing since.
    db.execute("UPDATE eos_writers SET taken_at = now() - interval '2 hours'");
    db.execute("UPDATE eos_offsets SET updated_at = now() - interval '3 hours'");
    Run stale = tool(env, doctor);
    assertThat(stale.out())
        .containsPattern("INFO +- +- +a driver took the pipeline at .* and has committed nothing");
  }

  @Test
  void topicRecreatedWithFewerPartitionsIsReportedPartitionByPartition() throws Exception {
    sourceTopic();
    JdbcTestSupport db = new JdbcTestSupport();
    PostgresServer pg = TestServers.postgres();
    Map<String, String> env = Map.of("EOS_TEST_PGPASSWORD", pg.password());
    String pipeline = "doctor-recreated";
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional(pipeline)
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .build();
    long epoch = start(sink);
    assertThat(commit(sink, epoch, 0, 0, 8)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 4)).isEqualTo(CommitOutcome.COMMITTED);
    String[] doctor = {
      "doctor",
      "--pipeline",
      pipeline,
      "--bootstrap-servers",
      kafka.bootstrapServers(),
      "--jdbc-url",
      db.url,
      "--user",
      pg.user(),
      "--password-env",
      "EOS_TEST_PGPASSWORD"
    };

    try (Admin admin = kafka.admin()) {
      admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
    }
    // Deleted: until it is created again, the next start refuses to run.
    await()
        .atMost(Duration.ofSeconds(30))
        .untilAsserted(
            () -> {
              Run gone = tool(env, doctor);
              assertThat(gone.exit()).isEqualTo(OffsetsTool.FOUND_ERRORS);
              assertThat(gone.out())
                  .containsPattern(
                      "ERROR +"
                          + topic
                          + " +- +topic '"
                          + topic
                          + "' has stored offsets but does"
                          + " not exist");
            });
    // Created again with one partition of 2 records: partition 0's stored 8 lies past its end,
    // and partition 1 is gone.
    await()
        .atMost(Duration.ofSeconds(30))
        .ignoreExceptions()
        .untilAsserted(() -> kafka.createTopic(topic, 1));
    kafka.send(
        List.of(
            new ProducerRecord<>(topic, 0, "k0", "v0"),
            new ProducerRecord<>(topic, 0, "k1", "v1")));
    Run recreated = tool(env, doctor);
    assertThat(recreated.exit()).isEqualTo(OffsetsTool.FOUND_ERRORS);
    assertThat(recreated.out())
        .containsPattern(
            "ERROR +"
                + topic
                + " +0 +stored offset 8 is past the log end 2 .*--to-offset "
                + topic
                + ":0=0 --execute")
        .containsPattern(
            "WARN +"
                + topic
                + " +1 +stored offset 4 for a partition topic '"
                + topic
                + "' no longer has \\(it has 1;")
        .contains("1 error(s), 1 warning(s)");
  }

  private CommitOutcome commit(JdbcSink<Out> sink, long epoch, int partition, long from, long to) {
    return sink.commit(
            epoch,
            SourceRange.of(topic, partition, from, to),
            JdbcTestSupport.outputs(topic, partition, from, to))
        .outcome();
  }

  @Test
  void kafkaPipelineLingeringTransactionAndDeletedRecordsAreReported() throws Exception {
    sourceTopic();
    String outTopic = "doctor-out-" + suffix;
    kafka.createTopic(outTopic, 1);
    String pipeline = "doctor-kafka-" + suffix;
    KafkaSink<String> sink =
        KafkaSink.<String>transactional(pipeline)
            .bootstrapServers(kafka.bootstrapServers())
            .topic(outTopic)
            .value(ToBytes.utf8(s -> s))
            .apiTimeout(Duration.ofSeconds(20))
            .build();
    long epoch = start(sink);
    assertThat(commit(sink, epoch, 0, 0, 8)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 4)).isEqualTo(CommitOutcome.COMMITTED);
    Map<String, String> env = Map.of();
    String[] doctor = {
      "doctor",
      "--pipeline",
      pipeline,
      "--bootstrap-servers",
      kafka.bootstrapServers(),
      "--output-topic",
      outTopic
    };

    Run healthy = tool(env, doctor);
    assertThat(healthy.exit()).as(healthy.out() + healthy.err()).isZero();
    assertThat(healthy.out()).contains("no findings");

    // A producer of the transactional id of source partition 0 begins a transaction and leaves it.
    String id = "eos-" + pipeline + "-:" + topic + ":0";
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
    p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 300_000);
    try (KafkaProducer<String, String> lingering =
        new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
      lingering.initTransactions();
      lingering.beginTransaction();
      lingering.send(new ProducerRecord<>(outTopic, 0, "k", "left open")).get(30, TimeUnit.SECONDS);

      Run open = tool(env, doctor);
      assertThat(open.exit()).as(open.out() + open.err()).isEqualTo(OffsetsTool.FOUND_WARNINGS);
      assertThat(open.out())
          .containsPattern(
              "WARN +"
                  + topic
                  + " +0 +open Kafka transaction of transactional id '"
                  + Pattern.quote(id)
                  + "' \\(state \\w+, started \\S+ \\(\\d+ s ago\\), timeout 300000 ms")
          .contains("describe --transactional-id " + id);

      // Records the pipeline never processed deleted below its stored offset 4 of partition 1.
      deleteRecordsBelow(new TopicPartition(topic, 1), 5);
      Run sick = tool(env, doctor);
      assertThat(sick.exit()).as(sick.out() + sick.err()).isEqualTo(OffsetsTool.FOUND_ERRORS);
      String[] fix =
          fixOf(sick.out(), "ERROR +" + topic + " +1 +stored offset 4 is below the log start 5");
      assertThat(String.join(" ", fix))
          .contains("--output-topic " + outTopic, "--to-offset " + topic + ":1=5", "--force");
      Run applied = tool(env, fix);
      assertThat(applied.exit()).as(applied.out() + applied.err()).isZero();
      Run fixed = tool(env, doctor);
      assertThat(fixed.exit()).as(fixed.out() + fixed.err()).isNotEqualTo(OffsetsTool.FOUND_ERRORS);
      assertThat(fixed.out()).doesNotContain("below the log start");
    }
  }

  @Test
  void kafkaIdlePartitionWhoseStoredOffsetTheBrokerMayExpireIsReported() throws Exception {
    // Records of four days ago, all processed: no batch commits the partitions again, and the
    // broker keeps a member-less group's offsets 7 days (its default) after their last commit.
    kafka.createTopic(topic, 2);
    long fourDaysAgo = System.currentTimeMillis() - Duration.ofDays(4).toMillis();
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      records.add(new ProducerRecord<>(topic, 0, fourDaysAgo + i, "k" + i, "v" + i));
      records.add(new ProducerRecord<>(topic, 1, fourDaysAgo + i, "k" + i, "v" + i));
    }
    kafka.send(records);
    String outTopic = "doctor-out-" + suffix;
    kafka.createTopic(outTopic, 1);
    String pipeline = "doctor-idle-" + suffix;
    KafkaSink<String> sink =
        KafkaSink.<String>transactional(pipeline)
            .bootstrapServers(kafka.bootstrapServers())
            .topic(outTopic)
            .value(ToBytes.utf8(s -> s))
            .apiTimeout(Duration.ofSeconds(20))
            .build();
    long epoch = start(sink);
    assertThat(commit(sink, epoch, 0, 0, 3)).isEqualTo(CommitOutcome.COMMITTED);
    assertThat(commit(sink, epoch, 1, 0, 2)).isEqualTo(CommitOutcome.COMMITTED);

    Run idle =
        tool(
            Map.of(),
            "doctor",
            "--pipeline",
            pipeline,
            "--bootstrap-servers",
            kafka.bootstrapServers());
    assertThat(idle.exit()).as(idle.out() + idle.err()).isEqualTo(OffsetsTool.FOUND_WARNINGS);
    assertThat(idle.out())
        .containsPattern(
            "WARN +"
                + topic
                + " +0 +idle since its latest record at \\S+: no batch commits it, and group 'eos-progress-"
                + pipeline
                + "' has no members, so the broker deletes its stored offset 10080 min after its"
                + " last commit \\(the broker's offsets.retention.minutes\\)")
        // Partition 1 still has a record to process: a batch will commit it.
        .doesNotContainPattern("WARN +" + topic + " +1 ");
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
}
