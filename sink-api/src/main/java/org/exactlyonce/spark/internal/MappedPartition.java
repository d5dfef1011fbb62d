package org.exactlyonce.spark.internal;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.exactlyonce.spark.DeadLetter;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;

/** The outputs of one direct-stream partition: its records, trimmed and mapped lazily. */
public final class MappedPartition<K, V, R> implements PartitionOutputs<R> {
  private final Iterator<ConsumerRecord<K, V>> records;
  private final RecordMapper<K, V, R> mapper;
  private final SourceRange range;
  private final boolean deadLetter;
  private final List<DeadLetter> deadLetters = new ArrayList<>();
  private long recordsRead;
  private boolean opened;

  /** Outputs of a partition whose bad records fail the task. */
  public MappedPartition(
      Iterator<ConsumerRecord<K, V>> records, RecordMapper<K, V, R> mapper, SourceRange range) {
    this(records, mapper, range, false);
  }

  /**
   * Outputs of a partition; with {@code deadLetter}, a record the mapper fails on becomes a {@link
   * DeadLetter} instead of failing the task.
   */
  public MappedPartition(
      Iterator<ConsumerRecord<K, V>> records,
      RecordMapper<K, V, R> mapper,
      SourceRange range,
      boolean deadLetter) {
    this.records = records;
    this.mapper = mapper;
    this.range = range;
    this.deadLetter = deadLetter;
  }

  @Override
  public List<DeadLetter> deadLetters() {
    return deadLetters;
  }

  @Override
  public long recordsRead() {
    return recordsRead;
  }

  @Override
  public Iterator<Positioned<R>> positionedFrom(long offset) {
    if (opened) {
      throw new IllegalStateException("the outputs of " + range + " can be read only once");
    }
    opened = true;
    return new Iterator<>() {
      private Iterator<R> current = Collections.emptyIterator();
      private ConsumerRecord<K, V> source;
      private int index;
      private final long middle = range.from() + (range.until() - range.from()) / 2;
      private boolean halfway;

      @Override
      public boolean hasNext() {
        while (!current.hasNext()) {
          if (!records.hasNext()) {
            return false;
          }
          ConsumerRecord<K, V> record = records.next();
          check(record);
          if (record.offset() < offset) {
            continue; // committed by an earlier attempt: trimmed
          }
          recordsRead++;
          if (!halfway && record.offset() >= middle) {
            halfway = true;
            FaultPoints.reach(FaultPoints.TASK_MID_WRITE);
          }
          current = map(record);
          source = record;
          index = 0;
        }
        return true;
      }

      @Override
      public Positioned<R> next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return new Positioned<>(
            current.next(), source.topic(), source.partition(), source.offset(), index++);
      }
    };
  }

  private void check(ConsumerRecord<K, V> record) {
    if (record.partition() != range.partition()
        || !record.topic().equals(range.topic())
        || record.offset() < range.from()
        || record.offset() >= range.until()) {
      throw new ExactlyOnceException(
          "record "
              + record.topic()
              + "-"
              + record.partition()
              + "@"
              + record.offset()
              + " is outside the offset range "
              + range
              + " of its RDD partition: the RDD no longer maps partition i to offset range i"
              + " (was it repartitioned or shuffled?). Write per-record outputs from the direct"
              + " stream itself, or use a per-batch sink for results computed after a shuffle.");
    }
  }

  private Iterator<R> map(ConsumerRecord<K, V> record) {
    Iterable<R> outputs;
    try {
      outputs = mapper.apply(record);
    } catch (Exception e) {
      if (deadLetter) {
        deadLetters.add(DeadLetter.of(record, e.toString()));
        return Collections.emptyIterator();
      }
      throw new ExactlyOnceException(
          "the record mapper failed on record "
              + record.topic()
              + "-"
              + record.partition()
              + "@"
              + record.offset()
              + ": "
              + e,
          e);
    }
    if (outputs == null) {
      if (deadLetter) {
        deadLetters.add(DeadLetter.of(record, "the record mapper returned null"));
        return Collections.emptyIterator();
      }
      throw new ExactlyOnceException(
          "the record mapper returned null for record "
              + record.topic()
              + "-"
              + record.partition()
              + "@"
              + record.offset()
              + "; return an empty list to write nothing for a record");
    }
    return outputs.iterator();
  }
}
