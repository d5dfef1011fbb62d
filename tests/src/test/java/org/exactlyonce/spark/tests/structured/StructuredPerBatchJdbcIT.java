package org.exactlyonce.spark.tests.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.structured.SparkRows;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.Test;

/** {@link ExactlyOnceForeachBatch#perBatch} (strategy T-batch) over PostgreSQL. */
class StructuredPerBatchJdbcIT extends StructuredForeachBatchContract {

  @Override
  ExactlyOnceForeachBatch.Builder<?> query(String pipeline) {
    return ExactlyOnceForeachBatch.perBatch(sink(pipeline))
        .batch(StructuredForeachBatchContract::toOutput);
  }

  @Override
  JdbcBatchSink<Row> sink(String pipeline) {
    return JdbcSink.<Row>perBatch(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(r -> List.of(r.getString(0), r.getString(1), r.getInt(2), r.getLong(3)))
        .build();
  }

  /** Every record produced, id to the partition Kafka put it in, read back from the topic. */
  private Map<String, Integer> producedWithPartitions() {
    Map<String, Integer> out = new java.util.HashMap<>();
    for (Row r :
        spark
            .read()
            .format("kafka")
            .options(source())
            .load()
            .selectExpr("CAST(value AS STRING)", "partition")
            .collectAsList()) {
      out.put(r.getString(0), r.getInt(1));
    }
    assertThat(out.keySet()).containsExactlyInAnyOrderElementsOf(produced);
    return out;
  }

  /**
   * A batch function that drops every row of a partition still commits that partition's range: its
   * stored offset follows Kafka's end, so the next batch is no gap and nothing is read again.
   */
  @Test
  void aPartitionWhoseRowsTheBatchFunctionDropsAdvancesAllTheSame() throws Exception {
    produce(300);
    StreamingQuery q =
        ExactlyOnceForeachBatch.perBatch(sink(pipeline))
            .kafka(spark, source())
            .batch(df -> toOutput(df).where("kafka_partition <> 0"))
            .start();
    queries.add(q);
    q.processAllAvailable();
    produce(100);
    q.processAllAvailable();
    q.stop();

    assertThat(db.stored(pipeline)).isEqualTo(StreamHarness.endOffsets(kafka, topic, 3));
    List<String> expected =
        producedWithPartitions().entrySet().stream()
            .filter(e -> e.getValue() != 0)
            .map(Map.Entry::getKey)
            .sorted()
            .toList();
    assertThat(expected).hasSizeBetween(1, 399); // partition 0 holds some records, not all
    assertThat(sorted(db.allIds())).isEqualTo(expected);
  }

  /** The sink of this test's pipeline, its values read by column name. */
  private JdbcBatchSink<Row> byNameSink() {
    return JdbcSink.<Row>perBatch(pipeline)
        .connection(db.settings)
        .table("out")
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(SparkRows.byName())
        .build();
  }

  /** Rows mapped by name land in their columns, whatever order the batch function's fields have. */
  @Test
  void rowsMappedByNameLandInTheColumnsOfTheirNames() throws Exception {
    produce(200);
    StreamingQuery q =
        ExactlyOnceForeachBatch.perBatch(byNameSink())
            .kafka(spark, source())
            .batch(
                df ->
                    df.selectExpr(
                        "offset AS src_offset",
                        "partition AS kafka_partition",
                        "CAST(value AS STRING) AS id",
                        "topic"))
            .start();
    queries.add(q);
    q.processAllAvailable();
    q.stop();

    Map<String, Integer> written = new java.util.HashMap<>();
    try (Connection c = db.connect();
        java.sql.ResultSet rs =
            c.createStatement().executeQuery("SELECT id, kafka_partition, topic FROM out")) {
      while (rs.next()) {
        assertThat(written.put(rs.getString(1), rs.getInt(2))).as("a second row").isNull();
        assertThat(rs.getString(3)).isEqualTo(topic);
      }
    }
    assertThat(written).isEqualTo(producedWithPartitions());
  }

  /**
   * A batch function whose rows do not fit the table is refused by {@code start()}, before the
   * sink's start sequence: nothing stored, no writer epoch taken, nothing written. The message
   * names each column, the Spark type and the table's type.
   */
  @Test
  void rowsThatDoNotFitTheColumnsByNameAreRefusedBeforeTheQueryStarts() throws Exception {
    produce(50);
    var query =
        ExactlyOnceForeachBatch.perBatch(byNameSink())
            .kafka(spark, source())
            .batch(
                df ->
                    df.selectExpr(
                        "CAST(value AS STRING) AS id",
                        "CAST(offset AS STRING) AS src_offset",
                        "partition AS kafka_partition",
                        "timestamp"));

    assertThatThrownBy(query::start)
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("field 'src_offset' is string but the column is bigint")
        .hasMessageContaining("column 'topic' (text) has no field of its name")
        .hasMessageContaining("fields [timestamp] go to no column of the sink")
        .hasMessageContaining("Select and cast the fields");
    assertThat(writerEpochsOf(pipeline)).as("writer epochs taken").isZero();
    assertThat(db.allIds()).isEmpty();
  }

  /** How many writer epochs {@code pipeline} has in the database (none without a writers table). */
  private long writerEpochsOf(String pipeline) throws java.sql.SQLException {
    try (Connection c = db.connect();
        PreparedStatement s =
            c.prepareStatement("SELECT count(*) FROM eos_writers WHERE pipeline_id = ?")) {
      s.setString(1, pipeline);
      try (java.sql.ResultSet rs = s.executeQuery()) {
        rs.next();
        return rs.getLong(1);
      }
    } catch (java.sql.SQLException e) {
      if ("42P01".equals(e.getSQLState())) { // undefined_table: no start ever created it
        return 0;
      }
      throw e;
    }
  }

  /**
   * The negative control of the test above: the same replay through Spark's own {@code
   * foreachBatch} with a plain insert writes the replayed records a second time, so the oracle sees
   * duplicates when there are any.
   */
  @Test
  void aPlainForeachBatchWritesTheBatchesReplayedFromAnOlderCheckpointTwice() throws Exception {
    Path checkpoint = tmp.resolve("checkpoint");
    Path older = tmp.resolve("older-checkpoint");
    produce(200);
    runPlainToEnd(checkpoint);
    copy(checkpoint, older);
    produce(200);
    runPlainToEnd(checkpoint);

    runPlainToEnd(older);

    List<String> ids = db.allIds();
    assertThat(ids).hasSize(600);
    assertThat(ids.stream().distinct().count()).isEqualTo(400);
  }

  private void runPlainToEnd(Path checkpoint) throws Exception {
    String url = db.url;
    java.util.Properties props = db.settings.toProperties();
    VoidFunction2<Dataset<Row>, Long> insert =
        (batch, id) -> {
          List<Row> rows = toOutput(batch).collectAsList();
          try (Connection c = java.sql.DriverManager.getConnection(url, props);
              PreparedStatement s = c.prepareStatement("INSERT INTO out VALUES (?, ?, ?, ?)")) {
            for (Row r : rows) {
              s.setString(1, r.getString(0));
              s.setString(2, r.getString(1));
              s.setInt(3, r.getInt(2));
              s.setLong(4, r.getLong(3));
              s.addBatch();
            }
            s.executeBatch();
          }
        };
    StreamingQuery q =
        spark
            .readStream()
            .format("kafka")
            .options(source())
            .option("startingOffsets", "earliest")
            .load()
            .writeStream()
            .foreachBatch(insert)
            .option("checkpointLocation", checkpoint.toString())
            .start();
    queries.add(q);
    q.processAllAvailable();
    q.stop();
  }
}
