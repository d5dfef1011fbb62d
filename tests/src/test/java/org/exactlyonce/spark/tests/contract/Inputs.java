package org.exactlyonce.spark.tests.contract;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;

/** The input side of the contract tests: consumer settings and records whose value is an id. */
final class Inputs {
  private Inputs() {}

  /** Consumer settings of a stream over the test broker. */
  static Map<String, Object> params(KafkaBroker kafka) {
    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", kafka.bootstrapServers());
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);
    // Partitions added while the stream runs are seen at the next metadata refresh.
    params.put("metadata.max.age.ms", 500);
    return params;
  }

  /**
   * Sends {@code n} records {@code <tag>-<i>} (key and value) to one partition, each acknowledged;
   * adds each id to {@code expected} (if not null) with count 1.
   */
  static void send(
      KafkaBroker kafka,
      String topic,
      int partition,
      String tag,
      int n,
      Map<String, Long> expected) {
    List<ProducerRecord<String, String>> records = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      String id = tag + "-" + i;
      records.add(new ProducerRecord<>(topic, partition, id, id));
      if (expected != null) {
        expected.put(id, 1L);
      }
    }
    kafka.send(records);
  }
}
