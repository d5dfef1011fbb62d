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

  /**
   * Collects the first asynchronous send failure, and the outputs too large to send (which go to
   * the dead-letter topic with the dead letters, see {@link #sendDeadLetters}).
   */
  public static final class Failures implements Callback {
    private final AtomicReference<Exception> first = new AtomicReference<>();
    private final List<TooLarge> tooLarge = new ArrayList<>();

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

  /** An output larger than a producer request may be: it goes to the dead-letter topic. */
  private record TooLarge(SourcePosition position, int bytes, long limit) {}

  /** Bytes a record adds to a request beyond its key, value and headers, at most. */
  private static final int RECORD_OVERHEAD = 61 + 21;

  /** The producer's {@code max.request.size}: no record larger than that can be sent. */
  private static long maxRequestSize(KafkaSpec<?> spec) {
    String v = spec.producerConfig().get("max.request.size");
    if (v == null) {
      v = spec.clientConfig().get("max.request.size");
    }
    return v == null ? 1024 * 1024 : Long.parseLong(v.trim());
  }

  private static int sizeOf(byte[] key, byte[] value, List<Header> headers) {
    int n = RECORD_OVERHEAD + (key == null ? 0 : key.length) + (value == null ? 0 : value.length);
    for (Header h : headers) {
      n += h.key().length() + (h.value() == null ? 0 : h.value().length) + 10;
    }
    return n;
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
    long limit = maxRequestSize(spec);
    long n = 0;
    while (outputs.hasNext()) {
      if (failures.failed()) {
        // Stop at the first failure: an output after a failed one must not reach the log in the
        // same attempt (readers that drop replays by position rely on it; see
        // SourcePositionDeduplicator). Send failures of records too large for the producer are
        // reported to the callback at once, others as soon as the broker answers.
        break;
      }
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
      int bytes = sizeOf(key, value, headers);
      if (bytes > limit) {
        if (spec.deadLetterTopic() == null) {
          throw new ExactlyOnceException(
              "pipeline '"
                  + spec.pipelineId()
                  + "': the output at source position "
                  + position.format()
                  + " is about "
                  + bytes
                  + " bytes, more than the producer's max.request.size ("
                  + limit
                  + "), so Kafka refuses it on every attempt. Raise max.request.size"
                  + " (producerProperty) and the topic's max.message.bytes, or set"
                  + " deadLetterTopic(...) to route such outputs there");
        }
        failures.tooLarge.add(new TooLarge(position, bytes, limit));
        continue;
      }
      producer.send(
          new ProducerRecord<>(spec.topic(), partition, null, key, value, headers), failures);
      n++;
      FaultPoints.reach(AFTER_SEND);
    }
    return n;
  }

  /** A record for the dead-letter topic. */
  private record Letter(SourcePosition position, byte[] key, byte[] value, String error) {}

  /**
   * Sends dead letters (records the mapper failed on) and the outputs {@link #sendAll} found too
   * large to the dead-letter topic, in source position order (so that a reader dropping replays by
   * position keeps them all), each to the partition numbered like its source partition. An output
   * too large goes without its key and value, with the error and its size in header {@value
   * ERROR_HEADER}; its source position header says which output it was.
   */
  public static void sendDeadLetters(
      KafkaSpec<?> spec,
      Producer<byte[], byte[]> producer,
      List<DeadLetter> deadLetters,
      Failures failures) {
    if (deadLetters.isEmpty() && failures.tooLarge.isEmpty()) {
      return;
    }
    if (spec.deadLetterTopic() == null) {
      throw new IllegalStateException("dead letters without a dead-letter topic");
    }
    List<Letter> letters = new ArrayList<>();
    for (DeadLetter d : deadLetters) {
      letters.add(
          new Letter(
              new SourcePosition(d.topic(), d.partition(), d.offset(), 0),
              d.key(),
              d.value(),
              d.error()));
    }
    for (TooLarge t : failures.tooLarge) {
      letters.add(
          new Letter(
              t.position(),
              null, // the key may be what makes it too large
              null,
              "output of about "
                  + t.bytes()
                  + " bytes exceeds the producer's max.request.size ("
                  + t.limit()
                  + "); its value is not kept"));
    }
    letters.sort(java.util.Comparator.comparing(Letter::position));
    int partitions = producer.partitionsFor(spec.deadLetterTopic()).size();
    for (Letter d : letters) {
      if (failures.failed()) {
        break; // as in sendAll: nothing after a failed send
      }
      List<Header> headers = new ArrayList<>(3);
      headers.add(new RecordHeader(SourcePosition.HEADER, d.position().toBytes()));
      headers.add(
          new RecordHeader(
              SourcePosition.PIPELINE_HEADER,
              spec.pipelineId().value().getBytes(StandardCharsets.UTF_8)));
      headers.add(new RecordHeader(ERROR_HEADER, d.error().getBytes(StandardCharsets.UTF_8)));
      producer.send(
          new ProducerRecord<>(
              spec.deadLetterTopic(),
              d.position().partition() % partitions,
              null,
              d.key(),
              d.value(),
              headers),
          failures);
    }
  }
}
