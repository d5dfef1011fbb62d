package org.exactlyonce.spark.tests.support;

import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;

/** Reads a whole output topic, the way a downstream reader would. */
public final class KafkaOutput {
  private KafkaOutput() {}

  /** Every record of {@code topic}, as a {@code read_committed} reader sees it. */
  public static List<ConsumerRecord<String, String>> committed(KafkaBroker kafka, String topic) {
    awaitEndingTransactions(kafka);
    return read(kafka, topic, "read_committed");
  }

  /**
   * Waits until no transaction is between its commit (or abort) and its markers. The coordinator
   * answers {@code commitTransaction} once the commit is logged and writes the markers after, so a
   * {@code read_committed} read right after a commit could stop at a last stable offset still below
   * the records just committed (seen once: 0 of 50 records read). Transactions left open on purpose
   * (a zombie's) are not waited for.
   */
  private static void awaitEndingTransactions(KafkaBroker kafka) {
    try (Admin admin =
        Admin.create(
            Map.<String, Object>of(
                ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
      org.apache.kafka.clients.admin.ListTransactionsOptions ending =
          new org.apache.kafka.clients.admin.ListTransactionsOptions()
              .filterStates(
                  List.of(
                      org.apache.kafka.clients.admin.TransactionState.PREPARE_COMMIT,
                      org.apache.kafka.clients.admin.TransactionState.PREPARE_ABORT));
      await("transactions between their commit and their markers")
          .atMost(Duration.ofSeconds(60))
          .pollInterval(Duration.ofMillis(50))
          .until(() -> admin.listTransactions(ending).all().get().isEmpty());
    }
  }

  /**
   * Every record of {@code topic} as a reader of an idempotent Kafka sink's output sees it: aborted
   * transactions included, repeated source positions dropped ({@link
   * org.exactlyonce.spark.kafka.SourcePositionDeduplicator}, the sink's documented reader
   * contract).
   */
  public static List<ConsumerRecord<String, String>> firstCopies(KafkaBroker kafka, String topic) {
    org.exactlyonce.spark.kafka.SourcePositionDeduplicator dedup =
        new org.exactlyonce.spark.kafka.SourcePositionDeduplicator();
    return read(kafka, topic, "read_uncommitted").stream().filter(dedup::isFirst).toList();
  }

  /** Every record of {@code topic}, aborted transactions included. */
  public static List<ConsumerRecord<String, String>> uncommitted(KafkaBroker kafka, String topic) {
    return read(kafka, topic, "read_uncommitted");
  }

  private static List<ConsumerRecord<String, String>> read(
      KafkaBroker kafka, String topic, String isolation) {
    Map<String, Object> p = new HashMap<>();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
    try (KafkaConsumer<String, String> c =
        new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      c.partitionsFor(topic).forEach(i -> tps.add(new TopicPartition(topic, i.partition())));
      c.assign(tps);
      c.seekToBeginning(tps);
      // For read_committed, the end is the last stable offset: nothing open is waited for.
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      List<ConsumerRecord<String, String>> out = new ArrayList<>();
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("could not read " + topic + " to its end " + end);
        }
        c.poll(Duration.ofMillis(200)).forEach(out::add);
      }
      return out;
    }
  }

  /**
   * Makes every {@code every}-th output send of the Kafka sinks fail its task, {@code times} times
   * in all, after letting the producer send what it was given: a task that dies halfway through
   * sending.
   *
   * @return how many failures were injected so far
   */
  public static java.util.concurrent.atomic.AtomicInteger failSendsEvery(int every, int times) {
    java.util.concurrent.atomic.AtomicInteger sent =
        new java.util.concurrent.atomic.AtomicInteger();
    java.util.concurrent.atomic.AtomicInteger failed =
        new java.util.concurrent.atomic.AtomicInteger();
    org.exactlyonce.spark.spi.FaultPoints.set(
        org.exactlyonce.spark.kafka.internal.Outputs.AFTER_SEND,
        () -> {
          if (sent.incrementAndGet() % every == 0 && failed.get() < times) {
            failed.incrementAndGet();
            letTheProducerSendWhatItHas();
            throw new IllegalStateException("injected: a task dies halfway through sending");
          }
        });
    return failed;
  }

  /**
   * Waits until every producer in this JVM has sent what was handed to it and the broker
   * acknowledged it, so that a task failing right after makes its half-written outputs visible on
   * the wire (to read_uncommitted readers) instead of dropping them unsent. A producer holds buffer
   * memory for each batch until the broker answers it, so "nothing sent is outstanding" is every
   * producer's available buffer back at its total.
   */
  static void letTheProducerSendWhatItHas() {
    await("every producer's records sent and acknowledged")
        .atMost(Duration.ofSeconds(60))
        .pollInterval(Duration.ofMillis(10))
        .until(KafkaOutput::noProducerHoldsUnsentRecords);
  }

  private static boolean noProducerHoldsUnsentRecords() throws Exception {
    javax.management.MBeanServer server =
        java.lang.management.ManagementFactory.getPlatformMBeanServer();
    var producers =
        server.queryNames(
            new javax.management.ObjectName("kafka.producer:type=producer-metrics,*"), null);
    if (producers.isEmpty()) {
      throw new IllegalStateException("no Kafka producer metrics in this JVM");
    }
    for (var producer : producers) {
      double total = ((Number) server.getAttribute(producer, "buffer-total-bytes")).doubleValue();
      double available =
          ((Number) server.getAttribute(producer, "buffer-available-bytes")).doubleValue();
      if (available < total) {
        return false;
      }
    }
    return true;
  }

  /** The committed offsets of consumer group {@code group}. */
  public static Map<TopicPartition, Long> groupOffsets(KafkaBroker kafka, String group) {
    try (Admin admin = kafka.admin()) {
      Map<TopicPartition, Long> offsets = new HashMap<>();
      Map<TopicPartition, OffsetAndMetadata> all =
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      all.forEach(
          (tp, om) -> {
            if (om != null) {
              offsets.put(tp, om.offset());
            }
          });
      return offsets;
    } catch (Exception e) {
      throw new IllegalStateException("cannot read the offsets of group " + group, e);
    }
  }
}
