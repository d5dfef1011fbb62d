package org.exactlyonce.spark.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.ServerSocket;
import java.time.Duration;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;

class VisibleEndsTest {

  /**
   * An end that could not be checked may sit on a commit marker: the partition is left out of the
   * batch (an empty range) instead of keeping Spark's unchecked end.
   */
  @Test
  void aPartitionWhoseEndCannotBeCheckedWaitsForTheNextBatch() throws Exception {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort(); // closed again when the probe runs: nothing answers
    }
    TopicPartition tp = new TopicPartition("t", 0);
    try (VisibleEnds ends =
        new VisibleEnds(
            Map.of("bootstrap.servers", "127.0.0.1:" + closedPort, "default.api.timeout.ms", 1_000),
            Duration.ofSeconds(1))) {
      assertThat(ends.adjust(Map.of(tp, 5L), Map.of(tp, 10L), Map.of(tp, 10L)))
          .containsEntry(tp, 5L);
    }
  }
}
