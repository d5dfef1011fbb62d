package org.exactlyonce.spark.kafka.internal;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.exactlyonce.spark.kafka.SourcePosition;

/**
 * Recovers a pipeline's progress from what it wrote: the {@link SourcePosition} headers of the
 * committed records of its output (and dead-letter) topic. An output at source offset {@code o} was
 * committed in the same transaction as a progress offset past {@code o}, so {@code o + 1} is a safe
 * restart point: the records between it and the lost offset produced no output (or they would be in
 * the topic), and the deterministic mapper produces none again.
 */
final class ProgressRecovery {
  private ProgressRecovery() {}

  /**
   * The offset after the last output of each source partition found in the last {@code depth}
   * records of every partition of the output topics; empty if this pipeline wrote none there.
   */
  static Map<TopicPartition, Long> scan(KafkaSpec<?> spec, long depth) {
    Map<String, Object> p = new HashMap<>(spec.clientConfig());
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, spec.bootstrapServers());
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, "eos-recovery-" + spec.pipelineId().value());
    p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) spec.apiTimeoutMs());
    byte[] pipeline = spec.pipelineId().value().getBytes(StandardCharsets.UTF_8);
    Map<TopicPartition, Long> next = new HashMap<>();
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      for (String topic :
          spec.deadLetterTopic() == null
              ? List.of(spec.topic())
              : List.of(spec.topic(), spec.deadLetterTopic())) {
        c.partitionsFor(topic).forEach(i -> tps.add(new TopicPartition(topic, i.partition())));
      }
      Map<TopicPartition, Long> begin = c.beginningOffsets(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps); // read_committed: the stable end
      c.assign(tps);
      for (TopicPartition tp : tps) {
        c.seek(tp, Math.max(begin.get(tp), end.get(tp) - depth));
      }
      long deadline = System.nanoTime() + Duration.ofMillis(spec.apiTimeoutMs()).toNanos() * 4;
      List<TopicPartition> open = new ArrayList<>(tps);
      while (!open.isEmpty()) {
        open.removeIf(tp -> c.position(tp) >= end.get(tp));
        if (open.isEmpty()) {
          break;
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("timed out scanning " + open + " for source positions");
        }
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
          Header h = r.headers().lastHeader(SourcePosition.PIPELINE_HEADER);
          if (h == null || !java.util.Arrays.equals(h.value(), pipeline)) {
            continue;
          }
          SourcePosition.of(r.headers())
              .ifPresent(pos -> next.merge(pos.sourcePartition(), pos.offset() + 1, Math::max));
        }
      }
    }
    return next;
  }
}
