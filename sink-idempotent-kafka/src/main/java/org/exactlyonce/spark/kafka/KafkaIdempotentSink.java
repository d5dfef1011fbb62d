package org.exactlyonce.spark.kafka;

import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.KafkaException;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.kafka.internal.Clients;
import org.exactlyonce.spark.kafka.internal.KafkaSpec;
import org.exactlyonce.spark.kafka.internal.Outputs;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.PartitionOutputs;

/**
 * A Kafka sink without transactions, for clusters that do not allow them: executors send the
 * outputs with an idempotent producer (no duplicates from the producer's own retries), then the
 * driver advances the progress offsets of the whole batch. A task retry or a crash before the
 * offsets are stored sends outputs again: <strong>at-least-once on the wire</strong>. Every output
 * carries its {@link SourcePosition}, and readers that pass what they read through {@link
 * SourcePositionDeduplicator} see each output exactly once.
 *
 * @param <R> the output type
 */
public final class KafkaIdempotentSink<R> extends KafkaSinkBase<R> implements IdempotentSink<R> {
  private static final long serialVersionUID = 1L;

  KafkaIdempotentSink(KafkaSpec<R> spec) {
    super(spec);
  }

  @Override
  public long write(SourceRange range, long fromOffset, PartitionOutputs<R> outputs) {
    Producer<byte[], byte[]> producer = Clients.borrowIdempotent(spec);
    boolean healthy = true;
    Outputs.Failures failures = new Outputs.Failures();
    try {
      long rows = Outputs.sendAll(spec, producer, outputs.positionedFrom(fromOffset), failures);
      Outputs.sendDeadLetters(spec, producer, outputs.deadLetters(), failures);
      producer.flush();
      healthy = !failures.failed();
      failures.check("sending the outputs of " + range);
      return rows;
    } catch (KafkaException e) {
      healthy = false;
      throw new ExactlyOnceException("writing " + range + " to Kafka failed: " + e, e);
    } finally {
      // A producer that saw a Kafka error may have lost its sequence state: never reuse it. One
      // that only saw the mapper fail is fine, and what it sent stays sent (at-least-once).
      if (healthy && !failures.failed()) {
        Clients.giveBackIdempotent(spec, producer);
      } else {
        Clients.discard(producer);
      }
    }
  }
}
