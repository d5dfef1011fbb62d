package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.SinkConfigurationException;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code reset}: moves a pipeline's stored offsets on purpose, through {@link ExactlyOnce#rewind}:
 * a new writer epoch is taken (a driver still running is fenced at its next commit) and the
 * high-water marks move with the offsets, so the next start accepts them.
 */
@Command(
    name = "reset",
    mixinStandardHelpOptions = true,
    description = {
      "Moves the stored offsets of a pipeline to a target, through the library's rewind: the next"
          + " start accepts them, and a driver still running the pipeline is fenced (it stops at"
          + " its next commit).",
      "Prints the plan (current and new offset per partition) and changes nothing unless"
          + " --execute is given. --execute is refused while a driver may hold the pipeline (its"
          + " writer epoch taken or its offsets written within --idle-for; a Kafka progress group"
          + " records no times, so there it always needs --force): stop the job first.",
      "Targets apply to every stored partition of the pipeline (--topic to narrow them), except"
          + " --to-offset, which names its partitions. New offsets must lie within the log"
          + " (start..end); --shift-by is clamped to it."
    })
final class ResetCommand implements Callable<Integer> {
  @ParentCommand OffsetsTool tool;
  @Spec CommandLine.Model.CommandSpec spec;
  @Mixin ConnectionOptions connection;

  @Option(names = "--pipeline", paramLabel = "ID", required = true, description = "The pipeline.")
  String pipeline;

  @ArgGroup(exclusive = true, multiplicity = "1", heading = "Target (one of):%n")
  Target target;

  static final class Target {
    @Option(names = "--to-earliest", description = "The log start of each partition.")
    boolean earliest;

    @Option(names = "--to-latest", description = "The log end of each partition (skips the rest).")
    boolean latest;

    @Option(
        names = "--to-datetime",
        paramLabel = "ISO-8601",
        description =
            "The first record at or after this time (2026-12-01T10:00:00Z), the end where none.")
    String datetime;

    @Option(
        names = "--to-offset",
        paramLabel = "TOPIC:PARTITION=OFFSET",
        split = ",",
        description = "Explicit offsets, comma-separated: clicks:0=1200,clicks:1=980.")
    List<String> offsets;

    @Option(
        names = "--shift-by",
        paramLabel = "N",
        description = "Each stored offset plus N (negative: back), clamped to the log.")
    Long shiftBy;
  }

  @Option(
      names = "--topic",
      paramLabel = "TOPIC",
      description = "Only the stored partitions of these topics (not with --to-offset).")
  List<String> topics;

  @Option(names = "--dry-run", description = "Print the plan and change nothing (the default).")
  boolean dryRun;

  @Option(names = "--execute", description = "Apply the plan.")
  boolean execute;

  @Option(
      names = "--force",
      description =
          "Apply even if a driver may hold the pipeline: it is fenced and stops at its next"
              + " commit.")
  boolean force;

  @Option(
      names = "--idle-for",
      paramLabel = "DURATION",
      defaultValue = "2m",
      converter = DurationConverter.class,
      description =
          "How long the pipeline must have been idle (no epoch taken, no offset written) for"
              + " --execute to go ahead without --force: 90s, 2m, 1h, PT2M (default:"
              + " ${DEFAULT-VALUE}).")
  Duration idleFor;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (dryRun && execute) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--dry-run and --execute exclude each other");
    }
    if (target.offsets != null && topics != null) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--topic does not apply to --to-offset, which names its partitions");
    }
    if (target.offsets != null) {
      explicit(); // wrong usage is reported before anything is contacted
    }
    if (target.datetime != null) {
      instant(target.datetime);
    }
    try (PipelineStore store = connection.openStore(tool.environment());
        SourceLog source = connection.openSource("reset")) {
      Map<TopicPartition, Long> current = new HashMap<>();
      store
          .read(pipeline)
          .forEach(s -> s.partitions().forEach(p -> current.put(p.tp(), p.offset())));
      List<TopicPartition> partitions = partitions(current);
      Map<TopicPartition, Long> start = source.earliest(partitions);
      Map<TopicPartition, Long> end = source.end(partitions);
      Map<TopicPartition, Long> plan = plan(current, partitions, start, end, source);

      return applyPlan(
          out,
          err,
          store,
          pipeline,
          "reset of pipeline '" + pipeline + "' in " + store.describe() + " to " + targetName(),
          current,
          plan,
          start,
          end,
          new Apply(execute, force, idleFor));
    }
  }

  /** How a plan is applied: {@code --execute}, {@code --force}, {@code --idle-for}. */
  record Apply(boolean execute, boolean force, Duration idleFor) {}

  /**
   * Prints {@code plan} against the current offsets and, with {@code --execute}, applies it through
   * {@link ExactlyOnce#rewind} unless a driver may still hold the pipeline (and not {@code
   * --force}). Shared by {@code reset} and {@code import}.
   *
   * @return the exit code
   */
  static int applyPlan(
      PrintWriter out,
      PrintWriter err,
      PipelineStore store,
      String pipeline,
      String heading,
      Map<TopicPartition, Long> current,
      Map<TopicPartition, Long> plan,
      Map<TopicPartition, Long> start,
      Map<TopicPartition, Long> end,
      Apply apply) {
    out.println(heading);
    TextTable t =
        new TextTable("TOPIC", "PARTITION", "CURRENT", "NEW", "CHANGE", "LOG-START", "LOG-END");
    plan.forEach(
        (tp, o) -> {
          Long c = current.get(tp);
          t.row(
              tp.topic(),
              tp.partition(),
              c,
              o,
              c == null ? null : String.format(Locale.ROOT, "%+d", o - c),
              start.get(tp),
              end.get(tp));
        });
    t.print(out);
    if (!apply.execute()) {
      out.println("dry run: nothing was changed. Apply this plan with --execute.");
      out.flush();
      return 0;
    }
    if (!apply.force()) {
      Optional<String> held = store.heldBecause(pipeline, apply.idleFor());
      if (held.isPresent()) {
        err.println(
            "refused: pipeline '"
                + pipeline
                + "' may still be held by a running driver: "
                + held.get()
                + " (--idle-for "
                + apply.idleFor()
                + "). Nothing was changed. Stop the job and run this again once it has been"
                + " idle for --idle-for, or add --force: a driver still running is then fenced"
                + " and stops at its next commit.");
        err.flush();
        return OffsetsTool.REFUSED;
      }
    }
    ExactlyOnce.rewind(store.rewindSink(pipeline), plan);
    out.println(
        "done: "
            + plan.size()
            + " offset(s) of pipeline '"
            + pipeline
            + "' set under a new writer epoch; the next start of the pipeline resumes there.");
    out.flush();
    return 0;
  }

  private List<TopicPartition> partitions(Map<TopicPartition, Long> current) {
    List<TopicPartition> out = new ArrayList<>();
    if (target.offsets != null) {
      out.addAll(explicit().keySet());
    } else {
      current.keySet().stream()
          .filter(tp -> topics == null || topics.contains(tp.topic()))
          .forEach(out::add);
      if (out.isEmpty()) {
        throw new SinkConfigurationException(
            "pipeline '"
                + pipeline
                + "' has no stored offsets"
                + (topics == null ? "" : " of topics " + topics)
                + " to reset: check --pipeline and the store options, or name partitions and"
                + " offsets with --to-offset");
      }
    }
    out.sort(Comparator.comparing(TopicPartition::topic).thenComparing(TopicPartition::partition));
    return out;
  }

  private Map<TopicPartition, Long> plan(
      Map<TopicPartition, Long> current,
      List<TopicPartition> partitions,
      Map<TopicPartition, Long> start,
      Map<TopicPartition, Long> end,
      SourceLog source) {
    Map<TopicPartition, Long> wanted;
    if (target.earliest) {
      wanted = start;
    } else if (target.latest) {
      wanted = end;
    } else if (target.datetime != null) {
      wanted = source.atTime(partitions, instant(target.datetime).toEpochMilli());
    } else if (target.shiftBy != null) {
      wanted = new HashMap<>();
      for (TopicPartition tp : partitions) {
        long shifted = current.get(tp) + target.shiftBy;
        wanted.put(tp, Math.max(start.get(tp), Math.min(end.get(tp), shifted)));
      }
    } else {
      wanted = explicit();
    }
    Map<TopicPartition, Long> plan = new LinkedHashMap<>();
    for (TopicPartition tp : partitions) {
      long o = wanted.get(tp);
      requireWithinLog(tp, o, start, end, "Choose an offset within the log");
      plan.put(tp, o);
    }
    return plan;
  }

  /**
   * Refuses an offset the next start would refuse.
   *
   * @param fix what to do instead
   */
  static void requireWithinLog(
      TopicPartition tp,
      long o,
      Map<TopicPartition, Long> start,
      Map<TopicPartition, Long> end,
      String fix) {
    if (o < start.get(tp) || o > end.get(tp)) {
      throw new SinkConfigurationException(
          "offset "
              + o
              + " for "
              + tp
              + " lies outside its log ("
              + start.get(tp)
              + ".."
              + end.get(tp)
              + "): the next start would refuse it. Nothing was changed. "
              + fix);
    }
  }

  private Map<TopicPartition, Long> explicit() {
    Map<TopicPartition, Long> out = new LinkedHashMap<>();
    for (String entry : target.offsets) {
      int colon = entry.lastIndexOf(':');
      int eq = entry.lastIndexOf('=');
      try {
        if (colon < 1 || eq < colon + 2) {
          throw new NumberFormatException();
        }
        out.put(
            new TopicPartition(
                entry.substring(0, colon), Integer.parseInt(entry.substring(colon + 1, eq))),
            Long.parseLong(entry.substring(eq + 1)));
      } catch (NumberFormatException e) {
        throw new CommandLine.ParameterException(
            spec.commandLine(),
            "--to-offset '" + entry + "' is not TOPIC:PARTITION=OFFSET (clicks:0=1200)");
      }
    }
    return out;
  }

  private Instant instant(String text) {
    try {
      return Instant.parse(text);
    } catch (DateTimeParseException e) {
      try {
        return OffsetDateTime.parse(text).toInstant();
      } catch (DateTimeParseException e2) {
        throw new CommandLine.ParameterException(
            spec.commandLine(),
            "--to-datetime '" + text + "' is not an ISO-8601 time with a zone (2026-12-01T10:00Z)");
      }
    }
  }

  private String targetName() {
    if (target.earliest) {
      return "the earliest offsets";
    } else if (target.latest) {
      return "the latest offsets";
    } else if (target.datetime != null) {
      return "the offsets at " + target.datetime;
    } else if (target.shiftBy != null) {
      return "the stored offsets shifted by " + target.shiftBy;
    }
    return "the given offsets";
  }

  /** A duration as 500ms, 90s, 2m, 1h, 1d or ISO-8601 (PT2M). */
  static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      String v = value.trim().toLowerCase(Locale.ROOT);
      try {
        if (v.startsWith("p")) {
          return Duration.parse(value.trim());
        }
        if (v.endsWith("ms")) {
          return Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
        }
        long n = Long.parseLong(v.substring(0, v.length() - 1));
        switch (v.charAt(v.length() - 1)) {
          case 's':
            return Duration.ofSeconds(n);
          case 'm':
            return Duration.ofMinutes(n);
          case 'h':
            return Duration.ofHours(n);
          case 'd':
            return Duration.ofDays(n);
          default:
            break;
        }
      } catch (RuntimeException e) {
        // reported below
      }
      throw new CommandLine.TypeConversionException(
          "'" + value + "' is not a duration: use 500ms, 90s, 2m, 1h, 1d or PT2M");
    }
  }
}
