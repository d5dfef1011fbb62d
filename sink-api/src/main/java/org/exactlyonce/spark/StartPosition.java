package org.exactlyonce.spark;

import java.io.Serializable;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;

/**
 * Where a partition with no stored offset starts. The position is resolved to concrete offsets and
 * stored <em>before</em> the first batch, so a crash before the first commit restarts from the same
 * place (resolving "latest" twice would silently skip records). Partitions added to a topic later
 * always start at their earliest offset. Immutable.
 */
public final class StartPosition implements Serializable {
  private static final long serialVersionUID = 1L;

  /** The kinds of start position. */
  public enum Kind {
    EARLIEST,
    LATEST,
    EXPLICIT
  }

  private final Kind kind;
  private final Map<TopicPartition, Long> offsets;

  private StartPosition(Kind kind, Map<TopicPartition, Long> offsets) {
    this.kind = kind;
    this.offsets = Map.copyOf(offsets);
  }

  /** Start at the earliest offset Kafka still holds (the default). */
  public static StartPosition earliest() {
    return new StartPosition(Kind.EARLIEST, Map.of());
  }

  /** Start at the end of each partition as it is when the job first starts. */
  public static StartPosition latest() {
    return new StartPosition(Kind.LATEST, Map.of());
  }

  /**
   * Start each listed partition at the given offset; a partition not listed is an error at start.
   */
  public static StartPosition offsets(Map<TopicPartition, Long> offsets) {
    offsets.forEach(
        (tp, o) -> {
          if (o == null || o < 0) {
            throw new SinkConfigurationException(
                "explicit start offset for " + tp + " must be >= 0, got " + o);
          }
        });
    return new StartPosition(Kind.EXPLICIT, offsets);
  }

  public Kind kind() {
    return kind;
  }

  /** The explicit offsets (empty unless {@link #kind()} is {@code EXPLICIT}). */
  public Map<TopicPartition, Long> offsets() {
    return offsets;
  }

  @Override
  public String toString() {
    return kind == Kind.EXPLICIT ? "offsets" + offsets : kind.name().toLowerCase();
  }
}
