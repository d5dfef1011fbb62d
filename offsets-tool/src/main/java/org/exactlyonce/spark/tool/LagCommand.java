package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import org.apache.kafka.common.TopicPartition;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code lag}: stored offsets against the source topics' end offsets. */
@Command(
    name = "lag",
    mixinStandardHelpOptions = true,
    description = {
      "Shows, per partition of the pipeline's source topics, the stored offset, the log's start"
          + " and end offsets (read at --bootstrap-servers) and the lag (end minus stored), with"
          + " the total.",
      "A partition with no stored offset starts at its earliest offset: its lag counts from there."
    })
final class LagCommand implements Callable<Integer> {
  @ParentCommand OffsetsTool tool;
  @Spec picocli.CommandLine.Model.CommandSpec spec;
  @Mixin ConnectionOptions connection;

  @Option(names = "--pipeline", paramLabel = "ID", required = true, description = "The pipeline.")
  String pipeline;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (PipelineStore store = connection.openStore(tool.environment());
        SourceLog source = connection.openSource("lag")) {
      Map<TopicPartition, Long> stored = new HashMap<>();
      store
          .read(pipeline)
          .forEach(s -> s.partitions().forEach(p -> stored.put(p.tp(), p.offset())));
      if (stored.isEmpty()) {
        out.println("pipeline '" + pipeline + "' has no stored offsets in " + store.describe());
        out.flush();
        return 1;
      }
      TreeSet<String> topics = new TreeSet<>();
      stored.keySet().forEach(tp -> topics.add(tp.topic()));
      List<TopicPartition> partitions = source.partitionsOf(topics);
      Map<TopicPartition, Long> start = source.earliest(partitions);
      Map<TopicPartition, Long> end = source.end(partitions);
      out.println("pipeline '" + pipeline + "' in " + store.describe());
      TextTable t =
          new TextTable("TOPIC", "PARTITION", "STORED", "LOG-START", "LOG-END", "LAG", "NOTE");
      long total = 0;
      for (TopicPartition tp : partitions) {
        Long s = stored.get(tp);
        long from = s == null ? start.get(tp) : s;
        long lag = Math.max(0, end.get(tp) - from);
        total += lag;
        String note = null;
        if (s == null) {
          note = "no stored offset: starts at its earliest";
        } else if (s < start.get(tp)) {
          note = "below the log start (retention deleted records): the next start refuses it";
        } else if (s > end.get(tp)) {
          note = "past the log end (topic recreated?): the next start refuses it";
        }
        t.row(tp.topic(), tp.partition(), s, start.get(tp), end.get(tp), lag, note);
      }
      stored.keySet().stream()
          .filter(tp -> !partitions.contains(tp))
          .sorted(
              java.util.Comparator.comparing(TopicPartition::topic)
                  .thenComparing(TopicPartition::partition))
          .forEach(
              tp ->
                  t.row(
                      tp.topic(),
                      tp.partition(),
                      stored.get(tp),
                      null,
                      null,
                      null,
                      "the topic has no such partition any more"));
      t.print(out);
      out.println("TOTAL LAG " + total);
      out.flush();
      return 0;
    }
  }
}
