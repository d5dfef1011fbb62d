package org.exactlyonce.spark.tests.chaos;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskStart;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaInputDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.apache.spark.streaming.kafka010.HasOffsetRanges;
import org.apache.spark.streaming.kafka010.KafkaUtils;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.apache.spark.streaming.kafka010.OffsetRange;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.chaos.ChaosReport;
import org.exactlyonce.spark.chaos.ChaosRun;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcIdempotentSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.structured.ExactlyOnceForeachBatch;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import scala.Tuple2;

/**
 * The driver of a chaos run, in its own JVM so that {@link ChaosIT} can kill it with SIGKILL and
 * start it again; executors are separate JVMs (local-cluster). Arguments: mode (transactional,
 * idempotent, batch, cassandra, naive, kafka, operations, structured, structured-checkpoint,
 * structured-cassandra), bootstrap servers, JDBC URL, user, topic, records expected, and for kafka
 * and operations the output topic, for structured-checkpoint the checkpoint directory, for the
 * cassandra modes Cassandra's host:port, data center and table. Exits 0 once every record's offset
 * is committed and the chaos run has fired every fault of its schedule ({@link
 * ChaosRun#faultsDone()}), 1 if the pipeline stopped on a failure.
 */
public final class ChaosJob {
  /**
   * JVM options of the job's driver and executor JVMs: the run starts a dozen of them on 2 cores,
   * and each is short-lived and light, so the C1 compiler alone and the serial collector start them
   * sooner than C2 and G1's threads would. They change no behaviour of the job.
   */
  static final String FAST_START_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC";

  /** The offsets the JDBC sinks of pipeline "chaos" have committed, summed. */
  private static final String SINK_OFFSETS =
      "SELECT COALESCE(sum(until_offset), 0) FROM eos_offsets WHERE pipeline_id = 'chaos'";

  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable e) {
      // A start that fails (a fault restarting the backend while the sink validates it, say) is a
      // crash like any other: exit, so that the chaos run starts the driver again. Without this
      // the JVM stays up on the threads the failed start left (Spark's, the clients' event
      // loops), never exits, and the run waits for a job that will not finish.
      e.printStackTrace();
      System.exit(1);
    }
  }

  private static void run(String[] args) throws Exception {
    String mode = args[0];
    String bootstrap = args[1];
    JdbcSettings db = JdbcSettings.url(args[2]).user(args[3]);
    String topic = args[4];
    long expected = Long.parseLong(args[5]);

    SparkConf conf =
        SparkSetup.localCluster("chaos-" + mode, 2, 1)
            .set("spark.task.maxFailures", "8")
            // Many batches, so that faults land mid-stream.
            .set(
                "spark.streaming.kafka.maxRatePerPartition",
                System.getProperty("chaos.rate", "250"))
            // Asked for, but on local-cluster (one host) Spark launches no copies: the report
            // counts them (0 here); SpeculationIT runs the speculative-copy row on two hosts.
            .set("spark.speculation", "true")
            .set("spark.speculation.interval", "100ms")
            .set("spark.speculation.multiplier", "1.2")
            .set("spark.speculation.quantile", "0.5");
    // Task failures at the commit protocol's points (the chaos kit's TaskFaults), in the executors.
    String executorOptions =
        System.getProperty("chaos.executorOptions", "") + " " + ChaosJob.FAST_START_OPTIONS;
    if (!executorOptions.isBlank()) {
      conf.set(
          "spark.executor.extraJavaOptions",
          conf.get("spark.executor.extraJavaOptions", "") + " " + executorOptions);
    }
    if (mode.startsWith("structured")) {
      structured(conf, mode, args, bootstrap, db, topic, expected);
      return;
    }
    JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.seconds(1));
    // The chaos report counts these lines: whether the speculation the conf asks for happened.
    ssc.sparkContext()
        .sc()
        .addSparkListener(
            new SparkListener() {
              @Override
              public void onTaskStart(SparkListenerTaskStart start) {
                if (start.taskInfo().speculative()) {
                  System.out.println(
                      ChaosReport.SPECULATIVE_COPY_MARKER
                          + ": stage "
                          + start.stageId()
                          + " task "
                          + start.taskInfo().index()
                          + " on "
                          + start.taskInfo().host());
                }
              }
            });
    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", bootstrap);
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);

    int slowMs = Integer.getInteger("chaos.slowMs", 4);
    // How many offsets the sink has committed (-1 while its backend is away).
    LongSupplier committed;
    if (mode.equals("batch")) {
      // An aggregate after a shuffle: per-bucket totals, one transaction per batch.
      JdbcBatchSink<Tuple2<String, Long>> sink = totalsSink("chaos", db);
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
      ExactlyOnce.foreachBatch(
          stream,
          rdd ->
              rdd.mapToPair(r -> new Tuple2<>(bucketOf(slow(r.value(), slowMs)), 1L))
                  .reduceByKey(Long::sum)
                  .map(t -> t),
          sink);
      committed = () -> committed(db, SINK_OFFSETS);
    } else if (mode.equals("cassandra")) {
      CassandraSink<String> sink = totalsInCassandra(args);
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
      ExactlyOnce.foreachRDD(stream, r -> List.of(bucketOf(slow(r.value(), slowMs))), sink);
      committed = () -> stored(sink);
    } else if (mode.equals("kafka")) {
      String outTopic = args[6];
      KafkaSink<String> sink = recordsSink("chaos", bootstrap, outTopic).build();
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
      ExactlyOnce.foreachRDD(stream, r -> List.of(slow(r.value(), slowMs)), sink);
      committed = () -> progress(bootstrap, sink.progressGroup());
    } else if (mode.equals("operations")) {
      committed = operations(ssc, params, db, bootstrap, topic, args[6]);
    } else if (mode.equals("naive")) {
      naive(ssc, params, db, topic, slowMs);
      committed = () -> committed(db, "SELECT COALESCE(sum(until_offset), 0) FROM naive_offsets");
    } else if (mode.equals("idempotent")) {
      JdbcIdempotentSink<String[]> sink =
          JdbcSink.<String[]>idempotent("chaos")
              .connection(db)
              .table("chaos_out")
              .columns("id")
              .values(v -> List.of(v[0]))
              .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
              .build();
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
      ExactlyOnce.foreachRDD(
          stream, r -> List.<String[]>of(new String[] {slow(r.value(), slowMs)}), sink);
      committed = () -> committed(db, SINK_OFFSETS);
    } else {
      JdbcSink<String[]> sink = rowsSink("chaos", db);
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
      ExactlyOnce.foreachRDD(stream, r -> List.<String[]>of(row(r, slowMs)), sink);
      committed = () -> committed(db, SINK_OFFSETS);
    }
    ssc.start();
    // The operations run starts at earliest once, and with latest() on every later start (a
    // restart after a kill, the second driver of a rolling deploy), as users pass it on every run.
    String marker = System.getProperty("chaos.firstStartMarker");
    if (marker != null && !Files.exists(Path.of(marker))) {
      Files.createFile(Path.of(marker));
    }
    while (true) {
      if (ssc.awaitTerminationOrTimeout(500)) {
        System.exit(1); // stopped by a failed batch
      }
      // Idle, not finished, until the chaos run has fired its whole schedule: a fault scheduled
      // after the last record must still find a job to hit (ChaosIT checks that each one fired).
      if (ChaosRun.faultsDone() && committed.getAsLong() >= expected(expected)) {
        // Not gracefully: every record's output is committed, so the batches still queued (a
        // backlog of empty ones after a slow start, 10 s and more of them) have nothing to write.
        ssc.stop(true, false);
        System.exit(0);
      }
    }
  }

  /**
   * The Structured Streaming runs. {@code structured} and {@code structured-checkpoint}: a query
   * writing {@link #rowsSink}'s rows through {@code ExactlyOnceForeachBatch.transactional}, the
   * same sink and table as the transactional DStream run; with a checkpoint ({@code args[6]}) a
   * restarted driver resumes from it (Spark re-runs the batch the kill interrupted, which the
   * sink's stored offsets skip or trim), without from the sink's stored offsets alone. {@code
   * structured-cassandra}: running totals per bucket in Cassandra ({@code args[6..8]} as for the
   * cassandra run) through {@code ExactlyOnceForeachBatch.idempotent}, without a checkpoint. {@code
   * structured-kafka}: the kafka run's output topic ({@code args[6]}) through {@code
   * ExactlyOnceForeachBatch.transactional} (strategy K), without a checkpoint.
   */
  private static void structured(
      SparkConf conf,
      String mode,
      String[] args,
      String bootstrap,
      JdbcSettings db,
      String topic,
      long expected)
      throws Exception {
    int slowMs = Integer.getInteger("chaos.slowMs", 4);
    SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
    Map<String, String> source =
        Map.of(
            "kafka.bootstrap.servers",
            bootstrap,
            "subscribe",
            topic,
            // Many batches, so that faults land mid-stream (the DStream runs' rate).
            "maxOffsetsPerTrigger",
            Integer.toString(4 * Integer.getInteger("chaos.rate", 250)));
    ExactlyOnceForeachBatch.Builder<?> query;
    LongSupplier committed;
    if (mode.equals("structured-kafka")) {
      KafkaSink<String> sink = recordsSink("chaos", bootstrap, args[6]).build();
      query =
          ExactlyOnceForeachBatch.transactional(sink)
              .kafka(spark, source)
              .foreachRecord(r -> List.of(slow(utf8(r.value()), slowMs)));
      committed = () -> progress(bootstrap, sink.progressGroup());
    } else if (mode.equals("structured-cassandra")) {
      CassandraSink<String> sink = totalsInCassandra(args);
      query =
          ExactlyOnceForeachBatch.idempotent(sink)
              .kafka(spark, source)
              .foreachRecord(r -> List.of(bucketOf(slow(utf8(r.value()), slowMs))));
      committed = () -> stored(sink);
    } else {
      JdbcSink<String[]> sink = rowsSink("chaos", db);
      query =
          ExactlyOnceForeachBatch.transactional(sink)
              .kafka(spark, source)
              .foreachRecord(
                  r ->
                      List.<String[]>of(
                          new String[] {
                            slow(utf8(r.value()), slowMs),
                            r.topic(),
                            Integer.toString(r.partition()),
                            Long.toString(r.offset())
                          }));
      if (mode.equals("structured-checkpoint")) {
        query.checkpointLocation(args[6]);
      }
      committed = () -> committed(db, SINK_OFFSETS);
    }
    StreamingQuery q = query.start();
    while (true) {
      if (q.awaitTermination(500)) {
        System.exit(1); // stopped by a failed batch
      }
      if (ChaosRun.faultsDone() && committed.getAsLong() >= expected(expected)) {
        q.stop();
        System.exit(0);
      }
    }
  }

  private static String utf8(byte[] bytes) {
    return new String(bytes, StandardCharsets.UTF_8);
  }

  /** Running totals per bucket in Cassandra; args[6]: host:port, [7]: data center, [8]: table. */
  private static CassandraSink<String> totalsInCassandra(String[] args) {
    return CassandraSink.<String>idempotent("chaos")
        .connection(CassandraSettings.contactPoints(args[7], args[6]))
        .table(args[8])
        .columns("bucket")
        .values(List::of)
        .runningTotal("total", bucket -> 1)
        .build();
  }

  /**
   * One stream, four outputs of different strategies (ChaosIT's operations run): JDBC transactional
   * rows ({@code chaos_out}, pipeline ops-t), JDBC idempotent rows ({@code chaos_idem}, ops-i),
   * per-batch totals after a shuffle ({@code chaos_totals}, ops-b) and Kafka transactional records
   * ({@code outTopic}, ops-k). Returns how many offsets the slowest of them has committed.
   */
  private static LongSupplier operations(
      JavaStreamingContext ssc,
      Map<String, Object> params,
      JdbcSettings db,
      String bootstrap,
      String topic,
      String outTopic) {
    int slowMs = Integer.getInteger("chaos.slowMs", 4);
    String marker = System.getProperty("chaos.firstStartMarker");
    boolean first = marker == null || !Files.exists(Path.of(marker));
    JdbcSink<String[]> rows = rowsSink("ops-t", db);
    JdbcIdempotentSink<String> idempotent =
        JdbcSink.<String>idempotent("ops-i")
            .connection(db)
            .table("chaos_idem")
            .columns("id")
            .values(List::of)
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    JdbcBatchSink<Tuple2<String, Long>> totals = totalsSink("ops-b", db);
    KafkaSink<String> records =
        recordsSink("ops-k", bootstrap, outTopic)
            // The run's broker expires a partition's offsets a minute after its last commit.
            .progressKeepAlive(Duration.ofSeconds(20))
            .build();
    // A partition added while the job runs is seen within a second, not after the consumer's
    // default metadata age of 5 minutes.
    params.put("metadata.max.age.ms", 1000);
    ExactlyOnce.<String, String>stream(ssc, params, List.of(topic))
        .startingAt(first ? StartPosition.earliest() : StartPosition.latest())
        .foreachRDD(r -> List.<String[]>of(row(r, slowMs)), rows)
        .foreachRDD(r -> List.of(r.value()), idempotent)
        .foreachBatch(
            rdd ->
                rdd.mapToPair(r -> new Tuple2<>(bucketOf(r.value()), 1L))
                    .reduceByKey(Long::sum)
                    .map(t -> t),
            totals)
        .foreachRDD(r -> List.of(r.value()), records)
        .create();
    String jdbc =
        "SELECT CASE WHEN count(*) = 3 THEN min(s) ELSE 0 END FROM (SELECT sum(until_offset) s"
            + " FROM eos_offsets WHERE pipeline_id IN ('ops-t', 'ops-i', 'ops-b')"
            + " GROUP BY pipeline_id) p";
    return () -> {
      long inDatabase = committed(db, jdbc);
      long inKafka = progress(bootstrap, records.progressGroup(), topic);
      return inDatabase < 0 || inKafka < 0 ? -1 : Math.min(inDatabase, inKafka);
    };
  }

  /**
   * How many offsets the job must commit: {@code fromArgs}, or, with {@code -Dchaos.expectedFile},
   * the number in that file (written once the input is complete; until then, never reached).
   */
  private static long expected(long fromArgs) throws java.io.IOException {
    String file = System.getProperty("chaos.expectedFile");
    if (file == null) {
      return fromArgs;
    }
    Path p = Path.of(file);
    return Files.exists(p) ? Long.parseLong(Files.readString(p).trim()) : Long.MAX_VALUE;
  }

  /** Records as rows of chaos_out with their source position, one transaction per range. */
  private static JdbcSink<String[]> rowsSink(String pipeline, JdbcSettings db) {
    return JdbcSink.<String[]>transactional(pipeline)
        .connection(db)
        .table("chaos_out")
        .columns("id", "src_topic", "src_partition", "src_offset", "src_index")
        .values(v -> List.of(v[0], v[1], Integer.parseInt(v[2]), Long.parseLong(v[3]), 0))
        .batchSize(50)
        .build();
  }

  /** A record as {@link #rowsSink}'s row: its (slowed) value and source position. */
  private static String[] row(ConsumerRecord<String, String> r, int slowMs)
      throws InterruptedException {
    return new String[] {
      slow(r.value(), slowMs), r.topic(), Integer.toString(r.partition()), Long.toString(r.offset())
    };
  }

  /** Per-bucket totals in chaos_totals, one transaction per batch. */
  private static JdbcBatchSink<Tuple2<String, Long>> totalsSink(String pipeline, JdbcSettings db) {
    return JdbcSink.<Tuple2<String, Long>>perBatch(pipeline)
        .connection(db)
        .table("chaos_totals")
        .columns("bucket", "total")
        .values(t -> List.of(t._1(), t._2()))
        .upsertOn("bucket")
        .accumulating("total")
        .build();
  }

  /** Records to {@code outTopic} in Kafka transactions, with timeouts short enough for outages. */
  private static KafkaSink.Builder<String, KafkaSink<String>> recordsSink(
      String pipeline, String bootstrap, String outTopic) {
    return KafkaSink.<String>transactional(pipeline)
        .bootstrapServers(bootstrap)
        .topic(outTopic)
        .key(ToBytes.utf8(v -> v))
        .value(ToBytes.utf8(v -> v))
        .apiTimeout(Duration.ofSeconds(15))
        // A killed driver's producer leaves its transaction open, and the restarted driver cannot
        // start until the broker aborts it: after 20 s rather than the default minute (a range's
        // transaction here takes a few seconds, outages included).
        .transactionTimeout(Duration.ofSeconds(20))
        .producerProperty("delivery.timeout.ms", "20000")
        .producerProperty("request.timeout.ms", "5000");
  }

  /** Slows the mapper (about 2 ms a record), so that a batch is long enough to be hit mid-write. */
  static String slow(String value, int ms) throws InterruptedException {
    if (ms > 0 && value.hashCode() % 2 == 0) {
      // Paces the job, not a wait for a condition: the test's faults need batches that take a
      // while to write, and nothing here waits for anything to happen.
      Thread.sleep(ms);
    }
    return value;
  }

  /** The bucket a record's running total goes to: 37 buckets, so keys see many updates. */
  static String bucketOf(String id) {
    return "b" + Math.floorMod(id.hashCode(), 37);
  }

  /** The sum of the sink's stored offsets; -1 while Cassandra is away. */
  private static long stored(org.exactlyonce.spark.spi.ExactlyOnceSink sink) {
    try (var store = sink.openOffsetStore()) {
      return store.storedOffsets().values().stream().mapToLong(Long::longValue).sum();
    } catch (Exception e) {
      return -1;
    }
  }

  /** The sum of the progress group's committed offsets; -1 while the broker is away. */
  private static long progress(String bootstrap, String group) {
    return progress(bootstrap, group, null);
  }

  /** The sum of the progress group's committed offsets of {@code topic} (null: every topic). */
  private static long progress(String bootstrap, String group, String topic) {
    try (Admin admin =
        Admin.create(
            Map.of(
                "bootstrap.servers", bootstrap,
                "request.timeout.ms", 3000,
                "default.api.timeout.ms", 5000))) {
      long sum = 0;
      for (var e :
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().entrySet()) {
        if (e.getValue() != null && (topic == null || e.getKey().topic().equals(topic))) {
          sum += e.getValue().offset();
        }
      }
      return sum;
    } catch (Exception e) {
      return -1;
    }
  }

  private static long committed(JdbcSettings db, String sql) {
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        ResultSet rs = c.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    } catch (Exception e) {
      return -1; // the database is down for a moment
    }
  }

  /**
   * The at-least-once recipe users hand-write: insert rows from the executors, then store the
   * offsets on the driver. A replay after a crash writes its rows again.
   */
  private static void naive(
      JavaStreamingContext ssc,
      Map<String, Object> params,
      JdbcSettings db,
      String topic,
      int slowMs)
      throws Exception {
    Map<TopicPartition, Long> from = new HashMap<>();
    try (Connection c = DriverManager.getConnection(db.url(), db.toProperties());
        Statement s = c.createStatement()) {
      s.execute(
          "CREATE TABLE IF NOT EXISTS naive_offsets (kafka_partition int PRIMARY KEY, until_offset bigint)");
      try (ResultSet rs =
          s.executeQuery("SELECT kafka_partition, until_offset FROM naive_offsets")) {
        while (rs.next()) {
          from.put(new TopicPartition(topic, rs.getInt(1)), rs.getLong(2));
        }
      }
    }
    params.put("group.id", "naive");
    params.put("auto.offset.reset", "earliest");
    params.put("enable.auto.commit", false);
    JavaInputDStream<ConsumerRecord<String, String>> stream =
        KafkaUtils.createDirectStream(
            ssc,
            LocationStrategies.PreferConsistent(),
            ConsumerStrategies.<String, String>Subscribe(List.of(topic), params, from));
    String url = db.url();
    java.util.Properties props = db.toProperties();
    stream.foreachRDD(
        rdd -> {
          OffsetRange[] ranges = ((HasOffsetRanges) rdd.rdd()).offsetRanges();
          rdd.foreachPartition(
              records -> {
                try (Connection c = DriverManager.getConnection(url, props);
                    PreparedStatement ps =
                        c.prepareStatement(
                            "INSERT INTO chaos_out (id, src_topic, src_partition, src_offset, src_index)"
                                + " VALUES (?, ?, ?, ?, 0)")) {
                  long written = 0;
                  while (records.hasNext()) {
                    ConsumerRecord<String, String> r = records.next();
                    ps.setString(1, slow(r.value(), slowMs));
                    ps.setString(2, r.topic());
                    ps.setInt(3, r.partition());
                    ps.setLong(4, r.offset());
                    ps.executeUpdate(); // autocommit: each row is visible at once
                    written++;
                  }
                  // The rows are durable, the offsets are not stored yet (the driver stores them
                  // after every task): a task failure here makes Spark run the task again, and
                  // the retry writes the same rows a second time. ChaosIT's negative control
                  // fails every first attempt here; only tasks that wrote rows reach the point,
                  // so each injected failure leaves at least one duplicate.
                  if (written > 0) {
                    FaultPoints.reach(FaultPoints.TASK_BEFORE_COMMIT);
                  }
                }
              });
          try (Connection c = DriverManager.getConnection(url, props);
              PreparedStatement ps =
                  c.prepareStatement(
                      "INSERT INTO naive_offsets VALUES (?, ?) ON CONFLICT (kafka_partition)"
                          + " DO UPDATE SET until_offset = excluded.until_offset")) {
            for (OffsetRange r : ranges) {
              ps.setInt(1, r.partition());
              ps.setLong(2, r.untilOffset());
              ps.executeUpdate();
            }
          }
        });
  }
}
