package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.util.Map;
import org.exactlyonce.spark.ExactlyOnceException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The {@code exactly-once-offsets} command: {@code show}, {@code lag}, {@code reset}, {@code
 * doctor}, {@code export} and {@code import} of a pipeline's stored offsets, for the PostgreSQL and
 * Cassandra offsets tables and a Kafka sink's progress group.
 *
 * <p>Exit codes: 0 done, 1 failed (the message says why and what to fix), 2 wrong usage, {@value
 * #REFUSED} refused because a driver may still hold the pipeline (or, for {@code export} and {@code
 * import}, the consumer group has active members); {@code doctor}: {@value #FOUND_ERRORS} found
 * something that stops the next start, {@value #FOUND_WARNINGS} found something that surprises it
 * (and nothing that stops it).
 */
@Command(
    name = "exactly-once-offsets",
    mixinStandardHelpOptions = true,
    versionProvider = OffsetsTool.Version.class,
    description = {
      "Shows, measures and resets the offsets an exactly-once sink stored for a pipeline,"
          + " diagnoses what would stop or surprise its next start (doctor), and moves offsets"
          + " between the pipeline and a Kafka consumer group (export, import).",
      "Exit codes: 0 done, 1 failed, 2 wrong usage, 3 reset or import refused (a driver may hold"
          + " the pipeline) or export or import refused (the group has active members), 4 doctor found an ERROR, 5 doctor found a WARN but no ERROR.",
      "Offsets are read from the sink's own store (PostgreSQL offsets table with --jdbc-url,"
          + " Cassandra offsets table with --cassandra, or a Kafka sink's progress group"
          + " otherwise); the source topics are read at --bootstrap-servers."
    },
    subcommands = {
      ShowCommand.class,
      LagCommand.class,
      ResetCommand.class,
      DoctorCommand.class,
      ExportCommand.class,
      ImportCommand.class,
      CommandLine.HelpCommand.class
    })
public final class OffsetsTool implements Runnable {
  /** The exit code of a reset refused because a driver may still hold the pipeline. */
  public static final int REFUSED = 3;

  /** The exit code of {@code doctor} when it found something that stops the next start. */
  public static final int FOUND_ERRORS = 4;

  /** The exit code of {@code doctor} when it found surprises but nothing that stops a start. */
  public static final int FOUND_WARNINGS = 5;

  private final Map<String, String> environment;

  @Spec CommandSpec spec;

  private OffsetsTool(Map<String, String> environment) {
    this.environment = Map.copyOf(environment);
  }

  /** The environment secrets are read from ({@code --password-env}). */
  Map<String, String> environment() {
    return environment;
  }

  @Override
  public void run() {
    throw new CommandLine.ParameterException(
        spec.commandLine(),
        "name a verb: show, lag, reset, doctor, export or import (each has --help)");
  }

  /** Runs the tool with the process's environment and exits with its exit code. */
  public static void main(String[] args) {
    System.exit(commandLine(System.getenv()).execute(args));
  }

  /**
   * The tool as a picocli command line, for running it in-process (tests, or an operator's own
   * launcher): {@code commandLine(env).setOut(out).setErr(err).execute(args)}.
   *
   * @param environment where {@code --password-env} names are looked up
   */
  public static CommandLine commandLine(Map<String, String> environment) {
    CommandLine cl = new CommandLine(new OffsetsTool(environment));
    cl.setExecutionExceptionHandler(
        (e, commandLine, parseResult) -> {
          if (e instanceof ExactlyOnceException || e instanceof IllegalArgumentException) {
            PrintWriter err = commandLine.getErr();
            err.println("error: " + e.getMessage());
            err.flush();
            return 1;
          }
          throw e;
        });
    return cl;
  }

  /** The library version, from the jar's manifest where there is one. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String v = OffsetsTool.class.getPackage().getImplementationVersion();
      return new String[] {"exactly-once-offsets " + (v == null ? "(development build)" : v)};
    }
  }
}
