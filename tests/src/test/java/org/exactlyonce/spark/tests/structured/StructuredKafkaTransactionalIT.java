package org.exactlyonce.spark.tests.structured;

import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.tests.support.KafkaOutput;

/**
 * {@link ExactlyOnceForeachBatch#transactional} over {@link KafkaSink#transactional} (strategy K):
 * each range's outputs and its progress offset in one Kafka transaction, read {@code
 * read_committed}.
 */
class StructuredKafkaTransactionalIT extends StructuredKafkaContract {
  @Override
  KafkaSink.Builder<String, ?> builder(String pipeline) {
    return configured(KafkaSink.<String>transactional(pipeline));
  }

  @Override
  List<ConsumerRecord<String, String>> read(String topic) {
    return KafkaOutput.committed(kafka, topic);
  }

  @Override
  @SuppressWarnings("unchecked")
  ExactlyOnceForeachBatch.Builder<?> query(ExactlyOnceSink sink) {
    return ExactlyOnceForeachBatch.transactional((KafkaSink<String>) sink)
        .foreachRecord(StructuredKafkaContract::value);
  }
}
