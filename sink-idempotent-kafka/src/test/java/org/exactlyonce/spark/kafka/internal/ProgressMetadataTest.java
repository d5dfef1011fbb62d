package org.exactlyonce.spark.kafka.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.junit.jupiter.api.Test;

class ProgressMetadataTest {

  @Test
  void theEpochMarkerRecordsTheEpochAndThePartitionCountsOfEveryTopic() {
    OffsetAndMetadata marker =
        new OffsetAndMetadata(7, Progress.markerMetadata(7, Map.of("clicks", 4, "a.b-c_d", 12)));
    assertThat(marker.metadata()).isEqualTo("eos:epoch=7;known=a.b-c_d:12,clicks:4");
    assertThat(Progress.epochOf(marker)).isEqualTo(7);
    assertThat(Progress.knownPartitions(marker)).isEqualTo(Map.of("clicks", 4, "a.b-c_d", 12));
  }

  @Test
  void aMarkerOrOffsetWithoutCountsRecordsNone() {
    OffsetAndMetadata plain = new OffsetAndMetadata(3, Progress.metadata(3));
    assertThat(plain.metadata()).isEqualTo("eos:epoch=3");
    assertThat(Progress.epochOf(plain)).isEqualTo(3);
    assertThat(Progress.knownPartitions(plain)).isNull();
    assertThat(Progress.knownPartitions(null)).isNull();
    assertThat(Progress.markerMetadata(3, Map.of())).isEqualTo("eos:epoch=3");
  }

  @Test
  void metadataThatIsNotTheSinksCountsForNothing() {
    assertThat(Progress.epochOf(new OffsetAndMetadata(1, "someone else's"))).isZero();
    assertThat(Progress.epochOf(new OffsetAndMetadata(1, "eos:epoch=x;known=t:1"))).isZero();
    assertThat(Progress.knownPartitions(new OffsetAndMetadata(1, "eos:epoch=1;known=t:x")))
        .isNull();
  }
}
