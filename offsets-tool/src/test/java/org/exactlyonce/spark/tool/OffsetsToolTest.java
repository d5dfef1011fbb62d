package org.exactlyonce.spark.tool;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The command line itself, without servers: help, usage errors, durations, the table layout. */
class OffsetsToolTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    return OffsetsTool.commandLine(Map.of())
        .setOut(new PrintWriter(out))
        .setErr(new PrintWriter(err))
        .execute(args);
  }

  @Test
  void everyVerbHasHelp() {
    for (String verb : new String[] {"show", "lag", "reset"}) {
      assertThat(run(verb, "--help")).isZero();
      assertThat(out.toString()).contains("Usage: exactly-once-offsets " + verb);
    }
    assertThat(run("--help")).isZero();
    assertThat(out.toString()).contains("show", "lag", "reset");
  }

  @Test
  void usageErrorsStopBeforeAnythingIsContacted() {
    assertThat(run()).isEqualTo(2);
    assertThat(err.toString()).contains("name a verb");
    assertThat(run("reset", "--pipeline", "p")).isEqualTo(2); // no target
    assertThat(run("reset", "--pipeline", "p", "--to-latest", "--to-earliest")).isEqualTo(2);
    assertThat(run("reset", "--pipeline", "p", "--to-latest", "--dry-run", "--execute"))
        .isEqualTo(2);
    assertThat(err.toString()).contains("--dry-run and --execute exclude each other");
    assertThat(run("reset", "--pipeline", "p", "--to-offset", "clicks-0=5")).isEqualTo(2);
    assertThat(err.toString()).contains("is not TOPIC:PARTITION=OFFSET");
    assertThat(run("reset", "--pipeline", "p", "--to-datetime", "yesterday")).isEqualTo(2);
    assertThat(run("lag")).isEqualTo(2); // --pipeline is required
  }

  @Test
  void aMissingStoreOrSecretIsNamed() {
    assertThat(run("show")).isEqualTo(1);
    assertThat(err.toString()).contains("no offsets store named: pass --jdbc-url");
    assertThat(
            run(
                "show",
                "--jdbc-url",
                "jdbc:postgresql://127.0.0.1:1/x",
                "--password-env",
                "EOS_NOT_SET"))
        .isEqualTo(1);
    assertThat(err.toString()).contains("the environment variable EOS_NOT_SET is not set");
  }

  @Test
  void durations() {
    ResetCommand.DurationConverter c = new ResetCommand.DurationConverter();
    assertThat(c.convert("500ms")).isEqualTo(Duration.ofMillis(500));
    assertThat(c.convert("90s")).isEqualTo(Duration.ofSeconds(90));
    assertThat(c.convert("2m")).isEqualTo(Duration.ofMinutes(2));
    assertThat(c.convert("1h")).isEqualTo(Duration.ofHours(1));
    assertThat(c.convert("PT2M")).isEqualTo(Duration.ofMinutes(2));
    assertThatThrownBy(() -> c.convert("2 weeks"))
        .isInstanceOf(CommandLine.TypeConversionException.class);
  }

  @Test
  void tableColumnsLineUp() {
    StringWriter s = new StringWriter();
    new TextTable("TOPIC", "PARTITION", "NOTE")
        .row("clicks", 0, null)
        .row("a", 12, "x")
        .print(new PrintWriter(s));
    assertThat(s.toString().split("\n"))
        .containsExactly("TOPIC   PARTITION  NOTE", "clicks  0          -", "a       12         x");
  }
}
