package org.exactlyonce.spark.kafka.internal;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.utils.Utils;
import org.exactlyonce.spark.DeadLetter;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.kafka.SourcePosition;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;

/**
 * Sends outputs with their source position in a header, to a partition chosen deterministically: by
 * the murmur2 hash of the key (what Kafka's default partitioner does) or, without a key, the source
 * partition. A replay therefore sends every output to the partition it went to before, which keeps
 * the outputs of one source partition in order within each output partition.
 */
public final class Outputs {
  /** On an executor, after each output record handed to the producer. */
  public static final String AFTER_SEND = "kafka.after-send";

  /** In a Kafka transaction, after every output was sent and flushed, before the commit. */
  public static final String BEFORE_COMMIT = "kafka.before-commit";

  /** Dead-letter header: the error the mapper failed with. */
  public static final String ERROR_HEADER = "eos.error";

  private Outputs() {}

  /** Collects the first asynchronous send failure. */
  public static final class Failures implements Callback {
    private final AtomicReference<Exception> first = new AtomicReference<>();

    @Override
    public void onCompletion(org.apache.kafka.clients.producer.RecordMetadata m, Exception e) {
      if (e != null) {
        first.compareAndSet(null, e);
      }
    }

    /** Whether a send failed. */
    public boolean failed() {
      return first.get() != null;
    }

    /** Throws the first failure, if any, after {@code flush}. */
    public void check(String what) {
      Exception e = first.get();
      if (e != null) {
        throw new ExactlyOnceException(what + " failed: " + e, e);
      }
    }
  }

  /** Sends every output of {@code outputs}; returns how many. */
  public static <R> long sendAll(
      KafkaSpec<R> spec,
      Producer<byte[], byte[]> producer,
      Iterator<Positioned<R>> outputs,
      Failures failures) {
    int partitions = producer.partitionsFor(spec.topic()).size();
    Header pipeline =
        new RecordHeader(
            SourcePosition.PIPELINE_HEADER,
            spec.pipelineId().value().getBytes(StandardCharsets.UTF_8));
    long n = 0;
    while (outputs.hasNext()) {
      Positioned<R> o = outputs.next();
      byte[] key = spec.key() == null ? null : spec.key().apply(o.value());
      byte[] value = spec.value().apply(o.value());
      int partition =
          key == null
              ? o.partition() % partitions
              : Utils.toPositive(Utils.murmur2(key)) % partitions;
      SourcePosition position = new SourcePosition(o.topic(), o.partition(), o.offset(), o.index());
      List<Header> headers = new ArrayList<>(2);
      headers.add(new RecordHeader(SourcePosition.HEADER, position.toBytes()));
      headers.add(pipeline);
      producer.send(
          new ProducerRecord<>(spec.topic(), partition, null, key, value, headers), failures);
      n++;
      FaultPoints.reach(AFTER_SEND);
    }
    return n;
  }

  /** Sends dead letters to the dead-letter topic, keyed by their source position. */
  public static void sendDeadLetters(
      KafkaSpec<?> spec,
      Producer<byte[], byte[]> producer,
      List<DeadLetter> deadLetters,
      Failures failures) {
    if (deadLetters.isEmpty()) {
      return;
    }
    if (spec.deadLetterTopic() == null) {
      throw new IllegalStateException("dead letters without a dead-letter topic");
    }
    int partitions = producer.partitionsFor(spec.deadLetterTopic()).size();
    for (DeadLetter d : deadLetters) {
      SourcePosition position = new SourcePosition(d.topic(), d.partition(), d.offset(), 0);
      List<Header> headers = new ArrayList<>(3);
      headers.add(new RecordHeader(SourcePosition.HEADER, position.toBytes()));
      headers.add(
          new RecordHeader(
              SourcePosition.PIPELINE_HEADER,
              spec.pipelineId().value().getBytes(StandardCharsets.UTF_8)));
      headers.add(new RecordHeader(ERROR_HEADER, d.error().getBytes(StandardCharsets.UTF_8)));
      producer.send(
          new ProducerRecord<>(
              spec.deadLetterTopic(),
              d.partition() % partitions,
              null,
              d.key(),
              d.value(),
              headers),
          failures);
    }
  }
}
