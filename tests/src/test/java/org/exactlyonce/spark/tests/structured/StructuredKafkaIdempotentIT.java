package org.exactlyonce.spark.tests.structured;

import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.exactlyonce.spark.kafka.KafkaIdempotentSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.tests.support.KafkaOutput;

/**
 * {@link ExactlyOnceForeachBatch#idempotent} over {@link KafkaSink#idempotent} (strategy I): each
 * output stamped with its source position, the batch's progress offsets advanced after it; read the
 * way its readers must, dropping repeated source positions.
 */
class StructuredKafkaIdempotentIT extends StructuredKafkaContract {
  @Override
  KafkaSink.Builder<String, ?> builder(String pipeline) {
    return configured(KafkaSink.<String>idempotent(pipeline));
  }

  @Override
  List<ConsumerRecord<String, String>> read(String topic) {
    return KafkaOutput.firstCopies(kafka, topic);
  }

  @Override
  @SuppressWarnings("unchecked")
  ExactlyOnceForeachBatch.Builder<?> query(ExactlyOnceSink sink) {
    return ExactlyOnceForeachBatch.idempotent((KafkaIdempotentSink<String>) sink)
        .foreachRecord(StructuredKafkaContract::value);
  }
}
