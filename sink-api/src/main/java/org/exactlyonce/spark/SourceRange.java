package org.exactlyonce.spark;

import java.io.Serializable;
import java.util.Objects;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.kafka010.OffsetRange;

/**
 * The Kafka offsets {@code [from, until)} of one topic partition that one RDD partition of a
 * direct-stream batch holds. Offsets are <em>positions</em>, not counts: a range may contain
 * offsets that hold no record (transaction markers, compacted records), so {@code until - from} is
 * never a record count. Immutable and thread-safe.
 */
public final class SourceRange implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String topic;
  private final int partition;
  private final long from;
  private final long until;

  private SourceRange(String topic, int partition, long from, long until) {
    this.topic = topic;
    this.partition = partition;
    this.from = from;
    this.until = until;
  }

  /**
   * Returns the range {@code [from, until)} of {@code topic}-{@code partition}.
   *
   * @throws IllegalArgumentException if {@code topic} is empty, {@code partition} or {@code from}
   *     is negative, or {@code from > until}
   */
  public static SourceRange of(String topic, int partition, long from, long until) {
    if (topic == null || topic.isEmpty()) {
      throw new IllegalArgumentException("topic must not be empty");
    }
    if (partition < 0) {
      throw new IllegalArgumentException("partition must be >= 0, got " + partition);
    }
    if (from < 0 || from > until) {
      throw new IllegalArgumentException(
          "a range needs 0 <= from <= until (until is exclusive), got ["
              + from
              + ", "
              + until
              + ") for "
              + topic
              + "-"
              + partition);
    }
    return new SourceRange(topic, partition, from, until);
  }

  /** Converts Spark's offset range. */
  public static SourceRange of(OffsetRange range) {
    return of(range.topic(), range.partition(), range.fromOffset(), range.untilOffset());
  }

  public String topic() {
    return topic;
  }

  public int partition() {
    return partition;
  }

  /** The first offset of the range. */
  public long from() {
    return from;
  }

  /** The offset after the last one of the range (exclusive). */
  public long until() {
    return until;
  }

  /** Whether the range holds no offset at all. */
  public boolean isEmpty() {
    return from == until;
  }

  public TopicPartition topicPartition() {
    return new TopicPartition(topic, partition);
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof SourceRange)) {
      return false;
    }
    SourceRange r = (SourceRange) o;
    return partition == r.partition && from == r.from && until == r.until && topic.equals(r.topic);
  }

  @Override
  public int hashCode() {
    return Objects.hash(topic, partition, from, until);
  }

  /** For example {@code clicks-3[100, 200)}. */
  @Override
  public String toString() {
    return topic + "-" + partition + "[" + from + ", " + until + ")";
  }
}
