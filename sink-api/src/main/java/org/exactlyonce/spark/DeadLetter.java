package org.exactlyonce.spark;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * A record the mapper could not turn into outputs, kept with its source position and the error, for
 * a sink that routes bad records to a dead-letter table instead of stopping. The position is its
 * key: a replay writes the same dead letter again, never a second one.
 *
 * @param topic the record's topic
 * @param partition the record's partition
 * @param offset the record's offset
 * @param key the record's key as bytes (strings in UTF-8), or null
 * @param value the record's value as bytes (strings in UTF-8), or null
 * @param error what went wrong, for example the exception the mapper threw
 */
public record DeadLetter(
    String topic, int partition, long offset, byte[] key, byte[] value, String error)
    implements Serializable {

  /** The dead letter of {@code record}, which failed with {@code error}. */
  public static DeadLetter of(ConsumerRecord<?, ?> record, String error) {
    return new DeadLetter(
        record.topic(),
        record.partition(),
        record.offset(),
        bytes(record.key()),
        bytes(record.value()),
        error);
  }

  private static byte[] bytes(Object o) {
    if (o == null) {
      return null;
    }
    if (o instanceof byte[] b) {
      return b;
    }
    return o.toString().getBytes(StandardCharsets.UTF_8);
  }
}
