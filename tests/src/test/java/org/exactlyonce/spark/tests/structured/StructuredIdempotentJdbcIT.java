package org.exactlyonce.spark.tests.structured;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.exactlyonce.spark.jdbc.JdbcIdempotentSink;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.junit.jupiter.api.BeforeEach;

/**
 * {@link ExactlyOnceForeachBatch#idempotent} (strategy I) over PostgreSQL: each record's output
 * upserted under its source position, the batch's offsets advanced after it. The output table's
 * unique key is the source position, so this contract shows what the table ends with: every record
 * once, none lost.
 */
class StructuredIdempotentJdbcIT extends StructuredForeachBatchContract {

  @BeforeEach
  void createEvents() {
    db.execute(
        "CREATE TABLE events (id text NOT NULL, src_topic text, src_partition int,"
            + " src_offset bigint, src_index int,"
            + " UNIQUE (src_topic, src_partition, src_offset, src_index))");
  }

  @Override
  JdbcIdempotentSink<String> sink(String pipeline) {
    return JdbcSink.<String>idempotent(pipeline)
        .connection(db.settings)
        .table("events")
        .columns("id")
        .values(List::of)
        .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
        .build();
  }

  @Override
  ExactlyOnceForeachBatch.Builder<?> query(String pipeline) {
    return ExactlyOnceForeachBatch.idempotent(sink(pipeline))
        .foreachRecord(r -> List.of(new String(r.value(), StandardCharsets.UTF_8)));
  }

  @Override
  void clearOutput() {
    db.execute("TRUNCATE events");
  }

  @Override
  List<String> ids() {
    return db.allIds("events");
  }
}
