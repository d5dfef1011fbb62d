package org.exactlyonce.spark.kafka.internal;

import java.time.Duration;
import java.util.Deque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Kafka clients of one JVM (an executor, or the driver), kept across batches: one admin client
 * per configuration, one idle transactional producer per transactional id, idle idempotent
 * producers per configuration.
 *
 * <p>A transactional producer is borrowed for the length of one commit and given back only if the
 * commit ended cleanly; after any failure it is closed, never reused (a fenced producer cannot
 * recover, and one that failed mid-transaction has an unknown state). Two attempts of the same
 * range in one JVM borrow two producers; the second one's {@code initTransactions} fences the
 * first.
 */
public final class Clients {
  private static final Logger LOG = LoggerFactory.getLogger(Clients.class);
  private static final Map<Map<String, Object>, Admin> ADMINS = new ConcurrentHashMap<>();
  private static final Map<Map<String, Object>, Producer<byte[], byte[]>> IDLE =
      new ConcurrentHashMap<>();
  private static final Map<Map<String, Object>, Deque<Producer<byte[], byte[]>>> IDEMPOTENT =
      new ConcurrentHashMap<>();

  private Clients() {}

  /** The admin client of {@code spec}, created once per JVM. Thread-safe. */
  public static Admin admin(KafkaSpec<?> spec) {
    return ADMINS.computeIfAbsent(spec.adminProperties(), Admin::create);
  }

  /**
   * A transactional producer for {@code transactionalId}: an idle one of this JVM, or a new one
   * whose {@code initTransactions} has fenced every older producer of the id and completed its open
   * transaction.
   */
  public static Producer<byte[], byte[]> borrow(KafkaSpec<?> spec, String transactionalId) {
    Map<String, Object> props = spec.producerProperties(transactionalId);
    Producer<byte[], byte[]> idle = IDLE.remove(props);
    if (idle != null) {
      return idle;
    }
    KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(props);
    try {
      p.initTransactions();
    } catch (RuntimeException e) {
      p.close(Duration.ZERO);
      throw e;
    }
    return p;
  }

  /** Gives back a producer whose last transaction ended cleanly (committed, or never begun). */
  public static void giveBack(
      KafkaSpec<?> spec, String transactionalId, Producer<byte[], byte[]> p) {
    if (IDLE.putIfAbsent(spec.producerProperties(transactionalId), p) != null) {
      p.close(Duration.ZERO);
    }
  }

  /** Closes a producer that failed or was fenced; it is never used again. */
  public static void discard(Producer<byte[], byte[]> p) {
    try {
      p.close(Duration.ZERO);
    } catch (RuntimeException e) {
      LOG.debug("closing a failed producer: {}", e.toString());
    }
  }

  /** Aborts the open transaction of a failed producer if it still can, then closes it. */
  public static void abortAndDiscard(Producer<byte[], byte[]> p) {
    try {
      p.abortTransaction();
    } catch (RuntimeException e) {
      LOG.debug("aborting the transaction of a failed producer: {}", e.toString());
    }
    discard(p);
  }

  /**
   * An idempotent (non-transactional) producer of {@code spec}, for one task. Tasks of one JVM do
   * not share one: a producer that failed is closed, and must not be closed under another task.
   */
  public static Producer<byte[], byte[]> borrowIdempotent(KafkaSpec<?> spec) {
    Map<String, Object> props = spec.producerProperties(null);
    Producer<byte[], byte[]> idle =
        IDEMPOTENT.computeIfAbsent(props, k -> new ConcurrentLinkedDeque<>()).poll();
    return idle != null ? idle : new KafkaProducer<>(props);
  }

  /** Gives back an idempotent producer that did not fail. */
  public static void giveBackIdempotent(KafkaSpec<?> spec, Producer<byte[], byte[]> p) {
    IDEMPOTENT
        .computeIfAbsent(spec.producerProperties(null), k -> new ConcurrentLinkedDeque<>())
        .push(p);
  }
}
