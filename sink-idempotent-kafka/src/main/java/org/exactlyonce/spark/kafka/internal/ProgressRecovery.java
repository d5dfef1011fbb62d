package org.exactlyonce.spark.kafka.internal;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.kafka.SourcePosition;

/**
 * Recovers a pipeline's progress from what it wrote: the {@link SourcePosition} headers of the
 * committed records of its output (and dead-letter) topic. An output at source offset {@code o} was
 * committed in the same transaction as a progress offset past {@code o}, so {@code o + 1} is a safe
 * restart point: the records between it and the lost offset produced no output (or they would be in
 * the topic), and the deterministic mapper produces none again.
 *
 * <p>The highest position found is the last one only if nothing this pipeline wrote can be outside
 * what was read, so a {@link Scan} says whether it is <em>complete</em>: every output partition
 * read from offset 0 (nothing deleted by retention, no {@code recoveryScanDepth} cut), no
 * compaction (it may remove a source partition's last output while an older one of it stays
 * elsewhere), and every transaction that was open when the scan began decided (its outputs are
 * read, not skipped). A complete scan is exact for every source partition, including one with no
 * output at all: none of its records produced an output, so reading it again from its earliest
 * offset writes nothing twice.
 */
final class ProgressRecovery {
  private ProgressRecovery() {}

  /**
   * What a scan found.
   *
   * @param next per source partition, the offset after its last output found
   * @param incomplete why the scan may have missed outputs, one entry per reason; empty if complete
   */
  record Scan(Map<TopicPartition, Long> next, List<String> incomplete) {
    boolean complete() {
      return incomplete.isEmpty();
    }
  }

  /**
   * Reads the last {@code depth} records of every partition of the output topics, after waiting for
   * the transactions open in them to be decided. Call it after this pipeline's own lingering
   * transactions were aborted (a new producer of each of its transactional ids does that).
   */
  static Scan scan(KafkaSpec<?> spec, Admin admin, long depth) {
    Map<String, Object> p = new HashMap<>(spec.clientConfig());
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, spec.bootstrapServers());
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5000);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, "eos-recovery-" + spec.pipelineId().value());
    p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) spec.apiTimeoutMs());
    byte[] pipeline = spec.pipelineId().value().getBytes(StandardCharsets.UTF_8);
    Map<TopicPartition, Long> next = new HashMap<>();
    List<String> incomplete = new ArrayList<>();
    List<String> topics =
        spec.deadLetterTopic() == null
            ? List.of(spec.topic())
            : List.of(spec.topic(), spec.deadLetterTopic());
    for (String topic : topics) {
      String why = compaction(admin, topic, spec.apiTimeoutMs());
      if (why != null) {
        incomplete.add(why);
      }
    }
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      for (String topic : topics) {
        c.partitionsFor(topic).forEach(i -> tps.add(new TopicPartition(topic, i.partition())));
      }
      Map<TopicPartition, Long> begin = c.beginningOffsets(tps);
      // The end of every record written so far, open transactions included: the scan reads up to
      // there, so it waits until those transactions are decided rather than stop before them.
      Map<TopicPartition, Long> end = uncommittedEnds(admin, tps, spec.apiTimeoutMs());
      c.assign(tps);
      for (TopicPartition tp : tps) {
        long from = Math.max(begin.get(tp), end.get(tp) - depth);
        if (begin.get(tp) > 0) {
          incomplete.add(tp + " starts at offset " + begin.get(tp) + " (older records deleted)");
        } else if (from > 0) {
          incomplete.add(
              tp + " holds " + end.get(tp) + " records, more than recoveryScanDepth " + depth);
        }
        c.seek(tp, from);
      }
      long patience = Math.max(spec.apiTimeoutMs() * 4, spec.transactionTimeoutMs() * 2);
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(patience);
      List<TopicPartition> open = new ArrayList<>(tps);
      while (true) {
        open.removeIf(tp -> c.position(tp) >= end.get(tp));
        if (open.isEmpty()) {
          break;
        }
        if (System.nanoTime() > deadline) {
          throw new ExactlyOnceException(
              "pipeline '"
                  + spec.pipelineId()
                  + "': recovering lost progress, the output partitions "
                  + open
                  + " still hold an undecided transaction after "
                  + patience
                  + " ms (another producer's, past its transaction timeout?); start again later");
        }
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
          Header h = r.headers().lastHeader(SourcePosition.PIPELINE_HEADER);
          if (h == null || !Arrays.equals(h.value(), pipeline)) {
            continue;
          }
          SourcePosition.of(r.headers())
              .ifPresent(pos -> next.merge(pos.sourcePartition(), pos.offset() + 1, Math::max));
        }
      }
    }
    return new Scan(Map.copyOf(next), List.copyOf(incomplete));
  }

  private static Map<TopicPartition, Long> uncommittedEnds(
      Admin admin, List<TopicPartition> tps, long timeoutMs) {
    try {
      return admin
          .listOffsets(
              tps.stream().collect(Collectors.toMap(tp -> tp, tp -> OffsetSpec.latest())),
              new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED))
          .all()
          .get(timeoutMs, TimeUnit.MILLISECONDS)
          .entrySet()
          .stream()
          .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
    } catch (Exception e) {
      throw new ExactlyOnceException("reading the end offsets of " + tps + " failed: " + e, e);
    }
  }

  /** Why compaction may have removed outputs of {@code topic}; null if it cannot have. */
  private static String compaction(Admin admin, String topic, long timeoutMs) {
    ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
    try {
      Config config =
          admin.describeConfigs(List.of(r)).all().get(timeoutMs, TimeUnit.MILLISECONDS).get(r);
      var policy = config == null ? null : config.get("cleanup.policy");
      return policy != null && policy.value() != null && policy.value().contains("compact")
          ? "topic '" + topic + "' is compacted, so a source partition's last output may be gone"
          : null;
    } catch (Exception e) {
      return "the cleanup.policy of topic '" + topic + "' could not be read (" + e + ")";
    }
  }
}
