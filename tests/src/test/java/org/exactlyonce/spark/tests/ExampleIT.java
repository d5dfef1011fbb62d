package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.exactlyonce.spark.examples.AdEventsPipeline;
import org.exactlyonce.spark.examples.StructuredQuickStart;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The README's first command, run inside the build: the example checks its own outputs. */
class ExampleIT {

  private static String run(String... args) {
    return run(new AdEventsPipeline(), args);
  }

  private static String run(Object command, String... args) {
    PrintStream original = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    int exit;
    try {
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      exit = new CommandLine(command).execute(args);
    } finally {
      System.setOut(original);
    }
    String out = captured.toString(StandardCharsets.UTF_8);
    original.print(out);
    assertThat(exit).as("exit code").isZero();
    return out;
  }

  /**
   * The README's example, all four outputs: the job process dies mid-batch; started again, it
   * resumes from what the sinks stored, and every output holds every input exactly once. (One run
   * covers the plain run too: its summary checks the whole of every output.)
   */
  @Test
  void afterACrashMidBatchTheSameJobResumesWithNoDuplicateAndNoLoss() {
    String out =
        run(
            "--records",
            "20000",
            "--crash-after",
            "1",
            "--topic",
            "example-crash-" + System.nanoTime());
    assertThat(out)
        .contains("the job process died mid-batch (exit 137)")
        .contains("produced 20,000 events: 16,000 clicks, 3,800 conversions, 200 malformed")
        .containsPattern(
            "PostgreSQL clicks +rows 16,000, duplicates 0, missing 0, unexpected 0, dead letters 200"
                + " of 200")
        .contains("7 campaigns, totals equal to the input's")
        .containsPattern(
            "Cassandra events +rows 19,800, duplicates 0, missing 0, unexpected 0, dead letters 200"
                + " of 200")
        .containsPattern(
            "Kafka attributed conversions +rows 3,800, duplicates 0, missing 0, unexpected 0, dead"
                + " letters 200 of 200")
        .contains("-> EXACTLY ONCE")
        // Progress as it runs, the last line once every output caught up with the topic.
        .containsPattern(
            "progress \\d\\d:\\d\\d:\\d\\d UTC: .*ads-clicks 20,000/20,000 \\(100 %\\) lag 0")
        .containsPattern(
            "progress \\d\\d:\\d\\d:\\d\\d UTC: .*ads-attributed-conversions 20,000/20,000"
                + " \\(100 %\\) lag 0")
        // The summary's metrics, read from Spark's metrics system through JMX (the resumed run's).
        .contains("metrics of the last run, from Spark's metrics system (JMX):")
        .containsPattern(
            "ads-clicks +batches [\\d,]+, records [\\d,]+, rows [\\d,]+, replays skipped [\\d,]+,"
                + " trimmed [\\d,]+, dead letters [\\d,]+, commit p50 \\d+ ms, p99 \\d+ ms")
        .containsPattern("ads-events +batches [\\d,]+, records [\\d,]+")
        .containsPattern("ads-conversions-per-campaign +batches [\\d,]+, records [\\d,]+")
        .containsPattern("ads-attributed-conversions +batches [\\d,]+, records [\\d,]+");
  }

  /**
   * The README's Structured Streaming quick start ({@code bin/run-example --structured}): two
   * queries stopped and started again without a checkpoint resume from their sinks' offsets; the
   * example reads both tables whole and compares them with its input.
   */
  @Test
  void theStructuredQuickStartWritesEveryClickOnceAcrossARestart() {
    String out = run(new StructuredQuickStart(), "--records", "4000");
    assertThat(out)
        .contains("run 2: 4,000 clicks produced so far, both queries caught up and stopped")
        .containsPattern("PostgreSQL clicks +rows 4,000, duplicates 0, missing 0, unexpected 0")
        .contains("7 campaigns, totals equal to the input's")
        .contains("-> EXACTLY ONCE");
  }
}
