package org.exactlyonce.spark.tests;

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

  @Test
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
   * Negative control: the oracle must catch the hand-written at-least-once recipe. Besides the
   * schedule, the first attempt of every task that wrote rows fails between its write and the
   * offset commit ({@link TaskFaults#firstAttemptAt}), the fault that makes a naive writer
   * duplicate; each such failure leaves at least one row written twice, so the control does not
   * depend on where the random kills land, and a run in which the fault never fired fails.
   */
  @Test
  void theOracleReportsDuplicatesOfANaiveWriterUnderTheSameFaults() throws Exception {
    Outcome o = run("naive", seed());
    assertThat(o.report().fired()).containsKey("kill-driver");
    int forced = o.report().taskFaults().getOrDefault(TaskFaults.Point.BEFORE_COMMIT, 0);
    assertThat(forced)
        .as("task failures forced between the naive writer's rows and its offsets; " + o.report())
        .isPositive();
    assertThat(o.verdict().missing()).as(o.verdict().toString()).isZero();
    assertThat(o.verdict().duplicates())
        .as("the naive writer's duplicates, at least one per forced failure; " + o.verdict())
        .isGreaterThanOrEqualTo(forced);
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
    if (mode.equals("kafka")) {
      kafka.createTopic(outTopic, 3);
    }
    CassandraServer cassandra = mode.equals("cassandra") ? TestServers.cassandra() : null;
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
            ? List.of(outTopic)
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
              .command(driverCommand(mode, kafka, db, topic, jobArgs, taskFaultsOf(mode, seed)))
              .seed(seed)
              .logDirectory(Path.of("target", "chaos"))
              // Every run starts with an executor kill and a driver kill, before the job can
              // finish.
              .firstFaults(Fault.killExecutor(), Fault.killDriver())
              .faultKinds(faultsOf(mode, db, kafka, pg, cassandra).toArray(Fault[]::new))
              // The control's point is its forced fault; the two first kills are its schedule.
              .faults(mode.equals("naive") ? 2 : FAULTS)
              .midWrite(() -> midWrite(mode, db, admin), Duration.ofSeconds(5))
              .finishWithin(Duration.ofSeconds(FINISH_SECONDS))
              .build()
              .run();
    }

    // The oracle: the whole output against the input.
    Oracle.Verdict verdict;
    if (cassandra != null || mode.equals("batch")) {
      Map<String, Long> reference = new HashMap<>();
      ids.forEach(id -> reference.merge(ChaosJob.bucketOf(id), 1L, Long::sum));
      Map<String, Long> actual = new HashMap<>();
      if (cassandra != null) {
        for (var row : cql(cassandra, "SELECT bucket, total FROM " + totals)) {
          actual.put(row.getString(0), row.getLong(1));
        }
      } else {
        try (var c = db.connect();
            ResultSet rs =
                c.createStatement().executeQuery("SELECT bucket, total FROM chaos_totals")) {
          while (rs.next()) {
            actual.put(rs.getString(1), rs.getLong(2));
          }
        }
      }
      verdict = Oracle.totals(reference, actual);
    } else if (mode.equals("kafka")) {
      verdict =
          Oracle.records(
              ids, KafkaOutput.committed(kafka, outTopic).stream().map(r -> r.value()).toList());
    } else {
      List<String> seen = new ArrayList<>();
      try (var c = db.connect();
          ResultSet rs = c.createStatement().executeQuery("SELECT id FROM chaos_out")) {
        while (rs.next()) {
          seen.add(rs.getString(1));
        }
      }
      verdict = Oracle.records(ids, seen);
    }
    System.out.printf("ChaosIT %s: records %d, %s; %s%n", mode, RECORDS, report, verdict);
    // Every fault the schedule claims must have hit something: a kill a live JVM, a restart a
    // server that went down and came back. The job waits for the schedule (ChaosRun.faultsDone),
    // so a fault left unfired is a failure with its reason, not a shorter run.
    report.requireEveryFaultFired();
    return new Outcome(report, verdict);
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

  /** The faults that apply to a mode's backend, besides killing executors and the driver. */
  private static List<Fault> faultsOf(
      String mode,
      JdbcTestSupport db,
      KafkaBroker kafka,
      PostgresServer pg,
      CassandraServer cassandra) {
    List<Fault> faults = new ArrayList<>(List.of(Fault.killExecutor(), Fault.killDriver()));
    switch (mode) {
      case "cassandra" ->
          faults.add(
              restart(
                  "restart-cassandra",
                  cassandra::kill,
                  cassandra.nativePort(),
                  cassandra::restart));
      case "kafka" ->
          faults.add(
              restart(
                  "restart-kafka",
                  kafka::kill,
                  Outage.portOf(kafka.bootstrapServers()),
                  kafka::restart));
      default -> {
        // A transaction is open when it fires: the kill must roll it back.
        faults.add(restart("restart-postgres", pg::kill, pg.port(), pg::restart));
        faults.add(
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
    }
    return faults;
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
    if (mode.equals("cassandra")) {
      return true;
    }
    if (mode.equals("kafka")) {
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
      List<String> extra,
      TaskFaults taskFaults) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx768m");
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
            Integer.toString(RECORDS)));
    cmd.addAll(extra);
    return cmd;
  }
}
