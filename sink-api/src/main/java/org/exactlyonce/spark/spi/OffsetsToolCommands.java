package org.exactlyonce.spark.spi;

import java.util.Comparator;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PipelineId;

/**
 * The offsets tool's commands that the library's errors name, so that a user resolves a refused
 * start without SQL against the offsets table or a consumer-group reset the start refuses.
 */
public final class OffsetsToolCommands {
  /** How a checkout runs the tool (the artifact's main class is {@code ...tool.OffsetsTool}). */
  static final String TOOL = "bin/exactly-once-offsets";

  private OffsetsToolCommands() {}

  /**
   * The sentence {@code " <what> with the offsets tool (...): <command>."} for a reset of {@code
   * pipeline} to {@code to}, or "" when the tool cannot reach the store ({@code storeOptions} null)
   * or {@code to} is empty.
   *
   * @param what how the sentence starts, for example "Put them back"
   * @param sourceServers the {@code bootstrap.servers} the stream reads from, null if not known
   *     here
   * @param storeOptions the tool's options naming the store ({@link
   *     org.exactlyonce.spark.spi.OffsetStore#offsetsToolResetOptions()})
   */
  public static String resetSentence(
      String what,
      PipelineId pipeline,
      Object sourceServers,
      String storeOptions,
      Map<TopicPartition, Long> to) {
    if (to.isEmpty()) {
      return "";
    }
    return resetSentence(what, pipeline, sourceServers, storeOptions, toOffsets(to));
  }

  /**
   * {@code topic:partition=offset,...} in partition order, as the tool's {@code --to-offset} takes
   * them.
   */
  public static String toOffsets(Map<TopicPartition, Long> to) {
    return to.entrySet().stream()
        .sorted(
            Map.Entry.comparingByKey(
                Comparator.comparing(TopicPartition::topic)
                    .thenComparingInt(TopicPartition::partition)))
        .map(e -> e.getKey().topic() + ":" + e.getKey().partition() + "=" + e.getValue())
        .collect(Collectors.joining(","));
  }

  /**
   * As {@link #resetSentence(String, PipelineId, Object, String, Map)}, with the {@code
   * --to-offset} argument given as text (for example with a placeholder for an offset only the user
   * can tell).
   */
  public static String resetSentence(
      String what, PipelineId pipeline, Object sourceServers, String storeOptions, String offsets) {
    if (storeOptions == null) {
      return "";
    }
    return " "
        + what
        + " with the offsets tool (prints the plan without --execute): "
        + TOOL
        + " reset --pipeline "
        + pipeline
        + " --bootstrap-servers "
        + servers(sourceServers)
        + " "
        + storeOptions
        + " --to-offset "
        + offsets
        + " --execute.";
  }

  private static String servers(Object s) {
    if (s == null) {
      return "<the brokers the stream reads from>";
    }
    return s instanceof java.util.Collection<?> c
        ? c.stream().map(String::valueOf).collect(Collectors.joining(","))
        : s.toString();
  }
}
