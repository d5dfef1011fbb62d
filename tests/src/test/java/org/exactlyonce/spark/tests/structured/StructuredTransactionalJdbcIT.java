package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.junit.jupiter.api.Test;

/**
 * {@link ExactlyOnceForeachBatch#transactional} (strategy T) over PostgreSQL: each range of a batch
 * with its outputs in one transaction on its executor.
 */
class StructuredTransactionalJdbcIT extends StructuredForeachBatchContract {

  @Override
  JdbcSink<Out> sink(String pipeline) {
    return JdbcSink.<Out>transactional(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .build();
  }

  @Override
  ExactlyOnceForeachBatch.Builder<?> query(String pipeline) {
    return ExactlyOnceForeachBatch.transactional(sink(pipeline))
        .foreachRecord(
            r ->
                List.of(
                    new Out(
                        new String(r.value(), StandardCharsets.UTF_8),
                        r.topic(),
                        r.partition(),
                        r.offset())));
  }

  @Test
  void minPartitionsIsRefusedBecauseItSplitsARangeOverSeveralTransactions() {
    var q =
        query(pipeline)
            .kafka(
                spark,
                Map.of(
                    "kafka.bootstrap.servers",
                    kafka.bootstrapServers(),
                    "subscribe",
                    topic,
                    "minPartitions",
                    "12"));
    assertThatThrownBy(q::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("minPartitions")
        .hasMessageContaining("perBatch");
  }
}
