package org.exactlyonce.spark.tests.chaos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.awaitility.core.ConditionTimeoutException;
import org.exactlyonce.spark.chaos.ChaosReport;
import org.exactlyonce.spark.chaos.ChaosRun;
import org.exactlyonce.spark.chaos.Fault;
import org.exactlyonce.spark.chaos.Oracle;
import org.exactlyonce.spark.chaos.TaskFaults;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.Ports;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.Outage;
import org.junit.jupiter.api.Test;

/**
 * Kafka to PostgreSQL, Cassandra and Kafka under a seeded schedule of faults, run with the chaos
 * kit ({@link ChaosRun}): executor JVMs and the driver JVM killed with SIGKILL (the driver is
 * started again, as a cluster manager would), PostgreSQL, Cassandra and the Kafka broker killed and
 * restarted on the same data, connections dropped mid-transaction, tasks failing at each point of
 * the commit protocol inside the executor JVMs ({@link TaskFaults}). Speculation is on, but Spark
 * launches no copies when all executors share one host (the report counts them); {@link
 * SpeculationIT} runs that row on two hosts; the count is never claimed as a fault. Every scheduled
 * fault must have fired ({@link ChaosReport#requireEveryFaultFired}): the job stays up until the
 * schedule is through, and a fault that hit nothing fails the test naming it, its time and why. The
 * {@link Oracle} reads the whole output and compares it with the input. Set -Dchaos.seed=N to
 * replay a schedule.
 */
class ChaosIT {
  // Defaults for the CI run; the soak profile (mvn -Psoak) raises them.
  private static final int RECORDS = Integer.getInteger("chaos.records", 2000);
  // Three per run by default (an executor kill and a driver kill first, then one drawn from the
  // mode's kinds) keeps the default test command under 20 minutes on 2 cores; -Dchaos.faults
  // and the soak profile raise it.
  private static final int FAULTS = Math.max(2, Integer.getInteger("chaos.faults", 3));
  private static final int FINISH_SECONDS = Integer.getInteger("chaos.finishSeconds", 180);
  private static final double TASK_FAULT_RATE =
      Double.parseDouble(System.getProperty("chaos.taskFaultRate", "0.15"));

  /** How long a killed server stays down before it is restarted. */
  private static final Duration OUTAGE = Duration.ofMillis(500);

  private static long seed() {
    return Long.getLong("chaos.seed", System.nanoTime());
  }

  /** What a chaos run did, and what the oracle found. */
  record Outcome(ChaosReport report, Oracle.Verdict verdict) {}

  // In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20
  // minutes on 2 cores: the operations run has this sink under the same faults, beside others.
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void theTransactionalSinkWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("transactional", seed());
    assertThat(o.report().firedTotal()).isEqualTo(FAULTS);
    assertThat(o.report().taskFaults()).as("task failures injected in executor JVMs").isNotEmpty();
    o.verdict().orThrow();
  }

  // In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20
  // minutes on 2 cores: the JDBC sinks are also under faults in the transactional run.
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void theIdempotentSinkWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("idempotent", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    o.verdict().orThrow();
  }

  @Test
  void theTransactionalKafkaSinkWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("kafka", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    assertThat(o.report().taskFaults()).as("task failures injected in executor JVMs").isNotEmpty();
    o.verdict().orThrow();
  }

  /**
   * Running totals in Cassandra: an aggregate, so the oracle compares every bucket's total with a
   * reference computed from the input (a replay would inflate one, a loss deflate it).
   */
  @Test
  void cassandraRunningTotalsEqualTheReferenceUnderFaults() throws Exception {
    Outcome o = run("cassandra", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    o.verdict().orThrow();
  }

  /** Per-batch totals (an aggregate after a shuffle) in PostgreSQL, against a reference. */
  // In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20
  // minutes on 2 cores: the JDBC sinks are also under faults in the transactional run.
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void perBatchTotalsInPostgresEqualTheReferenceUnderFaults() throws Exception {
    Outcome o = run("batch", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    o.verdict().orThrow();
  }

  /**
   * A Structured Streaming query through {@code ExactlyOnceForeachBatch.transactional} into
   * PostgreSQL, under the transactional run's faults, with a Spark checkpoint: the driver killed
   * mid-batch restarts from the checkpoint, whose unfinished batch Spark runs again (the sink's
   * stored offsets skip or trim it), while executors die and tasks fail at the protocol's points.
   */
  @Test
  void aStructuredQueryWithACheckpointWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("structured-checkpoint", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    assertThat(o.report().taskFaults()).as("task failures injected in executor JVMs").isNotEmpty();
    o.verdict().orThrow();
  }

  /**
   * Running totals in Cassandra through {@code ExactlyOnceForeachBatch.idempotent}, without a
   * checkpoint, under the cassandra run's faults (Cassandra restarted besides the kills): every
   * bucket's total equals the reference computed from the input.
   */
  // In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20
  // minutes on 2 cores: the default run has the adapter under faults with PostgreSQL.
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void aStructuredQueryKeepsCassandraRunningTotalsEqualToTheReferenceUnderFaults()
      throws Exception {
    Outcome o = run("structured-cassandra", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    o.verdict().orThrow();
  }

  /**
   * Kafka transactions (strategy K) through {@code ExactlyOnceForeachBatch.transactional}, without
   * a checkpoint, under the kafka run's faults (an executor and the driver killed, then a fault
   * drawn from those and a broker restart): the output topic's committed records, read whole, hold
   * every input record once.
   */
  // In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20
  // minutes on 2 cores: the default run has the adapter under faults with PostgreSQL, and this
  // sink under faults through a DStream.
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void aStructuredQueryWritesEveryRecordOnceToKafkaUnderFaults() throws Exception {
    Outcome o = run("structured-kafka", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    assertThat(o.report().taskFaults()).as("task failures injected in executor JVMs").isNotEmpty();
    o.verdict().orThrow();
  }

  /** The same without a checkpoint: a restarted driver resumes from the sink's stored offsets. */
  // In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20
  // minutes on 2 cores: the run with a checkpoint has the same sink under the same faults.
  @Test
  @org.junit.jupiter.api.Tag("slow")
  void aStructuredQueryWithoutACheckpointWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("structured", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    o.verdict().orThrow();
  }

  /**
   * Negative control: the oracle must catch the hand-written at-least-once recipe. Besides the
   * schedule (an executor kill), the first attempt of every task that wrote rows fails between its
   * write and the offset commit ({@link TaskFaults#firstAttemptAt}), the fault that makes a naive
   * writer duplicate; each such failure leaves at least one row written twice, so the control does
   * not depend on where the kill lands, and a run in which the fault never fired fails. No driver
   * kill: the forced failure alone duplicates every time, and a driver restart costs about 30 s.
   */
  @Test
  void theOracleReportsDuplicatesOfANaiveWriterUnderTheSameFaults() throws Exception {
    Outcome o = run("naive", seed());
    assertThat(o.report().fired()).containsKey("kill-executor");
    int forced = o.report().taskFaults().getOrDefault(TaskFaults.Point.BEFORE_COMMIT, 0);
    assertThat(forced)
        .as("task failures forced between the naive writer's rows and its offsets; " + o.report())
        .isPositive();
    assertThat(o.verdict().missing()).as(o.verdict().toString()).isZero();
    assertThat(o.verdict().duplicates())
        .as("the naive writer's duplicates, at least one per forced failure; " + o.verdict())
        .isGreaterThanOrEqualTo(forced);
  }

  /** Records written to the idle partition before the run, and again while the driver is down. */
  private static final int IDLE_RECORDS = 20;

  /** The operations run's broker expires a partition's committed offsets this long after. */
  private static final Duration OFFSETS_RETENTION = Duration.ofMinutes(1);

  /** The partition that gets no records while the job runs. */
  private static final int IDLE_PARTITION = 4;

  /**
   * Real operations on one stream with four outputs of different strategies: JDBC transactional
   * rows, JDBC idempotent rows, JDBC per-batch totals after a shuffle, and Kafka transactional
   * records, on a broker of its own that expires a partition's committed offsets a minute after
   * that partition's last commit. Input arrives all along the run (a feeder, 20 records a second,
   * until every fault has fired), besides the records written before it; partition 4 gets records
   * only before the run and while the driver is down. Every start after the first passes {@link
   * org.exactlyonce.spark.StartPosition#latest()}, as users do. The seeded schedule: an executor
   * kill; then, in an order drawn from the seed, partitions added to the topic mid-run (the feeder
   * writes to them at once, and the running driver must discover them), a driver kill, and a
   * rolling deploy (a second driver on the same pipelines while the first still writes; the old one
   * is fenced at its next commit, or stopped with SIGTERM); then a driver restart once the idle
   * partition's progress stood still for longer than the broker's offset retention, with records
   * written to it while the driver is down (a restart that took the idle partition for a new one
   * would write its history again or skip them); then PostgreSQL faults. The oracle reads every
   * output whole and compares it with the input read back from the topic.
   */
  @Test
  void everyOutputOfOneStreamWritesEveryRecordOnceUnderOperations() throws Exception {
    long seed = seed();
    PostgresServer pg = TestServers.postgres();
    try (KafkaBroker broker =
            KafkaBroker.start(
                TestServers.newDir("kafka-chaos-operations", false),
                TestServers.tls(),
                Map.of(
                    "offsets.retention.minutes",
                    String.valueOf(OFFSETS_RETENTION.toMinutes()),
                    "offsets.retention.check.interval.ms",
                    "1000"));
        Admin admin = broker.admin()) {
      String topic = "chaos-operations-" + System.nanoTime();
      String outTopic = topic + "-out";
      broker.createTopic(topic, 5);
      broker.createTopic(outTopic, 3);
      List<ProducerRecord<String, String>> before = new ArrayList<>();
      for (int i = 0; i < RECORDS; i++) {
        before.add(new ProducerRecord<>(topic, i % 4, "r" + i, "r" + i));
      }
      for (int i = 0; i < IDLE_RECORDS; i++) {
        before.add(new ProducerRecord<>(topic, IDLE_PARTITION, "idle" + i, "idle" + i));
      }
      broker.send(before);
      JdbcTestSupport db = new JdbcTestSupport();
      db.execute(
          "CREATE TABLE chaos_out (id text NOT NULL, src_topic text, src_partition int,"
              + " src_offset bigint, src_index int)");
      db.execute(
          "CREATE TABLE chaos_idem (id text NOT NULL, src_topic text, src_partition int,"
              + " src_offset bigint, src_index int)");
      db.execute(
          "CREATE UNIQUE INDEX ON chaos_idem (src_topic, src_partition, src_offset, src_index)");
      db.execute("CREATE TABLE chaos_totals (bucket text PRIMARY KEY, total bigint NOT NULL)");

      Path dir = Path.of("target", "chaos").toAbsolutePath();
      java.nio.file.Files.createDirectories(dir);
      Path firstStart = dir.resolve("operations.started");
      Path expected = dir.resolve("operations.expected");
      java.nio.file.Files.deleteIfExists(firstStart);
      java.nio.file.Files.deleteIfExists(expected);
      List<String> command =
          new ArrayList<>(
              driverCommand(
                  "operations",
                  broker,
                  db,
                  topic,
                  0, // read from the expected file, written once the feeder has stopped
                  List.of(outTopic),
                  taskFaultsOf("operations", seed)));
      command.add(1, "-Dchaos.firstStartMarker=" + firstStart);
      command.add(1, "-Dchaos.expectedFile=" + expected);
      ChaosReport report;
      Feeder feeder =
          new Feeder(broker, topic, admin, "eos-progress-ops-k", RECORDS + IDLE_RECORDS);
      try (feeder) {
        List<Fault> operations =
            new ArrayList<>(
                List.of(
                    Fault.of(
                        "add-partitions",
                        c -> {
                          c.awaitMidWrite();
                          feeder.addPartitions(7);
                          // The running driver discovers them (or a restarted one finds them)
                          // and stores where they start: the stream reads them from then on.
                          await("the driver to store where the added partitions 5 and 6 start")
                              .atMost(Duration.ofMinutes(3))
                              .pollInterval(Duration.ofMillis(250))
                              .ignoreExceptions()
                              .until(
                                  () -> storedPartitions(db, "ops-t").containsAll(List.of(5, 6)));
                        }),
                    Fault.killDriver(),
                    Fault.rollingDeploy(() -> writerEpoch(db, "ops-t"), Duration.ofMinutes(2))));
        java.util.Collections.shuffle(operations, new java.util.Random(seed));
        List<Fault> first = new ArrayList<>();
        first.add(Fault.killExecutor());
        first.addAll(operations);
        // One of PostgreSQL's faults, drawn from the seed, while the broker's timer runs.
        List<Fault> postgres = postgresFaults(db, pg);
        first.add(postgres.get(new java.util.Random(seed).nextInt(postgres.size())));
        // Last of the operations: it waits for the broker's timer, which the others' time counts
        // towards.
        first.add(
            Fault.of(
                "restart-after-idle-retention",
                c -> {
                  // The idle partition's stored progress must have stood still for longer than
                  // the retention, plus its check interval and a margin: the broker could have
                  // expired it by now, if nothing kept it alive.
                  Duration idle = OFFSETS_RETENTION.plusSeconds(10);
                  await("the idle partition to sit past the broker's offset retention")
                      .atMost(idle.plusMinutes(4))
                      .pollInterval(Duration.ofMillis(500))
                      .until(() -> feeder.idleFor().compareTo(idle) > 0);
                  c.awaitMidWrite();
                  // Written while the driver is down: a restart that took the idle partition for
                  // a new one would skip them (latest) or write its history again (earliest).
                  c.restartDriver(x -> feeder.sendToIdlePartition(IDLE_RECORDS));
                }));
        // More faults (-Dchaos.faults above 3) are drawn from kills and PostgreSQL's.
        List<Fault> kinds = new ArrayList<>(List.of(Fault.killExecutor(), Fault.killDriver()));
        kinds.addAll(postgres);
        try {
          report =
              ChaosRun.builder()
                  .name("operations")
                  .command(command)
                  .seed(seed)
                  .logDirectory(dir)
                  .firstFaults(first.toArray(Fault[]::new))
                  .faultKinds(kinds.toArray(Fault[]::new))
                  .faults(first.size() + FAULTS - 3)
                  .midWrite(() -> midWrite("operations", db, admin), Duration.ofSeconds(5))
                  .afterFaults(() -> feeder.stopAndTellTheJob(expected))
                  .finishWithin(Duration.ofSeconds(FINISH_SECONDS))
                  .build()
                  .run();
        } catch (RuntimeException e) {
          feeder.requireNoFailure(); // the feeder's own failure first: the job waits for it
          throw e;
        }
      }

      // The input as the topic holds it.
      List<String> ids = KafkaOutput.committed(broker, topic).stream().map(r -> r.value()).toList();
      assertThat(ids)
          .as("the input topic, read back (the feeder's producer is not idempotent)")
          .hasSize(feeder.total())
          .doesNotHaveDuplicates();
      List<Oracle.Verdict> verdicts =
          List.of(
              Oracle.records(ids, idsIn(db, "chaos_out")),
              Oracle.records(ids, idsIn(db, "chaos_idem")),
              Oracle.totals(bucketTotals(ids), totalsIn(db)),
              Oracle.records(
                  ids,
                  KafkaOutput.committed(broker, outTopic).stream().map(r -> r.value()).toList()));
      List<String> sinks =
          List.of(
              "JDBC transactional",
              "JDBC idempotent (upserts: shows losses only)",
              "JDBC per-batch totals",
              "Kafka transactional");
      StringBuilder found = new StringBuilder();
      for (int i = 0; i < sinks.size(); i++) {
        found.append("\n  ").append(sinks.get(i)).append(": ").append(verdicts.get(i));
      }
      System.out.printf(
          "ChaosIT operations: records %d, idle partition's progress %s; %s; %s%n",
          feeder.total(), feeder.idleHistory(), report, found);
      report.requireEveryFaultFired();
      assertThat(report.fired())
          .containsKeys("add-partitions", "rolling-deploy", "restart-after-idle-retention");
      assertThat(report.taskFaults()).as("task failures injected in executor JVMs").isNotEmpty();
      assertThat(verdicts)
          .as("every output against the input:" + found)
          .allMatch(Oracle.Verdict::exactlyOnce);
    }
  }

  /** The partitions of {@code pipeline} in {@code eos_offsets}. */
  private static List<Integer> storedPartitions(JdbcTestSupport db, String pipeline)
      throws java.sql.SQLException {
    List<Integer> out = new ArrayList<>();
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT kafka_partition FROM eos_offsets WHERE pipeline_id = '"
                        + pipeline
                        + "'")) {
      while (rs.next()) {
        out.add(rs.getInt(1));
      }
    }
    return out;
  }

  /**
   * Writes records while the run goes on, 2 every 100 ms, round robin over the partitions that are
   * not idle (the added ones too, from the moment they exist), checking every send, until the
   * schedule is through; and watches the idle partition's stored progress in the Kafka sink's
   * progress group.
   */
  private static final class Feeder implements AutoCloseable {
    private final java.util.concurrent.ScheduledExecutorService timer =
        java.util.concurrent.Executors.newScheduledThreadPool(2);
    private final org.apache.kafka.clients.producer.KafkaProducer<String, String> producer;
    private final String topic;
    private final Admin admin;
    private final String progressGroup;
    private volatile List<Integer> partitions = List.of(0, 1, 2, 3);
    // Records sent (before the run and by this feeder); guarded by this.
    private int total;
    private int live;
    private boolean stopped;
    private volatile Throwable failure;

    /** The idle partition's stored offset and since when it stands there (-1: none stored). */
    private record Idle(long offset, long sinceNanos) {}

    private final java.util.concurrent.atomic.AtomicReference<Idle> idle =
        new java.util.concurrent.atomic.AtomicReference<>(new Idle(-1, System.nanoTime()));
    private final List<Long> idleHistory = new java.util.concurrent.CopyOnWriteArrayList<>();

    Feeder(KafkaBroker broker, String topic, Admin admin, String progressGroup, int sentBefore) {
      this.producer = broker.producer();
      this.topic = topic;
      this.admin = admin;
      this.progressGroup = progressGroup;
      this.total = sentBefore;
      timer.scheduleAtFixedRate(this::feed, 0, 100, TimeUnit.MILLISECONDS);
      timer.scheduleAtFixedRate(this::watchIdle, 0, 500, TimeUnit.MILLISECONDS);
    }

    private synchronized void feed() {
      if (stopped || failure != null) {
        return;
      }
      try {
        for (int k = 0; k < 2; k++) {
          List<Integer> to = partitions;
          String id = "l" + live;
          producer.send(new ProducerRecord<>(topic, to.get(live % to.size()), id, id)).get();
          live++;
          total++;
        }
      } catch (Exception e) {
        failure = e;
      }
    }

    /** Writes {@code n} records to the idle partition now, each acknowledged. */
    synchronized void sendToIdlePartition(int n) throws Exception {
      for (int i = 0; i < n; i++) {
        String id = "idle-again" + i;
        producer.send(new ProducerRecord<>(topic, IDLE_PARTITION, id, id)).get();
        total++;
      }
    }

    private void watchIdle() {
      try {
        var om =
            admin
                .listConsumerGroupOffsets(progressGroup)
                .partitionsToOffsetAndMetadata()
                .get(5, TimeUnit.SECONDS)
                .get(new org.apache.kafka.common.TopicPartition(topic, IDLE_PARTITION));
        long offset = om == null ? -1 : om.offset();
        Idle now = idle.get();
        if (offset != now.offset()) {
          idle.set(new Idle(offset, System.nanoTime()));
          idleHistory.add(offset);
        }
      } catch (Exception e) {
        // the broker is busy: look again at the next tick
      }
    }

    /** How long the idle partition's stored progress has stood at all its records. */
    Duration idleFor() {
      Idle now = idle.get();
      return now.offset() == IDLE_RECORDS
          ? Duration.ofNanos(System.nanoTime() - now.sinceNanos())
          : Duration.ZERO;
    }

    /** Every value the idle partition's stored progress took, in order (-1: none stored). */
    List<Long> idleHistory() {
      return List.copyOf(idleHistory);
    }

    /** Adds partitions up to {@code count} and feeds them from now on. */
    void addPartitions(int count) throws Exception {
      admin
          .createPartitions(
              Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(count)))
          .all()
          .get(30, TimeUnit.SECONDS);
      List<Integer> now = new ArrayList<>(partitions);
      for (int p = now.get(now.size() - 1) + 1; p < count; p++) {
        if (p != IDLE_PARTITION) {
          now.add(p);
        }
      }
      partitions = List.copyOf(now);
    }

    /** Stops feeding and writes the number of records the job must find to {@code file}. */
    synchronized void stopAndTellTheJob(Path file) {
      stopped = true;
      requireNoFailure();
      try {
        java.nio.file.Files.writeString(file, Integer.toString(total));
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }

    /** Every record sent, before the run and during it. */
    synchronized int total() {
      return total;
    }

    void requireNoFailure() {
      if (failure != null) {
        throw new IllegalStateException("the feeder failed to write input", failure);
      }
    }

    @Override
    public void close() {
      timer.shutdownNow();
      producer.close(Duration.ofSeconds(10));
    }
  }

  /** The pipeline's writer epoch in {@code eos_writers}: a new driver raises it at its start. */
  private static long writerEpoch(JdbcTestSupport db, String pipeline) {
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT COALESCE(max(writer_epoch), 0) FROM eos_writers WHERE pipeline_id = '"
                        + pipeline
                        + "'")) {
      rs.next();
      return rs.getLong(1);
    } catch (java.sql.SQLException e) {
      throw new IllegalStateException(e); // PostgreSQL is restarting: asked again
    }
  }

  private Outcome run(String mode, long seed) throws Exception {
    KafkaBroker kafka = TestServers.kafka();
    PostgresServer pg = TestServers.postgres();
    String topic = "chaos-" + mode + "-" + System.nanoTime();
    kafka.createTopic(topic, 4);
    List<String> ids = new ArrayList<>();
    List<ProducerRecord<String, String>> input = new ArrayList<>();
    for (int i = 0; i < RECORDS; i++) {
      String id = "r" + i;
      ids.add(id);
      input.add(new ProducerRecord<>(topic, id, id));
    }
    kafka.send(input);
    JdbcTestSupport db = new JdbcTestSupport();
    db.execute(
        "CREATE TABLE chaos_out (id text NOT NULL, src_topic text, src_partition int,"
            + " src_offset bigint, src_index int)");
    if (mode.equals("batch")) {
      db.execute("CREATE TABLE chaos_totals (bucket text PRIMARY KEY, total bigint NOT NULL)");
    }
    if (mode.equals("idempotent")) {
      db.execute(
          "CREATE UNIQUE INDEX ON chaos_out (src_topic, src_partition, src_offset, src_index)");
    }
    String outTopic = topic + "-out";
    if (mode.endsWith("kafka")) {
      kafka.createTopic(outTopic, 3);
    }
    CassandraServer cassandra = mode.endsWith("cassandra") ? TestServers.cassandra() : null;
    String totals = "chaos_ks.totals_" + System.nanoTime();
    if (cassandra != null) {
      cql(
          cassandra,
          "CREATE KEYSPACE IF NOT EXISTS chaos_ks WITH replication ="
              + " {'class': 'SimpleStrategy', 'replication_factor': 1}");
      cql(
          cassandra,
          "CREATE TABLE "
              + totals
              + " (bucket text PRIMARY KEY, total bigint, eos_applied map<text, bigint>)");
    }
    List<String> jobArgs =
        cassandra == null
            ? List.of(
                mode.equals("structured-checkpoint")
                    ? Path.of("target", "chaos", topic + "-checkpoint").toAbsolutePath().toString()
                    : outTopic)
            : List.of(
                cassandra.host() + ":" + cassandra.nativePort(),
                cassandra.localDatacenter(),
                totals);

    ChaosReport report;
    // One admin client for the run's probes (it reconnects after a broker restart).
    try (Admin admin = kafka.admin()) {
      report =
          ChaosRun.builder()
              .name(mode)
              .command(
                  driverCommand(mode, kafka, db, topic, RECORDS, jobArgs, taskFaultsOf(mode, seed)))
              .seed(seed)
              .logDirectory(Path.of("target", "chaos"))
              // Every run starts with an executor kill and a driver kill, before the job can
              // finish; the naive control's with the executor kill only (see firstFaultsOf).
              .firstFaults(firstFaultsOf(mode))
              .faultKinds(faultsOf(mode, db, kafka, pg, cassandra).toArray(Fault[]::new))
              // The control's point is its forced fault; the executor kill is its whole schedule.
              .faults(mode.equals("naive") ? 1 : FAULTS)
              .midWrite(() -> midWrite(mode, db, admin), Duration.ofSeconds(5))
              .finishWithin(Duration.ofSeconds(FINISH_SECONDS))
              .build()
              .run();
    }

    // The oracle: the whole output against the input.
    Oracle.Verdict verdict;
    if (cassandra != null || mode.equals("batch")) {
      Map<String, Long> actual = new HashMap<>();
      if (cassandra != null) {
        for (var row : cql(cassandra, "SELECT bucket, total FROM " + totals)) {
          actual.put(row.getString(0), row.getLong(1));
        }
      } else {
        actual = totalsIn(db);
      }
      verdict = Oracle.totals(bucketTotals(ids), actual);
    } else if (mode.endsWith("kafka")) {
      verdict =
          Oracle.records(
              ids, KafkaOutput.committed(kafka, outTopic).stream().map(r -> r.value()).toList());
    } else {
      verdict = Oracle.records(ids, idsIn(db, "chaos_out"));
    }
    System.out.printf("ChaosIT %s: records %d, %s; %s%n", mode, RECORDS, report, verdict);
    // Every fault the schedule claims must have hit something: a kill a live JVM, a restart a
    // server that went down and came back. The job waits for the schedule (ChaosRun.faultsDone),
    // so a fault left unfired is a failure with its reason, not a shorter run.
    report.requireEveryFaultFired();
    return new Outcome(report, verdict);
  }

  /** Every record's total per bucket ({@link ChaosJob#bucketOf}): the per-batch reference. */
  private static Map<String, Long> bucketTotals(List<String> ids) {
    Map<String, Long> reference = new HashMap<>();
    ids.forEach(id -> reference.merge(ChaosJob.bucketOf(id), 1L, Long::sum));
    return reference;
  }

  /** The whole of {@code chaos_totals}. */
  private static Map<String, Long> totalsIn(JdbcTestSupport db) throws java.sql.SQLException {
    Map<String, Long> actual = new HashMap<>();
    try (var c = db.connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT bucket, total FROM chaos_totals")) {
      while (rs.next()) {
        actual.put(rs.getString(1), rs.getLong(2));
      }
    }
    return actual;
  }

  /** Every id of {@code table}, as often as it occurs. */
  private static List<String> idsIn(JdbcTestSupport db, String table) throws java.sql.SQLException {
    List<String> seen = new ArrayList<>();
    try (var c = db.connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT id FROM " + table)) {
      while (rs.next()) {
        seen.add(rs.getString(1));
      }
    }
    return seen;
  }

  /**
   * Task failures: seeded, at every point of the library's commit protocols; for the naive writer
   * (which has no protocol) the first attempt of each task fails between its write and its offset
   * commit, every time.
   */
  private static TaskFaults taskFaultsOf(String mode, long seed) {
    return mode.equals("naive")
        ? TaskFaults.firstAttemptAt(TaskFaults.Point.BEFORE_COMMIT)
        : TaskFaults.everywhere(TASK_FAULT_RATE, seed);
  }

  /**
   * The faults that open a mode's schedule. The naive control's duplicates come from its forced
   * task failure ({@link #taskFaultsOf}), which fires in every batch that writes rows whatever else
   * happens: a driver kill (a restart of about 30 s) would add nothing it must catch, so its
   * schedule is the executor kill alone.
   */
  private static Fault[] firstFaultsOf(String mode) {
    return mode.equals("naive")
        ? new Fault[] {Fault.killExecutor()}
        : new Fault[] {Fault.killExecutor(), Fault.killDriver()};
  }

  /** The faults that apply to a mode's backend, besides killing executors and the driver. */
  private static List<Fault> faultsOf(
      String mode,
      JdbcTestSupport db,
      KafkaBroker kafka,
      PostgresServer pg,
      CassandraServer cassandra) {
    List<Fault> faults = new ArrayList<>(List.of(Fault.killExecutor(), Fault.killDriver()));
    switch (mode) {
      case "cassandra", "structured-cassandra" ->
          faults.add(
              restart(
                  "restart-cassandra",
                  cassandra::kill,
                  cassandra.nativePort(),
                  cassandra::restart));
      case "kafka", "structured-kafka" ->
          faults.add(
              restart(
                  "restart-kafka",
                  kafka::kill,
                  Outage.portOf(kafka.bootstrapServers()),
                  kafka::restart));
      default -> faults.addAll(postgresFaults(db, pg));
    }
    return faults;
  }

  /** PostgreSQL killed and restarted mid-transaction; the job's connections dropped. */
  private static List<Fault> postgresFaults(JdbcTestSupport db, PostgresServer pg) {
    return List.of(
        // A transaction is open when it fires: the kill must roll it back.
        restart("restart-postgres", pg::kill, pg.port(), pg::restart),
        Fault.of(
            "drop-connections",
            c -> {
              // A driver started a moment ago has no connection yet: wait for one to drop,
              // rather than claim a fault that hit nothing (the job stays up until the
              // schedule is through, so one comes).
              try {
                await("a connection of the job to drop")
                    .atMost(Duration.ofSeconds(90))
                    .pollInterval(Duration.ofMillis(100))
                    .until(
                        () -> {
                          c.awaitMidWrite(); // drops a connection mid-transaction
                          return dropConnections(db) > 0;
                        });
              } catch (ConditionTimeoutException e) {
                throw new Fault.NotFired(
                    "drop-connections: the job opened no connection to PostgreSQL in 90 s");
              }
            }));
  }

  /**
   * A server killed once a write is in flight, kept down for {@link #OUTAGE}, and restarted on the
   * same data. It fired only if the server was seen down (nothing answered on its port for the
   * outage) and then back (its port answers); anything else fails the run, naming the fault.
   */
  private static Fault restart(String name, Runnable kill, int port, Runnable restart) {
    return Fault.of(
        name,
        c -> {
          c.awaitMidWrite();
          kill.run();
          Outage.lasting(OUTAGE, port);
          restart.run();
          if (!Ports.accepts(port)) {
            throw new IllegalStateException(
                name + ": restarted, but nothing answers on port " + port);
          }
        });
  }

  /** Terminates every other backend of the test database; returns how many. */
  private static long dropConnections(JdbcTestSupport db) throws java.sql.SQLException {
    try (var conn = db.connect();
        ResultSet rs =
            conn.createStatement()
                .executeQuery(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                        + " FROM pg_stat_activity WHERE datname = current_database()"
                        + " AND pid <> pg_backend_pid()")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static List<com.datastax.oss.driver.api.core.cql.Row> cql(
      CassandraServer cassandra, String statement) {
    return CassandraTestSupport.cql(cassandra, statement);
  }

  /**
   * Whether a write is in flight, so that a kill lands between writing and committing, where the
   * protocols have something to prove: output rows ahead of the committed offsets for the naive
   * writer, an open transaction on the output table for the JDBC sinks, an ongoing transaction for
   * the Kafka sink. Cassandra has no outside view of a write in flight: the random pauses place the
   * kills.
   */
  private static boolean midWrite(String mode, JdbcTestSupport db, Admin admin) {
    if (mode.endsWith("cassandra")) {
      return true;
    }
    if (mode.endsWith("kafka")) {
      try {
        return admin.listTransactions().all().get(5, TimeUnit.SECONDS).stream()
            .anyMatch(
                t ->
                    t.transactionalId().startsWith("eos-chaos-")
                        && t.state() == org.apache.kafka.clients.admin.TransactionState.ONGOING);
      } catch (Exception e) {
        throw new IllegalStateException(e); // the broker is restarting: the kit probes again
      }
    }
    String probe =
        mode.equals("naive")
            ? "SELECT (SELECT count(*) FROM chaos_out) > (SELECT COALESCE(sum(until_offset), 0)"
                + " FROM naive_offsets)"
            : "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()"
                + " AND state IN ('active', 'idle in transaction') AND query LIKE 'INSERT INTO chaos_%'";
    try (var c = db.connect();
        ResultSet rs = c.createStatement().executeQuery(probe)) {
      return rs.next() && rs.getBoolean(1);
    } catch (Exception e) {
      // naive_offsets may not exist yet, or PostgreSQL is restarting
      throw new IllegalStateException(e);
    }
  }

  private static List<String> driverCommand(
      String mode,
      KafkaBroker kafka,
      JdbcTestSupport db,
      String topic,
      int expected,
      List<String> extra,
      TaskFaults taskFaults) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx768m");
    cmd.addAll(List.of(ChaosJob.FAST_START_OPTIONS.split(" ")));
    cmd.add("-Dchaos.rate=" + Integer.getInteger("chaos.rate", 250));
    cmd.add("-Dchaos.slowMs=" + Integer.getInteger("chaos.slowMs", 4));
    // Task failures at the commit protocol's points, in the executor JVMs.
    cmd.add("-Dchaos.executorOptions=" + taskFaults.javaOptions());
    cmd.addAll(List.of(SparkSetup.JAVA17_OPTIONS.split(" ")));
    cmd.addAll(
        List.of(
            "-cp",
            System.getProperty("java.class.path"),
            ChaosJob.class.getName(),
            mode,
            kafka.bootstrapServers(),
            db.url,
            db.settings.user(),
            topic,
            Integer.toString(expected)));
    cmd.addAll(extra);
    return cmd;
  }
}
