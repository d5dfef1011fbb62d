package org.exactlyonce.spark.kafka;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;

/**
 * Drops replayed records for a reader that cannot use {@code isolation.level=read_committed}, or
 * that reads the output of {@link KafkaSink#idempotent}: it keeps, per output partition, pipeline
 * ({@value SourcePosition#PIPELINE_HEADER} header) and source partition, the highest {@link
 * SourcePosition} seen, and drops every record at or below it. Two pipelines that read the same
 * source and write one topic are told apart, so neither drops the other's records.
 *
 * <p>This is exact under one precondition: within an output partition, the records of one pipeline
 * and source partition reach the log in position order, and an attempt never leaves a position out
 * while a later one of the same attempt reaches the log. The sinks make it hold: they send the
 * outputs of one source partition in position order, every attempt starting at or before where the
 * last committed one ended; they stop sending at the first failed send (an output too large for the
 * producer goes to the dead-letter topic instead, or fails the task before anything after it is
 * sent); and one idempotent producer keeps its order within a partition across its own retries. A
 * reader that meets records of a writer that does not keep this order (its own producer with
 * retries and {@code max.in.flight.requests.per.connection > 1} without idempotence, for example)
 * must not use it. Memory is one position per (output partition, pipeline, source partition), not
 * per record.
 *
 * <p>Records without the {@value SourcePosition#HEADER} header (not written by a sink of this
 * library) are always kept. Not thread-safe: use one per consumer. To resume after a restart, seed
 * it with {@link #seen} from the last position you processed of each pair, or re-read the output
 * from its beginning.
 */
public final class SourcePositionDeduplicator {
  private final Map<Key, SourcePosition> highest = new HashMap<>();
  private long dropped;

  private record Key(TopicPartition output, String pipeline, TopicPartition source) {}

  private static String pipelineOf(ConsumerRecord<?, ?> record) {
    Header h = record.headers().lastHeader(SourcePosition.PIPELINE_HEADER);
    return h == null || h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8);
  }

  /**
   * Whether {@code record} is the first copy of its position read from its output partition;
   * records it returns false for are replays to drop.
   *
   * @throws IllegalArgumentException if the position header is malformed
   */
  public boolean isFirst(ConsumerRecord<?, ?> record) {
    Optional<SourcePosition> position = SourcePosition.of(record.headers());
    if (position.isEmpty()) {
      return true;
    }
    SourcePosition p = position.get();
    Key key =
        new Key(
            new TopicPartition(record.topic(), record.partition()),
            pipelineOf(record),
            p.sourcePartition());
    SourcePosition last = highest.get(key);
    if (last != null && p.compareTo(last) <= 0) {
      dropped++;
      return false;
    }
    highest.put(key, p);
    return true;
  }

  /** The records of {@code records} that {@link #isFirst} keeps, in order. */
  public <K, V> List<ConsumerRecord<K, V>> filter(Iterable<ConsumerRecord<K, V>> records) {
    List<ConsumerRecord<K, V>> kept = new ArrayList<>();
    for (ConsumerRecord<K, V> r : records) {
      if (isFirst(r)) {
        kept.add(r);
      }
    }
    return kept;
  }

  /**
   * Marks {@code lastProcessed} as processed, for example when resuming from the last record whose
   * results the reader stored with its own: every record of its output partition, pipeline and
   * source partition at or before its position is then dropped.
   *
   * @throws IllegalArgumentException if the record has no position header
   */
  public void seen(ConsumerRecord<?, ?> lastProcessed) {
    SourcePosition p =
        SourcePosition.of(lastProcessed.headers())
            .orElseThrow(
                () ->
                    new IllegalArgumentException(
                        "the record has no " + SourcePosition.HEADER + " header"));
    seen(
        new TopicPartition(lastProcessed.topic(), lastProcessed.partition()),
        pipelineOf(lastProcessed),
        p);
  }

  /**
   * Marks {@code position} of pipeline {@code pipeline} (null: records without the pipeline header)
   * as processed for output partition {@code output}.
   */
  public void seen(TopicPartition output, String pipeline, SourcePosition position) {
    highest.merge(
        new Key(output, pipeline, position.sourcePartition()),
        position,
        (a, b) -> a.compareTo(b) >= 0 ? a : b);
  }

  /** The records dropped so far. */
  public long dropped() {
    return dropped;
  }

  /**
   * The (output partition, pipeline, source partition) triples tracked: the memory this helper
   * holds.
   */
  public int tracked() {
    return highest.size();
  }
}
