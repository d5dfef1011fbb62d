package org.exactlyonce.spark.tests.structured;

import java.util.List;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.exactlyonce.spark.kafka.KafkaIdempotentSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.tests.support.KafkaOutput;
import org.junit.jupiter.api.Tag;

/**
 * {@link ExactlyOnceForeachBatch#idempotent} over {@link KafkaSink#idempotent} (strategy I): each
 * output stamped with its source position, the batch's progress offsets advanced after it; read the
 * way its readers must, dropping repeated source positions.
 */
// In the slow group (mvn -B verify -Pslow -pl tests -am) to keep the default run under 20 minutes
// on 2 cores: the default run has the Kafka contract through the adapter with the transactional
// sink, and this sink's own contract on the DStream path.
@Tag("slow")
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
