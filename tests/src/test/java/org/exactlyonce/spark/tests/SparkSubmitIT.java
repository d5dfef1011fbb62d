package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.chaos.Oracle;
import org.exactlyonce.spark.examples.AdEvent;
import org.exactlyonce.spark.examples.AdEventsPipeline;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.StandaloneCluster;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.Test;

/**
 * The example submitted the way a user submits a job: {@code SparkSubmit --master spark://...
 * --deploy-mode client --jars exactly-once-sinks-assembly_2.12-<version>.jar
 * examples-<version>-cluster.jar} in a JVM of its own, to a standalone cluster (a Master and two
 * Workers as separate JVMs, {@link StandaloneCluster}). The job jar holds the example's code and
 * its command-line parser only, as a user's job jar would; the library's assembly brings the sinks,
 * their drivers, kafka-clients and Spark's Kafka direct stream. The driver's class path holds Spark
 * and its dependencies only, and the executors fetch both jars from the driver as on any cluster.
 *
 * <p>Mid-run, while a sink's PostgreSQL transaction is open, one executor JVM (a {@code
 * CoarseGrainedExecutorBackend} child of a Worker) is killed with SIGKILL; Spark reruns its tasks
 * on the other executor and the Master starts a replacement. The job runs until every output
 * committed the whole input; the test then reads both outputs whole (PostgreSQL clicks,
 * transactional; Kafka attributed conversions, transactional) and compares them with the input with
 * the chaos kit's {@link Oracle}.
 */
class SparkSubmitIT {
  private static final int RECORDS = 20_000;
  private static final int PARTITIONS = 4;

  /** The jar bin/run-example's README section submits; tests/pom.xml passes its path. */
  private static Path clusterJar() {
    String jar = System.getProperty("examples.clusterJar");
    assertThat(jar).as("system property examples.clusterJar (set by tests/pom.xml)").isNotNull();
    assertThat(Path.of(jar))
        .as("the example's cluster jar: build with mvn verify -Pcluster -pl tests -am")
        .isRegularFile();
    return Path.of(jar);
  }

  /** The library's assembly for spark-submit; tests/pom.xml passes its path. */
  private static Path assemblyJar() {
    String jar = System.getProperty("sinks.assemblyJar");
    assertThat(jar).as("system property sinks.assemblyJar (set by tests/pom.xml)").isNotNull();
    assertThat(Path.of(jar))
        .as("the library's assembly: build with mvn verify -Pcluster -pl tests -am")
        .isRegularFile();
    return Path.of(jar);
  }

  /**
   * What the two submitted jars bundle, as path fragments of the Maven repository (the artifact
   * sets of the shade plugins of assembly/pom.xml and examples/pom.xml), and this build's own
   * modules: left off the driver's and the executors' class path, so that the job finds them in the
   * submitted jar or not at all.
   */
  private static final List<String> IN_THE_JAR =
      List.of(
          "/target/",
          "/org/exactlyonce/",
          "/info/picocli/",
          "/org/jdbi/",
          "/io/leangen/",
          "/org/antlr/antlr4-runtime/",
          "/org/postgresql/",
          "/com/zaxxer/",
          "/org/apache/cassandra/",
          "/com/datastax/",
          "/com/github/jnr/",
          "/org/hdrhistogram/",
          "/org/reactivestreams/",
          "/com/typesafe/",
          "/org/apache/kafka/",
          "/spark-streaming-kafka-0-10_",
          "/spark-token-provider-kafka-0-10_",
          "/io/zonky/");

  /** Spark and its dependencies: this JVM's class path without what the cluster jar carries. */
  private static String sparkClassPath() {
    return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
        .filter(e -> e.endsWith(".jar"))
        .filter(e -> IN_THE_JAR.stream().noneMatch(e::contains))
        .collect(Collectors.joining(File.pathSeparator));
  }

  @Test
  void theAssemblyHoldsNoLoggingConfigurationAndRelocatesTheLibrariesThatClash() throws Exception {
    List<String> entries;
    try (java.util.zip.ZipFile zip = new java.util.zip.ZipFile(assemblyJar().toFile())) {
      entries = zip.stream().map(java.util.zip.ZipEntry::getName).toList();
    }
    assertThat(entries)
        .as("the assembly's entries")
        .contains(
            "org/exactlyonce/spark/ExactlyOnce.class",
            "org/exactlyonce/spark/jdbc/JdbcSink.class",
            "org/exactlyonce/spark/structured/ExactlyOnceForeachBatch.class",
            "org/postgresql/Driver.class",
            "org/apache/kafka/clients/producer/KafkaProducer.class",
            "org/apache/spark/streaming/kafka010/KafkaUtils.class")
        .noneMatch(e -> e.matches("(.*/)?(log4j2?\\.(properties|xml)|logback(-test)?\\.xml)"))
        .noneMatch(e -> e.startsWith("org/antlr/") || e.startsWith("com/typesafe/config/"))
        .anyMatch(e -> e.startsWith("org/exactlyonce/spark/shaded/typesafe/config/"))
        .noneMatch(e -> e.startsWith("scala/") || e.startsWith("io/netty/"));
    // Of Spark, only the Kafka direct stream and its token provider, which distributions lack.
    assertThat(entries)
        .filteredOn(e -> e.startsWith("org/apache/spark/") && e.endsWith(".class"))
        .as("Spark classes in the assembly")
        .allMatch(
            e ->
                e.startsWith("org/apache/spark/streaming/kafka010/")
                    || e.startsWith("org/apache/spark/kafka010/"));
  }

  @Test
  void theSubmittedExampleWritesEveryRecordOnceAfterAnExecutorIsKilled() throws Exception {
    long started = System.nanoTime();
    Path jar = clusterJar();
    Path assembly = assemblyJar();
    KafkaBroker kafka = TestServers.kafka();
    JdbcTestSupport db = new JdbcTestSupport();
    String topic = "submit-" + System.nanoTime();
    Path logs = TestServers.newDir("spark-submit", false);
    try (StandaloneCluster cluster = StandaloneCluster.start(2)) {
      long clusterUp = System.nanoTime();
      String sparkClassPath = sparkClassPath();
      List<String> command = new ArrayList<>();
      command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
      command.add("-Xmx768m");
      command.addAll(List.of(SparkSetup.JAVA17_OPTIONS.split(" ")));
      command.addAll(
          List.of(
              "-cp",
              sparkClassPath,
              "org.apache.spark.deploy.SparkSubmit",
              "--master",
              cluster.masterUrl(),
              "--deploy-mode",
              "client",
              "--class",
              AdEventsPipeline.class.getName(),
              "--conf",
              "spark.driver.bindAddress=127.0.0.1",
              "--conf",
              "spark.executor.cores=1",
              "--conf",
              "spark.cores.max=2",
              "--conf",
              "spark.executor.memory=512m",
              // What a Spark distribution's jars/ folder gives executors, and Java 17's opens.
              "--conf",
              "spark.executor.extraClassPath=" + sparkClassPath,
              "--conf",
              "spark.executor.extraJavaOptions=" + SparkSetup.JAVA17_OPTIONS,
              "--conf",
              "spark.task.maxFailures=4",
              // About 20 one-second batches, so that the kill lands mid-run.
              "--conf",
              "spark.streaming.kafka.maxRatePerPartition=" + RECORDS / PARTITIONS / 20,
              "--jars",
              assembly.toString(),
              jar.toString(),
              "--records",
              Integer.toString(RECORDS),
              "--partitions",
              Integer.toString(PARTITIONS),
              "--topic",
              topic,
              "--outputs",
              "clicks,kafka",
              "--bootstrap-servers",
              kafka.bootstrapServers(),
              "--jdbc-url",
              db.url,
              "--jdbc-user",
              db.settings.toProperties().getProperty("user")));
      Path driverLog = logs.resolve("driver.log");
      ProcessBuilder pb =
          new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(driverLog.toFile());
      pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
      pb.environment().put("SPARK_HOME", System.getenv("SPARK_HOME"));
      Process driver = pb.start();
      try {
        await("a click transaction open in PostgreSQL, mid-run (driver log " + driverLog + ")")
            .atMost(Duration.ofMinutes(3))
            .pollInterval(Duration.ofMillis(20))
            .ignoreExceptions()
            .until(
                () -> !driver.isAlive() || (openTransactions(db) > 0 && committedClicks(db) > 0));
        assertThat(driver.isAlive())
            .as("driver running; its log:\n" + tail(Files.readString(driverLog)))
            .isTrue();
        List<Long> executors = SparkSetup.executorPids();
        assertThat(executors).as("executor JVMs of the workers").hasSize(2);
        long killed = executors.get(0);
        long clicksAtKill = committedClicks(db);
        ProcessHandle.of(killed).ifPresent(ProcessHandle::destroyForcibly);
        long killedAt = System.nanoTime();

        assertThat(driver.waitFor(5, TimeUnit.MINUTES))
            .as("the driver finished within 5 minutes (log " + driverLog + ")")
            .isTrue();
        String out = Files.readString(driverLog, StandardCharsets.UTF_8);
        assertThat(driver.exitValue()).as("driver exit code; its log:\n" + tail(out)).isZero();
        // Spark's own account of the kill: the executor was lost and its tasks rerun.
        assertThat(out).as("the driver log").contains("Lost executor").contains("-> EXACTLY ONCE");

        Map<TopicPartition, Long> end = StreamHarness.endOffsets(kafka, topic, PARTITIONS);
        assertThat(db.stored("ads-clicks")).as("stored offsets of the clicks").isEqualTo(end);

        List<String> clickIds = new ArrayList<>();
        List<String> conversionIds = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) {
          try {
            AdEvent e = AdEvent.parse(AdEvent.generate(i));
            (e.isClick() ? clickIds : conversionIds).add(e.id());
          } catch (IllegalArgumentException junk) {
            // The dead letters: in neither output.
          }
        }
        List<String> clicks = clickRows(db);
        List<String> conversions =
            KafkaOutput.committed(kafka, topic + "-attributed-conversions").stream()
                .map(r -> r.value().split(",")[0])
                .toList();
        System.out.printf(
            "SparkSubmitIT: %s; cluster up in %,d ms; executor pid %d killed with %,d clicks"
                + " committed; finished %,d ms after the kill; clicks %s; conversions %s;"
                + " %,d ms in all%n",
            cluster,
            (clusterUp - started) / 1_000_000,
            killed,
            clicksAtKill,
            (System.nanoTime() - killedAt) / 1_000_000,
            Oracle.records(clickIds, clicks),
            Oracle.records(conversionIds, conversions),
            (System.nanoTime() - started) / 1_000_000);
        assertThat(clicksAtKill)
            .as("clicks committed when the executor died")
            .isLessThan(clickIds.size());
        Oracle.records(clickIds, clicks).orThrow();
        Oracle.records(conversionIds, conversions).orThrow();
      } finally {
        driver.destroyForcibly();
      }
    }
  }

  /** Transactions open in the test's database, other than this query's own. */
  private static long openTransactions(JdbcTestSupport db) throws SQLException {
    return query(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            + " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            + " AND xact_start IS NOT NULL");
  }

  private static long committedClicks(JdbcTestSupport db) throws SQLException {
    return query(db, "SELECT count(*) FROM clicks");
  }

  private static long query(JdbcTestSupport db, String sql) throws SQLException {
    try (Connection c = db.connect();
        ResultSet rs = c.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private static List<String> clickRows(JdbcTestSupport db) throws SQLException {
    List<String> ids = new ArrayList<>();
    try (Connection c = db.connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT click_id FROM clicks")) {
      while (rs.next()) {
        ids.add(rs.getString(1));
      }
    }
    return ids;
  }

  private static String tail(String log) {
    return log.length() > 8000 ? log.substring(log.length() - 8000) : log;
  }
}
