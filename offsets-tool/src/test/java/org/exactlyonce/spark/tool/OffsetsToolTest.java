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
    for (String verb : new String[] {"show", "lag", "reset", "doctor", "export", "import"}) {
      assertThat(run(verb, "--help")).isZero();
      assertThat(out.toString()).contains("Usage: exactly-once-offsets " + verb);
    }
    assertThat(run("--help")).isZero();
    assertThat(out.toString()).contains("show", "lag", "reset", "doctor", "export", "import");
  }

  @Test
  void doctorsExitCodesAreDocumentedAndDistinctFromTheOthers() {
    assertThat(run("doctor", "--help")).isZero();
    assertThat(out.toString().replaceAll("\\s+", " "))
        .contains(
            "Exit codes: 0 nothing found (or INFO only), 5 WARN but no ERROR, 4 at least one ERROR");
    assertThat(OffsetsTool.FOUND_ERRORS)
        .isNotIn(0, 1, 2, OffsetsTool.REFUSED)
        .isNotEqualTo(OffsetsTool.FOUND_WARNINGS);
    assertThat(OffsetsTool.FOUND_WARNINGS).isNotIn(0, 1, 2, OffsetsTool.REFUSED);
  }

  @Test
  void doctorNeedsAPipelineAndTheSourceCluster() {
    assertThat(run("doctor")).isEqualTo(2);
    assertThat(err.toString()).contains("--pipeline");
    assertThat(run("doctor", "--pipeline", "p", "--jdbc-url", "jdbc:postgresql://127.0.0.1:1/x"))
        .isEqualTo(1);
    assertThat(err.toString()).contains("doctor reads the source topics' offsets");
  }

  @Test
  void fixCommandsRepeatTheStoreOptionsWithoutSecrets() {
    ConnectionOptions c = new ConnectionOptions();
    c.jdbcUrl = "jdbc:postgresql://db/ads?password=s3cret";
    c.user = "app";
    c.passwordEnv = "PGPASSWORD";
    c.offsetsTable = "eos_offsets";
    c.writersTable = "ops.writers";
    c.bootstrapServers = "kafka:9092";
    assertThat(c.asArguments(true))
        .isEqualTo(
            "--bootstrap-servers kafka:9092 --jdbc-url jdbc:postgresql://db/ads --user app"
                + " --password-env PGPASSWORD --writers-table ops.writers");
    ConnectionOptions k = new ConnectionOptions();
    k.bootstrapServers = "src:9092";
    k.progressServers = "out:9092";
    k.idempotentSink = true;
    assertThat(k.asArguments(true))
        .isEqualTo(
            "--bootstrap-servers src:9092 --progress-bootstrap-servers out:9092 --output-topic"
                + " <the sink's output topic> --idempotent-sink");
    assertThat(k.asArguments(false)).doesNotContain("--output-topic");
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
    assertThat(run("export", "--pipeline", "p")).isEqualTo(2); // --to-group is required
    assertThat(run("import", "--pipeline", "p")).isEqualTo(2); // --from-group is required
    assertThat(run("import", "--pipeline", "p", "--from-group", "g", "--dry-run", "--execute"))
        .isEqualTo(2);
    assertThat(run("export", "--pipeline", "p", "--to-group", "eos-progress-p")).isEqualTo(2);
    assertThat(err.toString()).contains("is the Kafka sink's progress group of pipeline 'p'");
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
  void aCassandraStoreNeedsItsDataCenterAndKeyspace() {
    assertThat(run("show", "--cassandra", "127.0.0.1:1")).isEqualTo(1);
    assertThat(err.toString()).contains("--cassandra needs --cassandra-dc");
    assertThat(run("show", "--cassandra", "127.0.0.1:1", "--cassandra-dc", "dc1")).isEqualTo(1);
    assertThat(err.toString()).contains("pass --keyspace");
    assertThat(run("show", "--cassandra", "nohost", "--cassandra-dc", "dc1")).isEqualTo(1);
    assertThat(err.toString()).contains("'nohost' is not host:port");
    assertThat(
            run(
                "show",
                "--cassandra",
                "127.0.0.1:1",
                "--cassandra-dc",
                "dc1",
                "--offsets-table",
                "ks.bad-name"))
        .isEqualTo(1);
    assertThat(err.toString()).contains("is not a plain CQL name");
    assertThat(run("show", "--cassandra", "127.0.0.1:1", "--jdbc-url", "jdbc:postgresql://x/y"))
        .isEqualTo(1);
    assertThat(err.toString()).contains("name two offsets stores");
  }

  @Test
  void cassandraFixCommandsRepeatTheStoreOptionsWithoutSecrets() {
    ConnectionOptions c = new ConnectionOptions();
    c.cassandra = java.util.List.of("cas1:9042", "cas2:9042");
    c.cassandraDc = "dc1";
    c.keyspace = "ads";
    c.user = "app";
    c.passwordEnv = "CASSANDRA_PASSWORD";
    c.offsetsTable = "eos_offsets";
    c.bootstrapServers = "kafka:9092";
    assertThat(c.asArguments(true))
        .isEqualTo(
            "--bootstrap-servers kafka:9092 --cassandra cas1:9042,cas2:9042 --cassandra-dc dc1"
                + " --keyspace ads --user app --password-env CASSANDRA_PASSWORD");
    assertThat(c.kafkaStore()).isFalse();
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
