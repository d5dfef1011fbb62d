package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.tool.Finding.Severity;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code doctor}: what would stop or surprise the next start of a pipeline, each finding with the
 * command that resolves it. Reads only; changes nothing.
 */
@Command(
    name = "doctor",
    mixinStandardHelpOptions = true,
    description = {
      "Lists what would stop (ERROR) or surprise (WARN) the next start of a pipeline, or is worth"
          + " knowing (INFO), one finding per row, each with the command or action that resolves"
          + " it. Reads only.",
      "Checks: stored offsets below their partition's log start (retention deleted records) or"
          + " past its end (topic recreated, another cluster); stored offsets set outside the"
          + " library; source topics gone; partitions without a stored offset (added since) and"
          + " stored partitions the topic no longer has; for a Kafka sink's progress group, open"
          + " transactions of the pipeline's transactional ids and idle partitions whose stored"
          + " offset the broker may expire; for PostgreSQL and Cassandra, a writer epoch taken"
          + " longer than --idle-for ago with nothing committed since; for Cassandra, stored"
          + " offsets below their high-water mark (moved back outside the library).",
      "Exit codes: 0 nothing found (or INFO only), "
          + OffsetsTool.FOUND_WARNINGS
          + " WARN but no ERROR, "
          + OffsetsTool.FOUND_ERRORS
          + " at least one ERROR (the next start refuses), 1 failed, 2 wrong usage."
    })
final class DoctorCommand implements Callable<Integer> {
  /** How fix commands run the tool, as the library's own errors name it. */
  static final String TOOL = "bin/exactly-once-offsets";

  @ParentCommand OffsetsTool tool;
  @Spec picocli.CommandLine.Model.CommandSpec spec;
  @Mixin ConnectionOptions connection;

  @Option(names = "--pipeline", paramLabel = "ID", required = true, description = "The pipeline.")
  String pipeline;

  @Option(
      names = "--idle-for",
      paramLabel = "DURATION",
      defaultValue = "1h",
      converter = ResetCommand.DurationConverter.class,
      description =
          "A writer epoch taken longer ago than this with nothing committed since is reported"
              + " (PostgreSQL, Cassandra): 90s, 2m, 1h, PT2M (default: ${DEFAULT-VALUE}).")
  Duration idleFor;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    // The source first: a missing --bootstrap-servers is reported before the store is contacted.
    try (SourceLog source = connection.openSource("doctor");
        PipelineStore store = connection.openStore(tool.environment())) {
      List<PipelineState> states = store.read(pipeline);
      if (states.isEmpty()) {
        out.println(
            "pipeline '"
                + pipeline
                + "' has no stored offsets in "
                + store.describe()
                + ": check --pipeline and the store options (a pipeline that never committed"
                + " starts from its start position)");
        out.flush();
        return 1;
      }
      PipelineState state = states.get(0);
      List<Finding> findings = new ArrayList<>();
      Map<TopicPartition, Long> stored = new HashMap<>();
      for (PipelineState.Stored s : state.partitions()) {
        stored.put(s.tp(), s.offset());
        if (s.note() != null) {
          findings.add(
              Finding.of(
                  Severity.ERROR,
                  s.tp(),
                  "stored offset " + s.offset() + " " + s.note(),
                  reset(s.tp(), s.offset())));
        }
      }
      TreeSet<String> topics = new TreeSet<>();
      stored.keySet().forEach(tp -> topics.add(tp.topic()));
      Map<String, List<TopicPartition>> existing = source.existingPartitionsOf(topics);
      List<TopicPartition> partitions = new ArrayList<>();
      existing.values().forEach(partitions::addAll);
      Map<TopicPartition, Long> start = source.earliest(partitions);
      Map<TopicPartition, Long> end = source.end(partitions);

      for (String topic : topics) {
        if (!existing.containsKey(topic)) {
          findings.add(
              new Finding(
                  Severity.ERROR,
                  topic,
                  null,
                  "topic '"
                      + topic
                      + "' has stored offsets but does not exist at "
                      + connection.bootstrapServers
                      + ": the next start refuses to run while the job reads it",
                  "create the topic, or remove it from the job's topics (its stored offsets are"
                      + " then unused); check that --bootstrap-servers is the cluster the job"
                      + " reads"));
        }
      }
      for (TopicPartition tp : partitions) {
        Long s = stored.get(tp);
        long logStart = start.get(tp);
        long logEnd = end.get(tp);
        if (s == null) {
          findings.add(
              Finding.of(
                  Severity.WARN,
                  tp,
                  "no stored offset (a partition added since the pipeline last committed?): the"
                      + " next start reads it from the job's start position (earliest: its "
                      + (logEnd - logStart)
                      + " retained record(s), offsets "
                      + logStart
                      + ".."
                      + logEnd
                      + ")",
                  "none if that is wanted; to skip its records instead: " + reset(tp, logEnd)));
        } else if (s < logStart) {
          findings.add(
              Finding.of(
                  Severity.ERROR,
                  tp,
                  "stored offset "
                      + s
                      + " is below the log start "
                      + logStart
                      + " (retention deleted "
                      + (logStart - s)
                      + " record(s) the pipeline never processed): the next start refuses it",
                  "accept the loss and resume at the log start: " + reset(tp, logStart)));
        } else if (s > logEnd) {
          findings.add(
              Finding.of(
                  Severity.ERROR,
                  tp,
                  "stored offset "
                      + s
                      + " is past the log end "
                      + logEnd
                      + " (the topic was recreated, or --bootstrap-servers is not the cluster"
                      + " the offsets came from): the next start refuses it",
                  "if the topic was recreated, process its records from the start: "
                      + reset(tp, logStart)));
        }
      }
      stored.keySet().stream()
          .filter(tp -> existing.containsKey(tp.topic()) && !partitions.contains(tp))
          .forEach(
              tp ->
                  findings.add(
                      Finding.of(
                          Severity.WARN,
                          tp,
                          "stored offset "
                              + stored.get(tp)
                              + " for a partition topic '"
                              + tp.topic()
                              + "' no longer has (it has "
                              + existing.get(tp.topic()).size()
                              + "; was the topic recreated with fewer?): the start ignores it",
                          "none needed; if the topic was recreated, check its other partitions'"
                              + " offsets too")));

      Map<TopicPartition, Long> lastRecord =
          partitions.isEmpty() ? Map.of() : source.lastRecordTimes(partitions);
      findings.addAll(store.diagnose(state, end, lastRecord, idleFor));
      return print(out, store, findings);
    }
  }

  private int print(PrintWriter out, PipelineStore store, List<Finding> findings) {
    out.println(
        "doctor of pipeline '"
            + pipeline
            + "' in "
            + store.describe()
            + ", source at "
            + connection.bootstrapServers);
    if (findings.isEmpty()) {
      out.println("no findings: nothing would stop or surprise the next start.");
      out.flush();
      return 0;
    }
    findings.sort(
        Comparator.comparing(Finding::severity)
            .thenComparing(f -> f.topic() == null ? "" : f.topic())
            .thenComparing(f -> f.partition() == null ? -1 : f.partition().partition()));
    TextTable t = new TextTable("SEVERITY", "TOPIC", "PARTITION", "WHAT", "FIX");
    for (Finding f : findings) {
      t.row(
          f.severity(),
          f.topic(),
          f.partition() == null ? null : f.partition().partition(),
          f.what(),
          f.fix());
    }
    t.print(out);
    long errors = findings.stream().filter(f -> f.severity() == Severity.ERROR).count();
    long warnings = findings.stream().filter(f -> f.severity() == Severity.WARN).count();
    long infos = findings.size() - errors - warnings;
    out.println(
        errors
            + " error(s), "
            + warnings
            + " warning(s), "
            + infos
            + " info. Fix commands print their plan without --execute.");
    out.flush();
    if (errors > 0) {
      return OffsetsTool.FOUND_ERRORS;
    }
    return warnings > 0 ? OffsetsTool.FOUND_WARNINGS : 0;
  }

  /** The tool's reset of one partition to {@code offset}, with the same store and source. */
  private String reset(TopicPartition tp, long offset) {
    return TOOL
        + " reset --pipeline "
        + pipeline
        + " "
        + connection.asArguments(true)
        + " --to-offset "
        + tp.topic()
        + ":"
        + tp.partition()
        + "="
        + offset
        + " --execute"
        + (connection.kafkaStore() ? " --force" : "");
  }
}
