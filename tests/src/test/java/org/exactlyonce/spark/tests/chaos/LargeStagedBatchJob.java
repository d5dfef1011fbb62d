package org.exactlyonce.spark.tests.chaos;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import scala.Tuple2;

/**
 * A driver (run in its own JVM with a small heap by {@link LargeStagedBatchIT}): one batch of all
 * the topic's records, counted per key after a shuffle, written through the staging path.
 * Arguments: bootstrap servers, JDBC URL, user, topic, expected rows. Exits 0 once the offsets are
 * committed.
 */
public final class LargeStagedBatchJob {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    JdbcSettings db = JdbcSettings.url(args[1]).user(args[2]);
    String topic = args[3];
    long expected = Long.parseLong(args[4]);

    JavaStreamingContext ssc =
        new JavaStreamingContext(
            SparkSetup.local("large-staged-batch", 2, 4).set("spark.driver.memory", "512m"),
            Durations.seconds(2));
    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", bootstrap);
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);

    JdbcBatchSink<Tuple2<String, Long>> sink =
        JdbcSink.<Tuple2<String, Long>>perBatch("large-batch")
            .connection(db)
            .table("per_key")
            .columns("k", "n")
            .values(t -> List.of(t._1(), t._2()))
            .upsertOn("k")
            .accumulating("n")
            .batchSize(5000)
            .staged()
            .build();
    ExactlyOnceStream<String, String> stream =
        ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
    ExactlyOnce.foreachBatch(
        stream,
        rdd -> rdd.mapToPair(r -> new Tuple2<>(r.key(), 1L)).reduceByKey(Long::sum, 4).map(t -> t),
        sink);
    stream.onBatch(b -> System.out.println("LargeStagedBatchJob: " + b));
    ssc.start();
    while (stream.failure() == null && rows(db) < expected) {
      ssc.awaitTerminationOrTimeout(1000);
    }
    ssc.stop(true, true);
    Runtime rt = Runtime.getRuntime();
    System.out.printf(
        "LargeStagedBatchJob: max heap %d MiB, used at end %d MiB%n",
        rt.maxMemory() >> 20, (rt.totalMemory() - rt.freeMemory()) >> 20);
    System.exit(stream.failure() == null ? 0 : 1);
  }

  private static long rows(JdbcSettings db) throws Exception {
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        ResultSet rs = c.createStatement().executeQuery("SELECT count(*) FROM per_key")) {
      rs.next();
      return rs.getLong(1);
    }
  }
}
