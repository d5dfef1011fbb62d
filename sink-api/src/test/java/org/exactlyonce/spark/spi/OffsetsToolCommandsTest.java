package org.exactlyonce.spark.spi;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PipelineId;
import org.junit.jupiter.api.Test;

class OffsetsToolCommandsTest {
  private static final PipelineId ID = PipelineId.of("clicks");

  @Test
  void aResetCommandNamesPipelineClustersStoreAndOffsetsInPartitionOrder() {
    assertThat(
            OffsetsToolCommands.resetSentence(
                "Or",
                ID,
                List.of("k1:9092", "k2:9092"),
                "--jdbc-url jdbc:postgresql://db/ads",
                Map.of(new TopicPartition("t", 1), 7L, new TopicPartition("t", 0), 5L)))
        .isEqualTo(
            " Or with the offsets tool (prints the plan without --execute):"
                + " bin/exactly-once-offsets reset --pipeline clicks --bootstrap-servers"
                + " k1:9092,k2:9092 --jdbc-url jdbc:postgresql://db/ads --to-offset t:0=5,t:1=7"
                + " --execute.");
  }

  @Test
  void nothingIsSuggestedWhereTheToolCannotReachTheStoreOrNothingMoves() {
    Map<TopicPartition, Long> to = Map.of(new TopicPartition("t", 0), 5L);
    assertThat(OffsetsToolCommands.resetSentence("Or", ID, "k:9092", null, to)).isEmpty();
    assertThat(OffsetsToolCommands.resetSentence("Or", ID, "k:9092", "--x", Map.of())).isEmpty();
    assertThat(OffsetsToolCommands.resetSentence("Or", ID, null, "--x", to))
        .contains("--bootstrap-servers <the brokers the stream reads from> --x");
  }
}
