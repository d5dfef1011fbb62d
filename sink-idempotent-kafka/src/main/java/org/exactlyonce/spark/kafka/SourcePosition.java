package org.exactlyonce.spark.kafka;

import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;

/**
 * Where an output record came from: the source record's topic, partition and offset, and the
 * output's index among that record's outputs. Every record the Kafka sinks write carries it in the
 * header {@value #HEADER} as {@code topic:partition:offset:index}. Within one source partition,
 * positions are totally ordered, and a sink writes them in that order.
 *
 * @param topic the source record's topic
 * @param partition the source record's partition
 * @param offset the source record's offset
 * @param index the output's index among its source record's outputs (0 for the first)
 */
public record SourcePosition(String topic, int partition, long offset, int index)
    implements Comparable<SourcePosition> {

  /** The header that holds the position of every record the Kafka sinks write. */
  public static final String HEADER = "eos.source";

  /** The header that holds the id of the pipeline that wrote the record. */
  public static final String PIPELINE_HEADER = "eos.pipeline";

  /** The source partition. */
  public TopicPartition sourcePartition() {
    return new TopicPartition(topic, partition);
  }

  /** The header value: {@code topic:partition:offset:index}. */
  public String format() {
    return topic + ":" + partition + ":" + offset + ":" + index;
  }

  /** The header value, as UTF-8 bytes. */
  public byte[] toBytes() {
    return format().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * The position in {@code headers}, if the record has one.
   *
   * @throws IllegalArgumentException if the header is present but malformed
   */
  public static Optional<SourcePosition> of(Headers headers) {
    Header h = headers.lastHeader(HEADER);
    return h == null || h.value() == null
        ? Optional.empty()
        : Optional.of(parse(new String(h.value(), StandardCharsets.UTF_8)));
  }

  /**
   * Parses {@code topic:partition:offset:index}. Kafka topic names cannot contain ':', so the last
   * three fields are found from the right.
   *
   * @throws IllegalArgumentException if {@code text} is not a position
   */
  public static SourcePosition parse(String text) {
    int c3 = text.lastIndexOf(':');
    int c2 = c3 <= 0 ? -1 : text.lastIndexOf(':', c3 - 1);
    int c1 = c2 <= 0 ? -1 : text.lastIndexOf(':', c2 - 1);
    if (c1 <= 0) {
      throw new IllegalArgumentException(
          "'" + text + "' is not a source position (expected topic:partition:offset:index)");
    }
    try {
      return new SourcePosition(
          text.substring(0, c1),
          Integer.parseInt(text.substring(c1 + 1, c2)),
          Long.parseLong(text.substring(c2 + 1, c3)),
          Integer.parseInt(text.substring(c3 + 1)));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "'" + text + "' is not a source position (expected topic:partition:offset:index)", e);
    }
  }

  /**
   * Orders positions of the same source partition by offset, then index.
   *
   * @throws IllegalArgumentException for positions of different source partitions
   */
  @Override
  public int compareTo(SourcePosition o) {
    if (partition != o.partition || !topic.equals(o.topic)) {
      throw new IllegalArgumentException(
          "positions of different source partitions are not ordered: " + this + " and " + o);
    }
    int c = Long.compare(offset, o.offset);
    return c != 0 ? c : Integer.compare(index, o.index);
  }

  @Override
  public String toString() {
    return format();
  }
}
