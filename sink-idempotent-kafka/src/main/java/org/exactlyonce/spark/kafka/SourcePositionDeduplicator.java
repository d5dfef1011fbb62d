package org.exactlyonce.spark.kafka;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * Drops replayed records for a reader that cannot use {@code isolation.level=read_committed}, or
 * that reads the output of {@link KafkaSink#idempotent}: it keeps, per output partition and source
 * partition, the highest {@link SourcePosition} seen, and drops every record at or below it.
 *
 * <p>This is exact because the sinks send the outputs of one source partition in position order,
 * every attempt starting at or before where the last committed one ended, and Kafka keeps the order
 * of one producer's records within an output partition: a replay can only repeat positions already
 * seen. Memory is one position per (output partition, source partition), not per record.
 *
 * <p>Records without the {@value SourcePosition#HEADER} header (not written by a sink of this
 * library) are always kept. Not thread-safe: use one per consumer. To resume after a restart, seed
 * it with {@link #seen} from the last position you processed of each pair, or re-read the output
 * from its beginning.
 */
public final class SourcePositionDeduplicator {
  private final Map<Key, SourcePosition> highest = new HashMap<>();
  private long dropped;

  private record Key(TopicPartition output, TopicPartition source) {}

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
    Key key = new Key(new TopicPartition(record.topic(), record.partition()), p.sourcePartition());
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
   * Marks {@code position} as processed for output partition {@code output}, for example when
   * resuming from a position stored with the reader's own results.
   */
  public void seen(TopicPartition output, SourcePosition position) {
    highest.merge(
        new Key(output, position.sourcePartition()),
        position,
        (a, b) -> a.compareTo(b) >= 0 ? a : b);
  }

  /** The records dropped so far. */
  public long dropped() {
    return dropped;
  }

  /** The (output partition, source partition) pairs tracked: the memory this helper holds. */
  public int tracked() {
    return highest.size();
  }
}
