package org.exactlyonce.spark.tests.chaos;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.junit.jupiter.api.Test;

/**
 * A 1,000,000-row aggregated batch through the staging path, with the driver (and, in local mode,
 * its executors) in a JVM of 512 MiB heap: the results never pass through the driver.
 */
class LargeStagedBatchIT {
  private static final int ROWS = 1_000_000;

  @Test
  void aMillionRowAggregateGoesThroughStagingInA512MibDriver() throws Exception {
    KafkaBroker kafka = TestServers.kafka();
    String topic = "large-" + System.nanoTime();
    kafka.createTopic(topic, 4);
    List<ProducerRecord<String, String>> records = new ArrayList<>(ROWS);
    for (int i = 0; i < ROWS; i++) {
      records.add(new ProducerRecord<>(topic, "key-" + i, ""));
    }
    kafka.send(records);
    records = null;

    JdbcTestSupport db = new JdbcTestSupport();
    db.execute("CREATE TABLE per_key (k text PRIMARY KEY, n bigint NOT NULL)");

    Path log = Files.createTempFile(Path.of("target"), "large-staged-batch", ".log");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx512m");
    cmd.addAll(List.of(SparkSetup.JAVA17_OPTIONS.split(" ")));
    cmd.addAll(
        List.of(
            "-cp",
            System.getProperty("java.class.path"),
            LargeStagedBatchJob.class.getName(),
            kafka.bootstrapServers(),
            db.url,
            db.settings.user(),
            topic,
            Integer.toString(ROWS)));
    Process driver =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    boolean finished = driver.waitFor(6, TimeUnit.MINUTES);
    if (!finished) {
      driver.destroyForcibly();
    }
    String output = Files.readString(log);
    System.out.println(output.lines().filter(l -> l.contains("LargeStagedBatchJob")).toList());
    assertThat(finished).as("driver finished; log " + log).isTrue();
    assertThat(driver.exitValue()).as("driver exit code; log:\n" + output).isZero();
    assertThat(output).doesNotContain("OutOfMemoryError");

    try (var c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT count(*), sum(n), max(n) FROM per_key WHERE k LIKE 'key-%'")) {
      rs.next();
      assertThat(rs.getLong(1)).isEqualTo(ROWS);
      assertThat(rs.getLong(2)).isEqualTo(ROWS);
      assertThat(rs.getLong(3)).isEqualTo(1);
    }
    assertThat(db.count("per_key_eos_staging")).isZero();
  }
}
