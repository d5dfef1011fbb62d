package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.structured.SparkRows;
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
    var q = query(pipeline).kafka(spark, source(Map.of("minPartitions", "12")));
    assertThatThrownBy(q::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("minPartitions")
        .hasMessageContaining("perBatch");
  }

  /**
   * Values by name are checked against the table only for per-batch queries so far: a per-record
   * query over such a sink is refused by {@code start()}, naming the strategy that takes them.
   */
  @Test
  void valuesByNameAreRefusedForAPerRecordQueryNamingPerBatch() {
    JdbcSink<org.apache.spark.sql.Row> byName =
        JdbcSink.<org.apache.spark.sql.Row>transactional(pipeline)
            .connection(db.settings)
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(SparkRows.byName())
            .build();
    var q =
        ExactlyOnceForeachBatch.transactional(byName)
            .kafka(spark, source())
            .foreachRecord(r -> List.of());

    assertThatThrownBy(q::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("values by name")
        .hasMessageContaining("ExactlyOnceForeachBatch.perBatch(...)");
  }
}
