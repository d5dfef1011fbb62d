package org.exactlyonce.spark.tests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.exactlyonce.spark.SinkProperties;
import org.exactlyonce.spark.SinkSetting;
import org.exactlyonce.spark.cassandra.CassandraProperties;
import org.exactlyonce.spark.jdbc.JdbcProperties;
import org.exactlyonce.spark.kafka.KafkaProperties;

/**
 * Generates {@code docs/settings.md}, the reference of every sink setting, from the backends'
 * declarations ({@link JdbcProperties}, {@link CassandraProperties}, {@link KafkaProperties}), so
 * the reference cannot drift from the code: {@link SettingsReferenceTest} fails when the file
 * differs. Rewrite it with {@link #COMMAND}.
 */
final class SettingsReference {
  /** The command that rewrites the reference. */
  static final String COMMAND =
      "mvn -B -o test -pl tests -am -Dtest=SettingsReferenceTest"
          + " -Dsurefire.failIfNoSpecifiedTests=false -Dsettings.reference.write=true";

  private SettingsReference() {}

  /** The reference as the declarations generate it. */
  static String generate() {
    StringBuilder b = new StringBuilder();
    b.append("# Sink settings reference\n\n")
        .append("<!-- Generated from the settings' declarations (JdbcProperties,")
        .append(" CassandraProperties, KafkaProperties): do not edit. Rewrite with\n     ")
        .append(COMMAND)
        .append(" -->\n\n")
        .append("Every sink builder takes these settings from the Spark configuration with")
        .append(" `settingsFrom(sparkConf)` (or from a map with `settingsFrom(map)`): key `<key>`")
        .append(" of pipeline `<pipeline>` is `")
        .append(SinkProperties.PREFIX)
        .append("<pipeline>.<key>`, set for example with")
        .append(" `spark-submit --conf ")
        .append(SinkProperties.PREFIX)
        .append("clicks.maxPoolSize=16`.")
        .append(" Each key calls the builder method its declaration names (see the javadoc of")
        .append(" the `*Properties` classes), which checks the value;")
        .append(" builder calls made after `settingsFrom(...)` win. A key under the pipeline's")
        .append(" prefix that no setting declares is refused with the nearest key, and so is a")
        .append(" key that looks like a secret (a password, token, secret or JAAS config):")
        .append(" SparkConf values show in Spark's UI, event logs and command lines, so a secret")
        .append(" comes from an environment variable named by a `...Env` key (`passwordEnv`),")
        .append(" from a file (a trust store), or is passed in code. Without `settingsFrom(...)`")
        .append(" the configuration is not read at all, and it is never written.\n\n")
        .append("Durations are written like Spark's (`500ms`, `30s`, `10min`, `2h`, `3d`) or in")
        .append(" ISO-8601 (`PT30S`); lists are comma-separated; a `map` key `<key>.<name>` sets")
        .append(" `<name>`.\n");
    section(
        b,
        "PostgreSQL (`JdbcSink.transactional`, `JdbcSink.perBatch`, `JdbcSink.idempotent`)",
        JdbcProperties.ALL);
    section(b, "Cassandra (`CassandraSink.idempotent`)", CassandraProperties.ALL);
    section(b, "Kafka (`KafkaSink.transactional`, `KafkaSink.idempotent`)", KafkaProperties.ALL);
    return b.toString();
  }

  private static void section(StringBuilder b, String title, List<SinkSetting<?>> settings) {
    b.append("\n## ").append(title).append("\n\n");
    b.append("| key | type | default | description |\n");
    b.append("|---|---|---|---|\n");
    for (SinkSetting<?> s : settings) {
      b.append("| `")
          .append(s.isMap() ? s.key() + ".<name>" : s.key())
          .append("` | ")
          .append(s.type())
          .append(" | ")
          .append(cell(s.defaultValue()))
          .append(" | ")
          .append(cell(s.doc()))
          .append(" |\n");
    }
  }

  private static String cell(String text) {
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;");
  }

  /** The reference's path, from the module's directory or the repository's. */
  static Path file() {
    Path here = Path.of("").toAbsolutePath();
    Path root = Files.isDirectory(here.resolve("docs")) ? here : here.getParent();
    return root.resolve("docs").resolve("settings.md");
  }

  /** Writes the reference. */
  static void write() throws IOException {
    Files.writeString(file(), generate(), StandardCharsets.UTF_8);
  }
}
