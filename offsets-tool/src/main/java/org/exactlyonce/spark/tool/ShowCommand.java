package org.exactlyonce.spark.tool;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/** {@code show}: the pipelines of a store, their writer epoch and stored offsets. */
@Command(
    name = "show",
    mixinStandardHelpOptions = true,
    description = {
      "Shows the stored offsets (the next offset to process) of every partition of a pipeline, the"
          + " writer epoch that wrote each, when it was last written, and the pipeline's current"
          + " writer epoch (when and by which process it was taken, where the store records it).",
      "Without --pipeline, every pipeline of a PostgreSQL or Cassandra offsets table."
    })
final class ShowCommand implements Callable<Integer> {
  @ParentCommand OffsetsTool tool;
  @Spec picocli.CommandLine.Model.CommandSpec spec;
  @Mixin ConnectionOptions connection;

  @Option(names = "--pipeline", paramLabel = "ID", description = "The pipeline id.")
  String pipeline;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    try (PipelineStore store = connection.openStore(tool.environment())) {
      List<PipelineState> states = store.read(pipeline);
      out.println(store.describe());
      if (states.isEmpty()) {
        out.println(
            pipeline == null
                ? "no pipeline has stored offsets there"
                : "pipeline '" + pipeline + "' has no stored offsets there");
        out.flush();
        return pipeline == null ? 0 : 1;
      }
      for (PipelineState s : states) {
        out.println();
        out.println(
            "pipeline '"
                + s.pipeline()
                + "': writer epoch "
                + (s.writerEpoch() == null ? "none" : s.writerEpoch())
                + (s.epochTakenAt() == null ? "" : ", taken " + s.epochTakenAt())
                + (s.takenBy() == null ? "" : " by " + s.takenBy()));
        TextTable t =
            new TextTable("TOPIC", "PARTITION", "OFFSET", "EPOCH", "LAST-WRITTEN", "NOTE");
        s.partitions()
            .forEach(
                p ->
                    t.row(
                        p.tp().topic(),
                        p.tp().partition(),
                        p.offset(),
                        p.epoch(),
                        p.committedAt(),
                        p.note()));
        t.print(out);
      }
      out.flush();
      return 0;
    }
  }
}
