package org.exactlyonce.spark.kafka.internal;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
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
 * per configuration, at most one idle transactional producer per transactional id (bounded per
 * pipeline in number and age, see {@link KafkaSpec#maxIdleProducers()}), idle idempotent producers
 * per configuration.
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

  /** Idle transactional producers per pipeline, least recently given back first. */
  private static final Map<String, IdlePool> IDLE = new ConcurrentHashMap<>();

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
    Producer<byte[], byte[]> idle = borrowIdle(spec, transactionalId);
    return idle != null ? idle : fresh(spec, transactionalId);
  }

  /**
   * This JVM's idle producer of {@code transactionalId}, or null. One idle for longer than the
   * spec's {@code idleProducerMs} is closed rather than returned.
   */
  public static Producer<byte[], byte[]> borrowIdle(KafkaSpec<?> spec, String transactionalId) {
    IdlePool pool = IDLE.get(spec.pipelineId().value());
    return pool == null ? null : pool.take(spec.producerProperties(transactionalId), spec);
  }

  /**
   * A new producer for {@code transactionalId}, whose {@code initTransactions} fenced every older
   * producer of the id and completed (or aborted) its open transaction.
   */
  public static Producer<byte[], byte[]> fresh(KafkaSpec<?> spec, String transactionalId) {
    KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(spec.producerProperties(transactionalId));
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
    IDLE.computeIfAbsent(spec.pipelineId().value(), k -> new IdlePool())
        .put(spec.producerProperties(transactionalId), p, spec);
    // The pools of other pipelines too: one whose stream stopped, or whose partitions moved to
    // other executors, gives nothing back any more, and its producers would stay open.
    IDLE.values().forEach(IdlePool::evictExpired);
  }

  /**
   * The idle producers of one pipeline in this JVM, bounded in number and age: each holds a sender
   * thread and buffers, and a wide topic would otherwise keep one per source partition for the
   * JVM's life; and brokers forget a transactional id idle past {@code
   * transactional.id.expiration.ms}, after which its producer fails ({@code
   * InvalidPidMappingException}). Producers are closed outside the lock.
   */
  private static final class IdlePool {
    private record Idle(Producer<byte[], byte[]> producer, long since) {}

    private final LinkedHashMap<Map<String, Object>, Idle> idle = new LinkedHashMap<>();

    /** How long this pool keeps an idle producer: the evictAfter of the last spec given back. */
    private volatile long keepNanos = Long.MAX_VALUE;

    void evictExpired() {
      List<Producer<byte[], byte[]>> evicted = new ArrayList<>();
      long now = System.nanoTime();
      synchronized (this) {
        Iterator<Idle> eldestFirst = idle.values().iterator();
        while (eldestFirst.hasNext()) {
          Idle e = eldestFirst.next();
          if (now - e.since() <= keepNanos) {
            break; // the rest were given back later
          }
          eldestFirst.remove();
          evicted.add(e.producer());
        }
      }
      evicted.forEach(Clients::discard);
    }

    Producer<byte[], byte[]> take(Map<String, Object> props, KafkaSpec<?> spec) {
      Idle i;
      synchronized (this) {
        i = idle.remove(props);
      }
      if (i == null) {
        return null;
      }
      if (System.nanoTime() - i.since()
          > java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(spec.idleProducerMs())) {
        discard(i.producer());
        return null;
      }
      return i.producer();
    }

    void put(Map<String, Object> props, Producer<byte[], byte[]> p, KafkaSpec<?> spec) {
      List<Producer<byte[], byte[]>> evicted = new ArrayList<>();
      long now = System.nanoTime();
      keepNanos = java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(spec.idleProducerMs());
      synchronized (this) {
        Idle previous = idle.remove(props);
        if (previous != null) {
          evicted.add(previous.producer());
        }
        idle.put(props, new Idle(p, now));
        Iterator<Idle> eldestFirst = idle.values().iterator();
        while (eldestFirst.hasNext()) {
          Idle e = eldestFirst.next();
          if (idle.size() > spec.maxIdleProducers()
              || now - e.since()
                  > java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(spec.idleProducerMs())) {
            eldestFirst.remove();
            evicted.add(e.producer());
          } else {
            break; // the rest were given back later
          }
        }
      }
      evicted.forEach(Clients::discard);
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
