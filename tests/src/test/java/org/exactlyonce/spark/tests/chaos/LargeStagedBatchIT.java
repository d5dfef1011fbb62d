package org.exactlyonce.spark.tests.chaos;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A batch whose results are larger than the driver's whole heap: through the staging path it is
 * written in one batch by a driver (and, in local mode, its executors) whose heap is smaller than
 * the results, so they never passed through it; the same job and data through the collected path,
 * in the same heap, runs the driver out of memory, because there the driver merges the whole batch
 * per key (upsertOn) before writing it.
 *
 * <p>The numbers: 1,000,000 distinct keys ({@code key-0} .. {@code key-999999}, 10 bytes on
 * average) each give one result row of key, count (8 bytes) and a 200-byte value column: 217 MB of
 * column data (measured from the table). On the JVM a merged row costs about 400 bytes (the row
 * array, two strings with their byte arrays, a boxed Long, a tree map entry), so the collected path
 * needs about 400 MB of live heap for the batch. The driver gets {@value #DRIVER_HEAP_MIB} MiB (134
 * MB with both survivor spaces, 130 MB usable): well under the results' bytes, so they cannot have
 * been held there, and about a third of what the collected path needs, so the control fails by a
 * factor of several, not by a margin. The staged path needs on the executors only the shuffle of
 * the short keys (16 partitions, two tasks at a time, spilled under Spark's memory limit) and one
 * JDBC batch of 5,000 rows (about 1 MB) per task: it also passed with 96 MiB, so 128 MiB leaves it
 * a third more than it needs.
 *
 * <p>Measured (2 cores): staged in 128 MiB, peak heap (all pools' peaks) 125-128 MB and at most 84
 * MB live after a full collection; collected, given 1536 MiB to let it finish, 773 MB and 400 MB.
 */
class LargeStagedBatchIT {
  private static final int ROWS = 1_000_000;
  private static final int VALUE_BYTES = 200;
  private static final int DRIVER_HEAP_MIB = 128;

  /** The exit code of a JVM that {@code -XX:+ExitOnOutOfMemoryError} stopped. */
  private static final int EXIT_ON_OUT_OF_MEMORY = 3;

  private static KafkaBroker kafka;
  private static String topic;

  @BeforeAll
  static void oneMillionDistinctKeys() {
    kafka = TestServers.kafka();
    topic = "large-" + System.nanoTime();
    kafka.createTopic(topic, 4);
    List<ProducerRecord<String, String>> records = new ArrayList<>(ROWS);
    for (int i = 0; i < ROWS; i++) {
      records.add(new ProducerRecord<>(topic, "key-" + i, ""));
    }
    kafka.send(records);
  }

  @Test
  void stagedResultsLargerThanTheDriverHeapAreWrittenInOneBatchWithoutPassingThroughIt()
      throws Exception {
    JdbcTestSupport db = new JdbcTestSupport();
    db.execute("CREATE TABLE per_key_staged (k text PRIMARY KEY, n bigint NOT NULL, v text)");

    Run run = runJob(db, "staged");
    assertThat(run.exitCode).as("staged driver exit code; log:\n" + run.output).isZero();
    Properties result = new Properties();
    result.load(new StringReader(Files.readString(run.resultFile)));
    System.out.println("LargeStagedBatchIT staged result: " + result);

    assertThat(result.getProperty("batches")).as("batches that read records").isEqualTo("1");
    assertThat(result.getProperty("records")).as("records of that batch").isEqualTo("" + ROWS);
    assertThat(result.getProperty("rowsWritten")).isEqualTo("" + ROWS);
    assertThat(result.getProperty("firstRowThread"))
        .as("rows are made on an executor's task thread")
        .startsWith("Executor task launch worker");

    long resultBytes;
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT count(*), sum(n), max(n), min(octet_length(v)),"
                        + " sum(octet_length(k) + 8 + octet_length(v)) FROM per_key_staged")) {
      rs.next();
      assertThat(rs.getLong(1)).isEqualTo(ROWS);
      assertThat(rs.getLong(2)).isEqualTo(ROWS);
      assertThat(rs.getLong(3)).isEqualTo(1);
      assertThat(rs.getLong(4)).isEqualTo(VALUE_BYTES);
      resultBytes = rs.getLong(5);
    }
    assertThat(db.count("per_key_staged_eos_staging")).isZero();

    long maxHeap = Long.parseLong(result.getProperty("maxHeapBytes"));
    long peakHeap = Long.parseLong(result.getProperty("peakHeapBytes"));
    long peakAfterFullGc = Long.parseLong(result.getProperty("peakHeapAfterFullGcBytes"));
    System.out.printf(
        "LargeStagedBatchIT: results %d MB, driver heap limit %d MB, driver peak heap %d MB,"
            + " peak heap after a full collection %d MB, job took %d s%n",
        resultBytes / 1_000_000,
        maxHeap / 1_000_000,
        peakHeap / 1_000_000,
        peakAfterFullGc / 1_000_000,
        run.seconds);
    // The proof: the job succeeded although its results do not fit in the driver's heap (and the
    // same job collected runs out of memory, below). The peaks are reported, not asserted: no
    // peak can exceed the heap limit, so a bound on them would hold whatever the path.
    assertThat(resultBytes)
        .as("the results are larger than the driver's heap")
        .isGreaterThan(maxHeap);
  }

  @Test
  void collectedResultsOfTheSameSizeRunTheSameDriverOutOfMemory() throws Exception {
    JdbcTestSupport db = new JdbcTestSupport();
    db.execute("CREATE TABLE per_key_collected (k text PRIMARY KEY, n bigint NOT NULL, v text)");

    Run run = runJob(db, "collected");
    System.out.printf("LargeStagedBatchIT: collected run took %d s%n", run.seconds);
    assertThat(run.output)
        .as("the driver's streaming job thread, not an executor, turns results into rows")
        .containsPattern("first result row mapped on thread (?!Executor task launch worker)");
    assertThat(run.exitCode)
        .as("collected driver exits on OutOfMemoryError; log:\n" + run.output)
        .isEqualTo(EXIT_ON_OUT_OF_MEMORY);
    assertThat(run.output)
        .contains("Terminating due to java.lang.OutOfMemoryError: Java heap space");
    assertThat(db.count("per_key_collected")).isZero();
  }

  private record Run(int exitCode, String output, Path resultFile, long seconds) {}

  private static Run runJob(JdbcTestSupport db, String mode) throws Exception {
    Path log = Files.createTempFile(Path.of("target"), "large-batch-" + mode, ".log");
    Path resultFile = Files.createTempFile(Path.of("target"), "large-batch-" + mode, ".properties");
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx" + DRIVER_HEAP_MIB + "m");
    // Serial collector: its heap pools partition the heap, so the sum of their peaks bounds the
    // heap ever used (G1's pools overlap). Exit code 3 on the first OutOfMemoryError, whichever
    // thread hits it, instead of Spark's handlers turning it into a task failure or exit 52.
    cmd.add("-XX:+UseSerialGC");
    cmd.add("-XX:+ExitOnOutOfMemoryError");
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
            Integer.toString(ROWS),
            mode,
            Integer.toString(VALUE_BYTES),
            resultFile.toString()));
    long start = System.nanoTime();
    Process driver =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    boolean finished = driver.waitFor(4, TimeUnit.MINUTES);
    if (!finished) {
      driver.destroyForcibly().waitFor();
    }
    long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start);
    String output = Files.readString(log);
    System.out.println(
        output
            .lines()
            .filter(l -> l.contains("LargeStagedBatchJob") || l.contains("Terminating"))
            .toList());
    assertThat(finished).as(mode + " driver finished; log " + log).isTrue();
    return new Run(driver.exitValue(), output, resultFile, seconds);
  }
}
