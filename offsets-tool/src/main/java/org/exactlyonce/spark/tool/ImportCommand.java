package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code import}: sets a pipeline's stored offsets from a Kafka consumer group's committed offsets,
 * to move a job that committed its offsets to Kafka onto an exactly-once sink. Applied like {@code
 * reset}, through {@link org.exactlyonce.spark.ExactlyOnce#rewind}.
 */
@Command(
    name = "import",
    mixinStandardHelpOptions = true,
    description = {
      "Sets the stored offsets of a pipeline to the committed offsets of a Kafka consumer group"
          + " (read at --bootstrap-servers): to move a job that committed its offsets to Kafka"
          + " (enable.auto.commit, commitAsync) onto an exactly-once sink, so that it resumes"
          + " where the old job stopped.",
      "Applied like reset, through the library's rewind: prints the plan and changes nothing"
          + " unless --execute is given; --execute is refused while a driver may hold the"
          + " pipeline (see reset) or while the group has active members (the old job still"
          + " consumes: stop it first), unless --force. Every committed partition of the group"
          + " is imported (--topic to narrow them); stored partitions the group has no offset"
          + " for keep theirs. Each offset must lie within its log."
    })
final class ImportCommand implements Callable<Integer> {
  @ParentCommand OffsetsTool tool;
  @Spec CommandLine.Model.CommandSpec spec;
  @Mixin ConnectionOptions connection;

  @Option(names = "--pipeline", paramLabel = "ID", required = true, description = "The pipeline.")
  String pipeline;

  @Option(
      names = "--from-group",
      paramLabel = "GROUP",
      required = true,
      description = "The consumer group whose committed offsets are imported.")
  String group;

  @Option(
      names = "--topic",
      paramLabel = "TOPIC",
      description = "Only the group's offsets of these topics.")
  List<String> topics;

  @Option(names = "--dry-run", description = "Print the plan and change nothing (the default).")
  boolean dryRun;

  @Option(names = "--execute", description = "Apply the plan.")
  boolean execute;

  @Option(
      names = "--force",
      description =
          "Apply even if a driver may hold the pipeline (it is fenced and stops at its next"
              + " commit) or the group has active members.")
  boolean force;

  @Option(
      names = "--allow-rewind",
      description =
          "Apply even if the group is behind the pipeline on some partition: the records between"
              + " are then read and written again (a sink that is not idempotent writes them"
              + " twice). Without it, such an import is refused.")
  boolean allowRewind;

  @Option(
      names = "--idle-for",
      paramLabel = "DURATION",
      defaultValue = "2m",
      converter = ResetCommand.DurationConverter.class,
      description =
          "How long the pipeline must have been idle for --execute to go ahead without --force,"
              + " as for reset (default: ${DEFAULT-VALUE}).")
  Duration idleFor;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (dryRun && execute) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--dry-run and --execute exclude each other");
    }
    try (SourceLog source = connection.openSource("import");
        PipelineStore store = connection.openStore(tool.environment())) {
      Map<TopicPartition, Long> committed = new HashMap<>(source.groupOffsets(group));
      if (topics != null) {
        committed.keySet().removeIf(tp -> !topics.contains(tp.topic()));
      }
      if (committed.isEmpty()) {
        throw new SinkConfigurationException(
            "consumer group '"
                + group
                + "' has no committed offsets"
                + (topics == null ? "" : " of topics " + topics)
                + " at '"
                + connection.bootstrapServers
                + "': nothing to import. Check --from-group and --bootstrap-servers (the"
                + " cluster the old job read from and committed to)");
      }
      Map<TopicPartition, Long> current = new HashMap<>();
      store
          .read(pipeline)
          .forEach(s -> s.partitions().forEach(p -> current.put(p.tp(), p.offset())));
      List<TopicPartition> partitions =
          committed.keySet().stream()
              .sorted(
                  Comparator.comparing(TopicPartition::topic)
                      .thenComparing(TopicPartition::partition))
              .toList();
      Map<TopicPartition, Long> start = source.earliest(partitions);
      Map<TopicPartition, Long> end = source.end(partitions);
      Map<TopicPartition, Long> plan = new LinkedHashMap<>();
      for (TopicPartition tp : partitions) {
        long o = committed.get(tp);
        ResetCommand.requireWithinLog(
            tp,
            o,
            start,
            end,
            "Import the other partitions with --topic, then set this one with reset");
        plan.put(tp, o);
      }
      // An import is a migration, not a rewind: a group behind the pipeline (a stale or
      // mirror group, the wrong group) would make the pipeline write those records again.
      List<String> behind =
          plan.entrySet().stream()
              .filter(
                  e -> current.containsKey(e.getKey()) && e.getValue() < current.get(e.getKey()))
              .map(e -> e.getKey() + " " + current.get(e.getKey()) + " -> " + e.getValue())
              .toList();
      if (!behind.isEmpty() && !allowRewind) {
        String why =
            "consumer group '"
                + group
                + "' is behind pipeline '"
                + pipeline
                + "' on "
                + behind
                + ": importing it would move those stored offsets back, and the pipeline would"
                + " read and write the records between again.";
        if (execute) {
          err.println(
              "refused: "
                  + why
                  + " Nothing was changed. If that is what you want, add --allow-rewind (or use"
                  + " reset, the tool's rewind).");
          err.flush();
          return OffsetsTool.REFUSED;
        }
        out.println("note: " + why + " --execute will need --allow-rewind.");
      }
      List<String> members = source.groupMembers(group);
      if (execute && !force && !members.isEmpty()) {
        err.println(
            "refused: consumer group '"
                + group
                + "' has "
                + members.size()
                + " active member(s) "
                + members
                + ": the old job still consumes, and its offsets still move. Nothing was changed."
                + " Stop it and run this again, or add --force to import the offsets as they are"
                + " now.");
        err.flush();
        return OffsetsTool.REFUSED;
      }
      return ResetCommand.applyPlan(
          out,
          err,
          store,
          pipeline,
          "import into pipeline '"
              + pipeline
              + "' in "
              + store.describe()
              + " from consumer group '"
              + group
              + "' at "
              + connection.bootstrapServers
              + (members.isEmpty() ? "" : " (the group has active members: " + members + ")"),
          current,
          plan,
          start,
          end,
          new ResetCommand.Apply(execute, force, idleFor));
    }
  }
}
