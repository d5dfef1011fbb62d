package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.junit.jupiter.api.Test;

/**
 * Kafka to PostgreSQL under a seeded schedule of faults: executor JVMs and the driver JVM killed
 * with SIGKILL (the driver is started again, as a cluster manager would), PostgreSQL killed and
 * restarted on the same data, connections dropped mid-transaction, speculative task copies. The
 * oracle reads the whole output and compares it with the input. Set -Dchaos.seed=N to replay a
 * schedule.
 */
class ChaosIT {
  // Defaults for the CI run; the soak profile (mvn -Psoak) raises them.
  private static final int RECORDS = Integer.getInteger("chaos.records", 2000);
  private static final int FAULTS = Math.max(2, Integer.getInteger("chaos.faults", 4));
  private static final int FINISH_SECONDS = Integer.getInteger("chaos.finishSeconds", 180);

  enum Fault {
    KILL_EXECUTOR,
    KILL_DRIVER,
    RESTART_POSTGRES,
    DROP_CONNECTIONS,
    RESTART_KAFKA,
    RESTART_CASSANDRA
  }

  /** The faults that apply to a mode's backend. */
  private static List<Fault> faultsOf(String mode) {
    if (mode.equals("cassandra")) {
      return List.of(Fault.KILL_EXECUTOR, Fault.KILL_DRIVER, Fault.RESTART_CASSANDRA);
    }
    return mode.equals("kafka")
        ? List.of(Fault.KILL_EXECUTOR, Fault.KILL_DRIVER, Fault.RESTART_KAFKA)
        : List.of(
            Fault.KILL_EXECUTOR, Fault.KILL_DRIVER, Fault.RESTART_POSTGRES, Fault.DROP_CONNECTIONS);
  }

  record Outcome(
      int duplicates,
      int missing,
      List<String> firstDuplicates,
      List<String> firstMissing,
      Map<Fault, Integer> fired,
      long millis) {}

  private static long seed() {
    return Long.getLong("chaos.seed", System.nanoTime());
  }

  @Test
  void theTransactionalSinkWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("transactional", seed());
    assertThat(o.fired().values().stream().mapToInt(Integer::intValue).sum())
        .isGreaterThanOrEqualTo(3);
    assertThat(o.duplicates()).as("duplicates, first " + o.firstDuplicates()).isZero();
    assertThat(o.missing()).as("missing, first " + o.firstMissing()).isZero();
  }

  @Test
  void theIdempotentSinkWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("idempotent", seed());
    assertThat(o.fired()).containsKey(Fault.KILL_DRIVER);
    assertThat(o.duplicates()).as("duplicates, first " + o.firstDuplicates()).isZero();
    assertThat(o.missing()).as("missing, first " + o.firstMissing()).isZero();
  }

  @Test
  void theTransactionalKafkaSinkWritesEveryRecordOnceUnderFaults() throws Exception {
    Outcome o = run("kafka", seed());
    assertThat(o.fired()).containsKey(Fault.KILL_DRIVER);
    assertThat(o.duplicates()).as("duplicates, first " + o.firstDuplicates()).isZero();
    assertThat(o.missing()).as("missing, first " + o.firstMissing()).isZero();
  }

  /**
   * Running totals in Cassandra: an aggregate, so the oracle compares every bucket's total with a
   * reference computed from the input (a replay would inflate one, a loss deflate it).
   */
  @Test
  void cassandraRunningTotalsEqualTheReferenceUnderFaults() throws Exception {
    Outcome o = run("cassandra", seed());
    assertThat(o.fired()).containsKey(Fault.KILL_DRIVER);
    assertThat(o.duplicates()).as("over-counted, first " + o.firstDuplicates()).isZero();
    assertThat(o.missing()).as("under-counted, first " + o.firstMissing()).isZero();
  }

  /** Per-batch totals (an aggregate after a shuffle) in PostgreSQL, against a reference. */
  @Test
  void perBatchTotalsInPostgresEqualTheReferenceUnderFaults() throws Exception {
    Outcome o = run("batch", seed());
    assertThat(o.fired()).containsKey(Fault.KILL_DRIVER);
    assertThat(o.duplicates()).as("over-counted, first " + o.firstDuplicates()).isZero();
    assertThat(o.missing()).as("under-counted, first " + o.firstMissing()).isZero();
  }

  /** Negative control: the oracle must catch the hand-written at-least-once recipe. */
  @Test
  void theOracleReportsDuplicatesOfANaiveWriterUnderTheSameFaults() throws Exception {
    Outcome o = run("naive", seed());
    assertThat(o.fired()).containsKey(Fault.KILL_DRIVER);
    assertThat(o.missing()).as("missing, first " + o.firstMissing()).isZero();
    assertThat(o.duplicates()).as("the naive writer's duplicates").isPositive();
  }

  private Outcome run(String mode, long seed) throws Exception {
    long started = System.currentTimeMillis();
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

    // The schedule: faults and the pauses before them, drawn from the seed.
    Random random = new Random(seed);
    List<Fault> schedule = new ArrayList<>();
    List<Integer> pauses = new ArrayList<>();
    List<Fault> faults = faultsOf(mode);
    for (int i = 0; i < FAULTS - 2; i++) {
      schedule.add(faults.get(random.nextInt(faults.size())));
    }
    // Every run starts with an executor kill and a driver kill, before the job can finish.
    schedule.add(0, Fault.KILL_EXECUTOR);
    schedule.add(1, Fault.KILL_DRIVER);
    for (int i = 0; i < schedule.size(); i++) {
      pauses.add(1500 + random.nextInt(1500));
    }
    System.out.printf(
        "ChaosIT %s: seed %d, schedule %s, pauses %s%n", mode, seed, schedule, pauses);

    Map<Fault, Integer> fired = new EnumMap<>(Fault.class);
    Path logDir = Files.createDirectories(Path.of("target", "chaos"));
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
    Process driver = startDriver(mode, kafka, db, topic, jobArgs, logDir);
    int restarts = 0;
    for (int i = 0; i < schedule.size(); i++) {
      Thread.sleep(pauses.get(i));
      if (!driver.isAlive()) {
        if (driver.exitValue() == 0) {
          break; // done before the schedule ran out
        }
        // Stopped by a failed batch: started again, and the scheduled fault still fires.
        driver = startDriver(mode, kafka, db, topic, jobArgs, logDir);
        restarts++;
      }
      Fault f = schedule.get(i);
      switch (f) {
        case KILL_DRIVER -> {
          awaitMidWrite(mode, db, kafka);
          driver.destroyForcibly().waitFor();
          driver = startDriver(mode, kafka, db, topic, jobArgs, logDir);
          restarts++;
        }
        case KILL_EXECUTOR -> {
          awaitMidWrite(mode, db, kafka);
          List<Long> executors = executorsOf(driver);
          if (executors.isEmpty()) {
            continue;
          }
          ProcessHandle.of(executors.get(random.nextInt(executors.size())))
              .ifPresent(ProcessHandle::destroyForcibly);
        }
        case RESTART_POSTGRES -> {
          pg.kill();
          Thread.sleep(500);
          pg.restart();
        }
        case RESTART_CASSANDRA -> {
          cassandra.kill();
          Thread.sleep(500);
          cassandra.restart();
        }
        case RESTART_KAFKA -> {
          awaitMidWrite(mode, db, kafka);
          kafka.kill();
          Thread.sleep(500);
          kafka.restart();
        }
        case DROP_CONNECTIONS ->
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    + " WHERE datname = current_database() AND pid <> pg_backend_pid()");
      }
      fired.merge(f, 1, Integer::sum);
    }
    // Faults over: let the job finish, starting it again whenever it stopped.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(FINISH_SECONDS);
    while (true) {
      if (!driver.waitFor(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
        driver.destroyForcibly();
        throw new AssertionError("the " + mode + " job did not finish; logs in " + logDir);
      }
      if (driver.exitValue() == 0) {
        break;
      }
      driver = startDriver(mode, kafka, db, topic, jobArgs, logDir);
      restarts++;
    }

    // The oracle: the whole output against the input.
    Map<String, Integer> seen = new HashMap<>();
    if (cassandra != null) {
      // Aggregates: each bucket's total against the reference from the input.
      Map<String, Long> reference = new HashMap<>();
      ids.forEach(id -> reference.merge(ChaosJob.bucketOf(id), 1L, Long::sum));
      Map<String, Long> actual = new HashMap<>();
      for (var row : cql(cassandra, "SELECT bucket, total FROM " + totals)) {
        actual.put(row.getString(0), row.getLong(1));
      }
      return aggregateOutcome(mode, seed, reference, actual, fired, restarts, started);
    }
    if (mode.equals("batch")) {
      Map<String, Long> reference = new HashMap<>();
      ids.forEach(id -> reference.merge(ChaosJob.bucketOf(id), 1L, Long::sum));
      Map<String, Long> actual = new HashMap<>();
      try (var c = db.connect();
          ResultSet rs =
              c.createStatement().executeQuery("SELECT bucket, total FROM chaos_totals")) {
        while (rs.next()) {
          actual.put(rs.getString(1), rs.getLong(2));
        }
      }
      return aggregateOutcome(mode, seed, reference, actual, fired, restarts, started);
    }
    if (mode.equals("kafka")) {
      KafkaOutput.committed(kafka, outTopic).forEach(r -> seen.merge(r.value(), 1, Integer::sum));
    } else {
      try (var c = db.connect();
          ResultSet rs = c.createStatement().executeQuery("SELECT id FROM chaos_out")) {
        while (rs.next()) {
          seen.merge(rs.getString(1), 1, Integer::sum);
        }
      }
    }
    List<String> dups =
        seen.entrySet().stream()
            .filter(e -> e.getValue() > 1)
            .map(Map.Entry::getKey)
            .sorted()
            .toList();
    List<String> missing = ids.stream().filter(id -> !seen.containsKey(id)).toList();
    java.util.Set<String> known = new java.util.HashSet<>(ids);
    int extra = (int) seen.keySet().stream().filter(id -> !known.contains(id)).count();
    int duplicates = seen.values().stream().mapToInt(n -> n - 1).sum() + extra;
    Outcome o =
        new Outcome(
            duplicates,
            missing.size(),
            dups.stream().limit(5).toList(),
            missing.stream().limit(5).toList(),
            fired,
            System.currentTimeMillis() - started);
    System.out.printf(
        "ChaosIT %s: seed %d, records %d, faults fired %s, driver restarts %d, duplicates %d, missing %d,"
            + " wall %d ms%n",
        mode, seed, RECORDS, fired, restarts, duplicates, missing.size(), o.millis());
    return o;
  }

  private static Outcome aggregateOutcome(
      String mode,
      long seed,
      Map<String, Long> reference,
      Map<String, Long> actual,
      Map<Fault, Integer> fired,
      int restarts,
      long started) {
    List<String> over = new ArrayList<>();
    List<String> under = new ArrayList<>();
    long overBy = 0;
    long underBy = 0;
    for (String bucket : reference.keySet()) {
      long diff = actual.getOrDefault(bucket, 0L) - reference.get(bucket);
      if (diff > 0) {
        over.add(bucket + " +" + diff);
        overBy += diff;
      } else if (diff < 0) {
        under.add(bucket + " " + diff);
        underBy -= diff;
      }
    }
    for (String bucket : actual.keySet()) {
      if (!reference.containsKey(bucket)) {
        over.add(bucket + " (not in the input)");
        overBy += actual.get(bucket);
      }
    }
    Outcome o =
        new Outcome(
            (int) overBy,
            (int) underBy,
            over.stream().limit(5).toList(),
            under.stream().limit(5).toList(),
            fired,
            System.currentTimeMillis() - started);
    System.out.printf(
        "ChaosIT %s: seed %d, records %d, buckets %d, faults fired %s, driver restarts %d,"
            + " over-counted %d, under-counted %d, wall %d ms%n",
        mode, seed, RECORDS, reference.size(), fired, restarts, overBy, underBy, o.millis());
    return o;
  }

  private static List<com.datastax.oss.driver.api.core.cql.Row> cql(
      CassandraServer cassandra, String statement) {
    try (var s =
        com.datastax.oss.driver.api.core.CqlSession.builder()
            .addContactPoint(
                new java.net.InetSocketAddress(cassandra.host(), cassandra.nativePort()))
            .withLocalDatacenter(cassandra.localDatacenter())
            .build()) {
      return s.execute(statement).all();
    }
  }

  /**
   * Waits (up to 5 s) until a write is in flight, so that a kill lands between writing and
   * committing, where the protocols have something to prove: output rows ahead of the committed
   * offsets for the naive writer, an open transaction on the output table for the sinks.
   */
  private static void awaitMidWrite(String mode, JdbcTestSupport db, KafkaBroker kafka)
      throws InterruptedException {
    if (mode.equals("kafka")) {
      awaitOpenTransaction(kafka);
      return;
    }
    if (mode.equals("cassandra")) {
      return; // no outside view of a write in flight: the random pauses place the kills
    }
    String probe =
        mode.equals("naive")
            ? "SELECT (SELECT count(*) FROM chaos_out) > (SELECT COALESCE(sum(until_offset), 0)"
                + " FROM naive_offsets)"
            : "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database()"
                + " AND state IN ('active', 'idle in transaction') AND query LIKE 'INSERT INTO chaos_%'";
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (System.nanoTime() < deadline) {
      try (var c = db.connect();
          ResultSet rs = c.createStatement().executeQuery(probe)) {
        if (rs.next() && rs.getBoolean(1)) {
          return;
        }
      } catch (Exception e) {
        // naive_offsets may not exist yet, or PostgreSQL is restarting
      }
      Thread.sleep(10);
    }
  }

  /** Waits (up to 5 s) until one of the sink's Kafka transactions is open. */
  private static void awaitOpenTransaction(KafkaBroker kafka) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    try (var admin = kafka.admin()) {
      while (System.nanoTime() < deadline) {
        try {
          boolean open =
              admin.listTransactions().all().get(5, TimeUnit.SECONDS).stream()
                  .anyMatch(
                      t ->
                          t.transactionalId().startsWith("eos-chaos-")
                              && t.state()
                                  == org.apache.kafka.clients.admin.TransactionState.ONGOING);
          if (open) {
            return;
          }
        } catch (Exception e) {
          // the broker is restarting
        }
        Thread.sleep(10);
      }
    }
  }

  private static Process startDriver(
      String mode,
      KafkaBroker kafka,
      JdbcTestSupport db,
      String topic,
      List<String> extra,
      Path logDir)
      throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx768m");
    cmd.add("-Dchaos.rate=" + Integer.getInteger("chaos.rate", 250));
    cmd.add("-Dchaos.slowMs=" + Integer.getInteger("chaos.slowMs", 4));
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
    Path log = logDir.resolve(mode + "-driver-" + System.nanoTime() + ".log");
    return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
  }

  /** The executor JVMs of {@code driver} (its local-cluster worker's children). */
  private static List<Long> executorsOf(Process driver) {
    return driver
        .descendants()
        .filter(p -> cmdline(p.pid()).contains("CoarseGrainedExecutorBackend"))
        .map(ProcessHandle::pid)
        .toList();
  }

  private static String cmdline(long pid) {
    try {
      return new String(
          Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")),
          StandardCharsets.UTF_8);
    } catch (Exception e) {
      return "";
    }
  }
}
