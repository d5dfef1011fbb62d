package org.exactlyonce.spark.kafka;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;

/**
 * Serialises part of an output (its key or value) to bytes. Must be deterministic: a replay must
 * produce the same key, so that it goes to the same partition.
 *
 * @param <R> the output type
 */
@FunctionalInterface
public interface ToBytes<R> extends Serializable {

  /** The bytes of {@code output}'s key or value; null for a null key or value. */
  byte[] apply(R output);

  /** Serialises the string {@code text} gives, in UTF-8. */
  static <R> ToBytes<R> utf8(ToText<R> text) {
    return r -> {
      String s = text.apply(r);
      return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    };
  }

  /**
   * A serialisable function from an output to a string.
   *
   * @param <R> the output type
   */
  @FunctionalInterface
  interface ToText<R> extends Serializable {
    /** The text of {@code output}'s key or value; null for none. */
    String apply(R output);
  }
}
