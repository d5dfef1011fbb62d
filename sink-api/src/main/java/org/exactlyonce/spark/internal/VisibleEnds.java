package org.exactlyonce.spark.internal;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses batch end offsets that a direct stream can read when a topic holds transaction markers or
 * aborted records (SPARK-24720).
 *
 * <p>Spark's iterator for non-consecutive offsets ends a partition when it has returned the record
 * at {@code until - 1}; if that offset is a commit marker or an aborted record, it polls for a
 * record that never comes (nothing visible follows up to the end offset) and fails after {@code
 * spark.streaming.kafka.consumer.poll.ms}. A range whose offsets are all invisible makes it return
 * a record from <em>after</em> the range. So every range this class chooses either is empty or ends
 * on a visible record: its end is cut back to just after the last visible record before it, or,
 * when the range has none, moved forward to just after the first visible record (if one exists
 * before the partition's end; otherwise the range stays empty until one does). Offsets stay
 * positions: a range may hold markers and gaps, and its size is not its record count.
 *
 * <p>Runs on the driver with a consumer of its own (isolation level as the stream's). Not
 * thread-safe: called by Spark's job generator only.
 */
public final class VisibleEnds implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(VisibleEnds.class);

  private final Map<String, Object> params;
  private final Duration timeout;
  private KafkaConsumer<byte[], byte[]> consumer;

  public VisibleEnds(Map<String, Object> streamParams, Duration timeout) {
    Map<String, Object> p = KafkaParams.forMetadataConsumer(streamParams);
    p.remove(ConsumerConfig.GROUP_ID_CONFIG); // assign() only: no group, nothing committed
    p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 10);
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 2000);
    // Probes need a record or two per partition, not Kafka's default megabyte of each.
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 64 * 1024);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, "eos-visible-ends");
    this.params = p;
    this.timeout = timeout;
  }

  /**
   * Returns the end offset to use for each partition: {@code until} adjusted so that the range
   * {@code [from, until)} is empty or ends on a visible record; {@code latest} bounds the search
   * forward.
   */
  public Map<TopicPartition, Long> adjust(
      Map<TopicPartition, Long> from,
      Map<TopicPartition, Long> until,
      Map<TopicPartition, Long> latest) {
    Map<TopicPartition, Long> adjusted = new HashMap<>(until);
    long deadline = System.nanoTime() + timeout.toNanos();
    Map<TopicPartition, Long> nonEmpty = new HashMap<>();
    until.forEach(
        (tp, u) -> {
          if (u > from.getOrDefault(tp, u)) {
            nonEmpty.put(tp, u);
          }
        });
    if (nonEmpty.isEmpty()) {
      return adjusted;
    }
    // The common case, checked for all partitions in one pass: the record just before the end is
    // visible, so the end stands. Only the others are searched one by one.
    Set<TopicPartition> endOnARecord;
    try {
      endOnARecord = lastIsVisible(nonEmpty, deadline);
    } catch (RuntimeException ex) {
      LOG.warn("could not probe the batch ends {}: {}", nonEmpty, ex.toString());
      close(); // a fresh consumer next time
      endOnARecord = Set.of();
    }
    for (Map.Entry<TopicPartition, Long> e : nonEmpty.entrySet()) {
      TopicPartition tp = e.getKey();
      if (endOnARecord.contains(tp)) {
        continue;
      }
      long f = from.getOrDefault(tp, e.getValue());
      long u = e.getValue();
      try {
        long last = lastVisible(tp, f, u, deadline);
        long end;
        if (last >= 0) {
          end = last + 1;
        } else {
          long first = firstVisible(tp, u, latest.getOrDefault(tp, u), deadline);
          end = first >= 0 ? first + 1 : f;
        }
        if (end != u) {
          LOG.debug("{}: batch end {} -> {} (markers or aborted records at the end)", tp, u, end);
        }
        adjusted.put(tp, end);
      } catch (RuntimeException ex) {
        // An end that could not be checked may sit on a marker or an aborted record, which no
        // reader can finish: leave the partition out of this batch (an empty range) and probe
        // again with the next one, rather than hand Spark an end nobody verified.
        adjusted.put(tp, f);
        LOG.warn(
            "{}: could not look for the last visible record before {} ({}); the partition waits"
                + " for the next batch",
            tp,
            u,
            ex.toString());
        close(); // a fresh consumer next time
      }
    }
    return adjusted;
  }

  /**
   * The partitions whose record at {@code until - 1} is visible: one consumer assigned to all of
   * them, each positioned on that offset, polled until every position has passed it.
   */
  private Set<TopicPartition> lastIsVisible(Map<TopicPartition, Long> until, long deadline) {
    KafkaConsumer<byte[], byte[]> c = consumer();
    c.assign(until.keySet());
    until.forEach((tp, u) -> c.seek(tp, u - 1));
    Set<TopicPartition> visible = new HashSet<>();
    Set<TopicPartition> open = new HashSet<>(until.keySet());
    while (!open.isEmpty()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("timed out probing " + open);
      }
      ConsumerRecords<byte[], byte[]> records = c.poll(Duration.ofMillis(100));
      for (java.util.Iterator<TopicPartition> it = open.iterator(); it.hasNext(); ) {
        TopicPartition tp = it.next();
        long last = until.get(tp) - 1;
        for (ConsumerRecord<byte[], byte[]> r : records.records(tp)) {
          if (r.offset() == last) {
            visible.add(tp);
          }
        }
        // Past the last offset, by a record or over a marker or an aborted record.
        if (visible.contains(tp) || c.position(tp) > last) {
          it.remove();
          c.pause(List.of(tp)); // nothing more to fetch from it
        }
      }
    }
    c.resume(c.paused());
    return visible;
  }

  /** The offset of the last visible record in [from, until), or -1. */
  private long lastVisible(TopicPartition tp, long from, long until, long deadline) {
    long window = 1;
    while (true) {
      long start = Math.max(from, until - window);
      long last = -1;
      for (ConsumerRecord<byte[], byte[]> r : read(tp, start, until, false, deadline)) {
        last = Math.max(last, r.offset());
      }
      if (last >= 0 || start == from) {
        return last;
      }
      window *= 16;
    }
  }

  /** The offset of the first visible record in [from, end), or -1. */
  private long firstVisible(TopicPartition tp, long from, long end, long deadline) {
    if (end <= from) {
      return -1;
    }
    List<ConsumerRecord<byte[], byte[]>> rs = read(tp, from, end, true, deadline);
    return rs.isEmpty() ? -1 : rs.get(0).offset();
  }

  /** The visible records of [start, end) (only the first one if {@code first}). */
  private List<ConsumerRecord<byte[], byte[]>> read(
      TopicPartition tp, long start, long end, boolean first, long deadline) {
    KafkaConsumer<byte[], byte[]> c = consumer();
    c.assign(List.of(tp));
    c.seek(tp, start);
    List<ConsumerRecord<byte[], byte[]>> out = new java.util.ArrayList<>();
    // The position moves past markers and aborted records even when a poll returns nothing.
    while (c.position(tp) < end) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "timed out reading " + tp + " [" + start + ", " + end + ")");
      }
      for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100)).records(tp)) {
        if (r.offset() >= end) {
          return out;
        }
        out.add(r);
        if (first) {
          return out;
        }
      }
    }
    return out;
  }

  private KafkaConsumer<byte[], byte[]> consumer() {
    if (consumer == null) {
      consumer = new KafkaConsumer<>(params);
    }
    return consumer;
  }

  @Override
  public void close() {
    if (consumer != null) {
      consumer.close(Duration.ofSeconds(1));
      consumer = null;
    }
  }
}
