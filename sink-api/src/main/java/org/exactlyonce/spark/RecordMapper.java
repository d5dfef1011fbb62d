package org.exactlyonce.spark;

import java.io.Serializable;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * Maps one Kafka record to the outputs it produces. Runs on executors, so it must be serialisable.
 *
 * <p>It must be <strong>deterministic</strong>: a replayed range is mapped again, and exactly-once
 * output relies on the replay producing the same outputs (no clock, no random ids; take time and
 * identity from the record).
 *
 * @param <K> the record key type
 * @param <V> the record value type
 * @param <R> the output type
 */
@FunctionalInterface
public interface RecordMapper<K, V, R> extends Serializable {

  /**
   * Returns the outputs of {@code record} (none, one or several), in a deterministic order.
   *
   * @throws Exception to fail the task; Spark retries it and the transaction is rolled back
   */
  Iterable<R> apply(ConsumerRecord<K, V> record) throws Exception;
}
