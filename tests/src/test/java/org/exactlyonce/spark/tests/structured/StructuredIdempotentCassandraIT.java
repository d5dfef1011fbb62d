package org.exactlyonce.spark.tests.structured;

import com.datastax.oss.driver.api.core.CqlSession;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * {@link ExactlyOnceForeachBatch#idempotent} (strategy I) over Cassandra: each record's output
 * written under its source position, the batch's offsets advanced after it with a conditional
 * write. One table and offsets table for the class (a schema change costs seconds); each test reads
 * only its own topic's rows, and its pipeline id is its own.
 */
class StructuredIdempotentCassandraIT extends StructuredForeachBatchContract {
  private static final String KS = "eos_structured";
  private static final String TABLE = KS + ".events";
  private static final CassandraServer SERVER = TestServers.cassandra();
  private static CqlSession session;

  @BeforeAll
  static void createTables() {
    session = CassandraTestSupport.session(SERVER);
    session.execute(
        "CREATE KEYSPACE IF NOT EXISTS "
            + KS
            + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    session.execute(
        "CREATE TABLE IF NOT EXISTS "
            + TABLE
            + " (src_topic text, src_partition int, src_offset bigint, src_index int, id text,"
            + " PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
  }

  @AfterAll
  static void closeSession() {
    session.close();
  }

  @Override
  CassandraSink<String> sink(String pipeline) {
    return CassandraSink.<String>idempotent(pipeline)
        .connection(
            CassandraSettings.contactPoints(
                SERVER.localDatacenter(), SERVER.host() + ":" + SERVER.nativePort()))
        .offsetsTable(KS + ".eos_offsets")
        .table(TABLE)
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

  /** The topic's partitions: 3, or 4 once a test added one. */
  private static final int MAX_PARTITIONS = 4;

  @Override
  List<String> ids() {
    List<String> ids = new ArrayList<>();
    for (int p = 0; p < MAX_PARTITIONS; p++) {
      for (var row :
          session.execute(
              "SELECT id FROM " + TABLE + " WHERE src_topic = ? AND src_partition = ?", topic, p)) {
        ids.add(row.getString(0));
      }
    }
    return ids;
  }

  /**
   * Deletes the rows written so far with a write timestamp just below the partition's end offset:
   * the sink writes each row with its source offset as timestamp, so a delete stamped with the
   * clock would also hide every row written after it, and a test could no longer see a wrong write.
   */
  @Override
  void clearOutput() {
    StreamHarness.endOffsets(kafka, topic, 3)
        .forEach(
            (tp, end) ->
                session.execute(
                    "DELETE FROM "
                        + TABLE
                        + " USING TIMESTAMP ? WHERE src_topic = ? AND src_partition = ?",
                    end - 1,
                    topic,
                    tp.partition()));
  }
}
