package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.kafka.ProgressGroups;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code export}: writes a pipeline's stored offsets into a Kafka consumer group, so that a job
 * reading with that group ({@code group.id}, offsets committed to Kafka) starts where the pipeline
 * stopped. The store is only read.
 */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    description = {
      "Writes the stored offsets of a pipeline into a Kafka consumer group at --bootstrap-servers"
          + " (the group's committed offsets), so that a job reading with that group.id starts"
          + " where the pipeline stopped: to move a job away from the exactly-once sinks, or to"
          + " let Kafka's own tools (kafka-consumer-groups --describe, lag monitors) see the"
          + " pipeline's progress.",
      "Prints the plan and changes nothing unless --execute is given. Refused while the group has"
          + " active members (Kafka accepts offsets only for an empty group): stop its consumers"
          + " first. The pipeline's offsets are not changed; stop the pipeline first, or the"
          + " exported offsets fall behind it."
    })
final class ExportCommand implements Callable<Integer> {
  @ParentCommand OffsetsTool tool;
  @Spec CommandLine.Model.CommandSpec spec;
  @Mixin ConnectionOptions connection;

  @Option(names = "--pipeline", paramLabel = "ID", required = true, description = "The pipeline.")
  String pipeline;

  @Option(
      names = "--to-group",
      paramLabel = "GROUP",
      required = true,
      description = "The consumer group whose committed offsets are set.")
  String group;

  @Option(
      names = "--topic",
      paramLabel = "TOPIC",
      description = "Only the stored partitions of these topics.")
  List<String> topics;

  @Option(names = "--dry-run", description = "Print the plan and change nothing (the default).")
  boolean dryRun;

  @Option(names = "--execute", description = "Write the offsets into the group.")
  boolean execute;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    if (dryRun && execute) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--dry-run and --execute exclude each other");
    }
    if (group.equals(connection.progressGroup)
        || group.equals(ProgressGroups.defaultProgressGroup(pipeline))) {
      throw new CommandLine.ParameterException(
          spec.commandLine(),
          "--to-group '"
              + group
              + "' is the Kafka sink's progress group of pipeline '"
              + pipeline
              + "' (its offsets store): change it with reset or import, which keep its writer"
              + " epoch; export writes to the consumer group of another job");
    }
    try (SourceLog source = connection.openSource("export");
        PipelineStore store = connection.openStore(tool.environment())) {
      Map<TopicPartition, Long> plan = new LinkedHashMap<>();
      store
          .read(pipeline)
          .forEach(
              s ->
                  s.partitions().stream()
                      .filter(p -> topics == null || topics.contains(p.tp().topic()))
                      .forEach(p -> plan.put(p.tp(), p.offset())));
      if (plan.isEmpty()) {
        throw new SinkConfigurationException(
            "pipeline '"
                + pipeline
                + "' has no stored offsets"
                + (topics == null ? "" : " of topics " + topics)
                + " in "
                + store.describe()
                + ": nothing to export. Check --pipeline and the store options");
      }
      // Another pipeline's offset store (its progress group, by metadata, whatever its name):
      // overwriting it would move that pipeline's offsets outside its writer epochs.
      if (source.holdsLibraryProgress(group)) {
        throw new SinkConfigurationException(
            "--to-group '"
                + group
                + "' holds offsets a Kafka sink of this library wrote: it is some pipeline's"
                + " progress group (its offsets store), not a consumer group to export to. Change"
                + " that pipeline's offsets with reset or import on it; export writes to the"
                + " consumer group of another job");
      }
      Map<TopicPartition, Long> now = source.groupOffsets(group);
      List<String> members = source.groupMembers(group);
      out.println(
          "export of pipeline '"
              + pipeline
              + "' in "
              + store.describe()
              + " to consumer group '"
              + group
              + "' at "
              + connection.bootstrapServers);
      TextTable t = new TextTable("TOPIC", "PARTITION", "GROUP-NOW", "NEW", "CHANGE");
      plan.forEach(
          (tp, o) -> {
            Long c = now.get(tp);
            t.row(
                tp.topic(),
                tp.partition(),
                c,
                o,
                c == null ? null : String.format(Locale.ROOT, "%+d", o - c));
          });
      t.print(out);
      if (!members.isEmpty()) {
        String why =
            "consumer group '"
                + group
                + "' has "
                + members.size()
                + " active member(s) "
                + members
                + ": Kafka sets the offsets of an empty group only.";
        if (execute) {
          err.println(
              "refused: "
                  + why
                  + " Nothing was changed. Stop the group's consumers and run this again.");
          err.flush();
          return OffsetsTool.REFUSED;
        }
        out.println("note: " + why + " --execute is refused until its consumers stop.");
      }
      if (!execute) {
        out.println("dry run: nothing was changed. Write these offsets with --execute.");
        out.flush();
        return 0;
      }
      Optional<String> held = store.heldBecause(pipeline, java.time.Duration.ofMinutes(2));
      source.alterGroupOffsets(
          group, plan, "exported by exactly-once-offsets from pipeline " + pipeline);
      out.println(
          "done: "
              + plan.size()
              + " offset(s) of pipeline '"
              + pipeline
              + "' written to consumer group '"
              + group
              + "'; a job reading with group.id "
              + group
              + " (and no offsets of its own) starts there.");
      held.ifPresent(
          h ->
              out.println(
                  "note: the pipeline may still run ("
                      + h
                      + "): if it does, it moves on and the group's offsets fall behind it."));
      out.flush();
      return 0;
    }
  }
}
