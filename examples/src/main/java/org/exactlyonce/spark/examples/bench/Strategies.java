package org.exactlyonce.spark.examples.bench;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.BatchStatement;
import com.datastax.oss.driver.api.core.cql.BatchStatementBuilder;
import com.datastax.oss.driver.api.core.cql.BatchType;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.Serializable;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaInputDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.apache.spark.streaming.kafka010.HasOffsetRanges;
import org.apache.spark.streaming.kafka010.KafkaUtils;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.apache.spark.streaming.kafka010.OffsetRange;
import org.apache.spark.streaming.scheduler.BatchInfo;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.examples.bench.Benchmarks.Point;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;

/**
 * The compared writers. The at-least-once ones are what a competent user writes by hand; every
 * writer of a backend gets the same pool or session sizes and producer settings as the sink.
 */
final class Strategies {
  /** Guarantee of a strategy. */
  enum Kind {
    AT_LEAST_ONCE,
    EXACTLY_ONCE
  }

  /** Connects a stream to a writer for one run into {@code output}. */
  interface Wiring {
    /** Creates the output (table or topic) of one run, wires the stream, returns a cleanup. */
    Runnable wire(JavaStreamingContext ssc, String topic, Point p, String output) throws Exception;
  }

  /** One compared writer. */
  record Strategy(String backend, Kind kind, String name, Wiring wiring, Strategies owner) {
    String id() {
      return backend + " " + (kind == Kind.EXACTLY_ONCE ? "EO " : "ALO ") + name;
    }

    Measure run(JavaSparkContext sc, String topic, Point p, long total, Path jfr) throws Exception {
      return owner.run(this, sc, topic, p, total, jfr);
    }
  }

  static final int POOL_SIZE = 4;
  static final int CASSANDRA_IN_FLIGHT = 128;
  static final Map<String, String> PRODUCER =
      Map.of("linger.ms", "5", "batch.size", Integer.toString(128 * 1024));

  private final KafkaBroker kafka;
  private final int batchMs;
  private String pgUrl;
  private PostgresServer pg;
  private CassandraServer cassandra;
  private int runNo;

  Strategies(KafkaBroker kafka, int batchMs) {
    this.kafka = kafka;
    this.batchMs = batchMs;
  }

  List<Strategy> all(Set<String> backends) {
    List<Strategy> out = new ArrayList<>();
    // Interleaved so that no backend's at-least-once writer always runs before its sink.
    if (backends.contains("postgres")) {
      pg = TestServers.postgres();
      pgUrl = pg.createDatabase();
      out.add(
          strategy("postgres", Kind.AT_LEAST_ONCE, "pooled reWriteBatchedInserts", this::pgInsert));
      out.add(strategy("postgres", Kind.EXACTLY_ONCE, "JdbcSink.transactional (COPY)", this::pgTx));
      out.add(strategy("postgres", Kind.AT_LEAST_ONCE, "pooled COPY", this::pgCopy));
      out.add(strategy("postgres", Kind.EXACTLY_ONCE, "JdbcSink.perBatch", this::pgPerBatch));
      out.add(
          strategy(
              "postgres", Kind.EXACTLY_ONCE, "JdbcSink.idempotent (by position)", this::pgIdem));
      out.add(
          strategy(
              "postgres",
              Kind.AT_LEAST_ONCE,
              "pooled reWriteBatchedInserts upsert, keyed table",
              this::pgUpsert));
    }
    if (backends.contains("cassandra")) {
      cassandra();
      out.add(
          strategy("cassandra", Kind.AT_LEAST_ONCE, "async rows, 128 in flight", this::casAsync));
      out.add(strategy("cassandra", Kind.EXACTLY_ONCE, "CassandraSink.idempotent", this::casEo));
      out.add(
          strategy(
              "cassandra",
              Kind.AT_LEAST_ONCE,
              "UNLOGGED batches per partition key",
              this::casUnlogged));
    }
    if (backends.contains("kafka")) {
      out.add(strategy("kafka", Kind.AT_LEAST_ONCE, "shared idempotent producer", this::kafkaAlo));
      out.add(strategy("kafka", Kind.EXACTLY_ONCE, "KafkaSink.transactional", this::kafkaEo));
    }
    return out;
  }

  private Strategy strategy(String backend, Kind kind, String name, Wiring w) {
    return new Strategy(backend, kind, name, w, this);
  }

  PostgresServer postgres() {
    return pg != null ? pg : TestServers.postgres();
  }

  String pgUrl() {
    if (pgUrl == null) {
      pg = TestServers.postgres();
      pgUrl = pg.createDatabase();
    }
    return pgUrl;
  }

  CassandraServer cassandra() {
    if (cassandra == null) {
      cassandra = TestServers.cassandra();
      session(cassandra.host(), cassandra.nativePort(), cassandra.localDatacenter())
          .execute(
              "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class':"
                  + " 'SimpleStrategy', 'replication_factor': 1}");
    }
    return cassandra;
  }

  // ---- one run -------------------------------------------------------------------------------

  private Measure run(Strategy s, JavaSparkContext sc, String topic, Point p, long total, Path jfr)
      throws Exception {
    Measure m = new Measure();
    String output = "run_" + (++runNo) + "_" + System.nanoTime() % 1_000_000;
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(batchMs));
    Runnable cleanup = () -> {};
    jdk.jfr.Recording recording = null;
    sc.sc().addSparkListener(m.jobs);
    try {
      ssc.addStreamingListener(m);
      cleanup = s.wiring().wire(ssc, topic, p, output);
      if (jfr != null) {
        recording = Profiles.recording(jfr);
        recording.start();
      }
      ssc.start();
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(20);
      while (m.records() < total) {
        if (ssc.awaitTerminationOrTimeout(100)) {
          throw new IllegalStateException(s.id() + ": the streaming context stopped");
        }
        if (m.failure() != null) {
          throw new IllegalStateException(s.id() + ": a batch failed: " + m.failure());
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(s.id() + ": no end after 20 minutes at " + p.label());
        }
      }
    } finally {
      ssc.stop(false, false);
      if (recording != null) {
        recording.stop();
        recording.close();
      }
      cleanup.run();
      sc.sc().removeSparkListener(m.jobs);
    }
    if (m.records() != total) {
      throw new IllegalStateException(
          s.id() + ": read " + m.records() + " records, the input holds " + total);
    }
    return m;
  }

  /** Per-batch processing time and records, from Spark's own batch reports. */
  static final class Measure implements StreamingListener {
    private final List<long[]> batches = new CopyOnWriteArrayList<>();
    // Spark's own account of the jobs: {start, end} of each job; {launch, finish, deserialize ms,
    // run ms} of each task.
    private final Map<Integer, Long> jobStart = new ConcurrentHashMap<>();
    private final List<long[]> jobSpans = new CopyOnWriteArrayList<>();
    private final List<long[]> taskSpans = new CopyOnWriteArrayList<>();
    final org.apache.spark.scheduler.SparkListener jobs =
        new org.apache.spark.scheduler.SparkListener() {
          @Override
          public void onJobStart(org.apache.spark.scheduler.SparkListenerJobStart start) {
            jobStart.put(start.jobId(), start.time());
          }

          @Override
          public void onJobEnd(org.apache.spark.scheduler.SparkListenerJobEnd end) {
            Long started = jobStart.remove(end.jobId());
            if (started != null) {
              jobSpans.add(new long[] {started, end.time()});
            }
          }

          @Override
          public void onTaskEnd(org.apache.spark.scheduler.SparkListenerTaskEnd end) {
            var info = end.taskInfo();
            var metrics = end.taskMetrics();
            taskSpans.add(
                new long[] {
                  info.launchTime(),
                  info.finishTime(),
                  metrics == null ? 0 : metrics.executorDeserializeTime(),
                  metrics == null ? 0 : metrics.executorRunTime()
                });
          }
        };

    /**
     * Per counted batch: batch generation, Spark jobs and their wall time, tasks' deserialisation
     * and run time (summed), and the jobs' time outside any task (scheduling, results).
     */
    String sparkTimes() {
      List<long[]> windows = countedWindows();
      double n = Math.max(1, windows.size());
      double generation = 0;
      for (int i = 1; i < batches.size(); i++) {
        generation += batches.get(i)[1] - batches.get(i)[4];
      }
      long jobsIn = 0;
      double jobMs = 0;
      double outsideTasks = 0;
      for (long[] j : jobSpans) {
        if (inside(windows, j[0])) {
          jobsIn++;
          jobMs += j[1] - j[0];
          // The part of the job's wall time in which none of its tasks ran.
          List<long[]> own = new ArrayList<>();
          for (long[] t : taskSpans) {
            if (t[0] >= j[0] && t[1] <= j[1]) {
              own.add(t);
            }
          }
          own.sort((a, b) -> Long.compare(a[0], b[0]));
          long covered = 0;
          long reach = j[0];
          for (long[] t : own) {
            long from = Math.max(reach, t[0]);
            if (t[1] > from) {
              covered += t[1] - from;
              reach = t[1];
            }
          }
          outsideTasks += (j[1] - j[0]) - covered;
        }
      }
      double deser = 0;
      double run = 0;
      long tasks = 0;
      for (long[] t : taskSpans) {
        if (inside(windows, t[0])) {
          tasks++;
          deser += t[2];
          run += t[3];
        }
      }
      return String.format(
          "generation %.1f ms; %.1f jobs, %.0f ms wall, of which %.0f ms with no task running;"
              + " %.1f tasks, deserialisation %.1f ms, run %.0f ms (summed)",
          generation / n, jobsIn / n, jobMs / n, outsideTasks / n, tasks / n, deser / n, run / n);
    }

    private static boolean inside(List<long[]> windows, long t) {
      return Profiles.window(windows, t) != null;
    }

    private volatile long records;
    private volatile String failure;

    @Override
    public void onBatchCompleted(StreamingListenerBatchCompleted completed) {
      BatchInfo b = completed.batchInfo();
      scala.collection.Iterator<?> ops = b.outputOperationInfos().valuesIterator();
      while (ops.hasNext()) {
        var op = (org.apache.spark.streaming.scheduler.OutputOperationInfo) ops.next();
        if (op.failureReason().isDefined()) {
          failure = op.failureReason().get();
        }
      }
      if (b.numRecords() == 0) {
        return;
      }
      // The batch's cost: generating it on the driver (DStream.compute: the stream's offset
      // lookups, which differ between Spark's stream and the library's) plus running its jobs.
      long generation = b.submissionTime() - b.batchTime().milliseconds();
      long delay = (Long) b.processingDelay().get();
      long end = (Long) b.processingEndTime().get();
      batches.add(
          new long[] {
            b.numRecords(), generation + delay, b.batchTime().milliseconds(), end, delay
          });
      records += b.numRecords();
    }

    long records() {
      return records;
    }

    String failure() {
      return failure;
    }

    /** Records per second of processing time, without the first batch (pools, JIT, checks). */
    double steadyRecordsPerSecond() {
      List<long[]> sorted = new ArrayList<>(batches);
      long n = 0;
      long ms = 0;
      for (int i = 1; i < sorted.size(); i++) {
        n += sorted.get(i)[0];
        ms += sorted.get(i)[1];
      }
      return ms == 0 ? 0 : n / (ms / 1000.0);
    }

    /** From batch time to the end of its jobs, for each batch but the first. */
    List<long[]> countedWindows() {
      List<long[]> w = new ArrayList<>();
      for (int i = 1; i < batches.size(); i++) {
        w.add(new long[] {batches.get(i)[2], batches.get(i)[3]});
      }
      return w;
    }

    long p50() {
      List<Long> ms = new ArrayList<>();
      for (long[] b : batches) {
        ms.add(b[1]);
      }
      Collections.sort(ms);
      return ms.isEmpty() ? 0 : ms.get((ms.size() - 1) / 2);
    }
  }

  // ---- the streams ---------------------------------------------------------------------------

  /**
   * One consumer group for every run: no run commits to it (the hand-written ones start at the
   * earliest offset, the sinks where they stored), and Spark caches executor consumers by group and
   * partition, so every run reuses the same cached consumers instead of opening new ones.
   */
  private static final String GROUP = "bench";

  private Map<String, Object> params(String group) {
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", kafka.bootstrapServers());
    p.put("key.deserializer", StringDeserializer.class);
    p.put("value.deserializer", StringDeserializer.class);
    p.put("group.id", group);
    p.put("enable.auto.commit", false);
    p.put("max.poll.records", 5000);
    return p;
  }

  /** The hand-written job: the user's foreachRDD over Spark's own stream. */
  private void handWritten(JavaStreamingContext ssc, String topic, String output, RddWriter w) {
    Map<String, Object> p = params(GROUP);
    p.put("auto.offset.reset", "earliest");
    JavaInputDStream<ConsumerRecord<String, String>> stream =
        KafkaUtils.createDirectStream(
            ssc,
            LocationStrategies.PreferConsistent(),
            ConsumerStrategies.<String, String>Subscribe(List.of(topic), p));
    stream.foreachRDD(
        rdd -> {
          OffsetRange[] ranges = ((HasOffsetRanges) rdd.rdd()).offsetRanges();
          long n = 0;
          for (OffsetRange r : ranges) {
            n += r.count();
          }
          if (n > 0) {
            w.write(rdd, ranges);
          }
        });
  }

  interface RddWriter extends Serializable {
    void write(JavaRDD<ConsumerRecord<String, String>> rdd, OffsetRange[] ranges) throws Exception;
  }

  private ExactlyOnceStream<String, String> eoStream(
      JavaStreamingContext ssc, String topic, ExactlyOnceSink sink) {
    return ExactlyOnce.directStream(ssc, params(GROUP), List.of(topic), sink);
  }

  /** A record's output: {id, payload} from a value "r<n>|xxx…". */
  static String[] row(ConsumerRecord<String, String> r) {
    String v = r.value();
    return new String[] {v.substring(0, v.indexOf('|')), v};
  }

  private static final RecordMapper<String, String, String[]> ROWS = r -> List.<String[]>of(row(r));

  // ---- PostgreSQL ----------------------------------------------------------------------------

  private static final Map<String, HikariDataSource> POOLS = new ConcurrentHashMap<>();

  /** The executor's pool, one per JVM, as a competent user keeps it. */
  static HikariDataSource pool(String url, String user) {
    return POOLS.computeIfAbsent(
        url,
        u -> {
          HikariConfig c = new HikariConfig();
          c.setJdbcUrl(u);
          c.setUsername(user);
          c.setMaximumPoolSize(POOL_SIZE);
          c.addDataSourceProperty("reWriteBatchedInserts", "true");
          return new HikariDataSource(c);
        });
  }

  private Runnable pgTable(String table, boolean keyed) throws Exception {
    try (Connection c = pool(pgUrl(), pg.user()).getConnection();
        Statement s = c.createStatement()) {
      s.execute(
          keyed
              ? "CREATE TABLE "
                  + table
                  + " (src_topic text, src_partition int, src_offset bigint, src_index int, id"
                  + " text, payload text, PRIMARY KEY (src_topic, src_partition, src_offset,"
                  + " src_index))"
              : "CREATE TABLE " + table + " (id text, payload text)");
      s.execute(
          "CREATE TABLE IF NOT EXISTS alo_offsets (topic text, kafka_partition int, until_offset"
              + " bigint, PRIMARY KEY (topic, kafka_partition))");
    }
    String url = pgUrl;
    String user = pg.user();
    return () -> {
      try (Connection c = pool(url, user).getConnection();
          Statement s = c.createStatement()) {
        s.execute("DROP TABLE " + table);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    };
  }

  /** The offsets of a hand-written job, stored by the driver after the batch's writes. */
  private static void storeOffsets(String url, String user, OffsetRange[] ranges) throws Exception {
    try (Connection c = pool(url, user).getConnection();
        java.sql.PreparedStatement ps =
            c.prepareStatement(
                "INSERT INTO alo_offsets VALUES (?, ?, ?) ON CONFLICT (topic, kafka_partition)"
                    + " DO UPDATE SET until_offset = excluded.until_offset")) {
      for (OffsetRange r : ranges) {
        ps.setString(1, r.topic());
        ps.setInt(2, r.partition());
        ps.setLong(3, r.untilOffset());
        ps.addBatch();
      }
      ps.executeBatch();
    }
  }

  private Runnable pgInsert(JavaStreamingContext ssc, String topic, Point p, String table)
      throws Exception {
    Runnable drop = pgTable(table, false);
    String url = pgUrl;
    String user = pg.user();
    handWritten(
        ssc,
        topic,
        table,
        (rdd, ranges) -> {
          rdd.foreachPartition(
              it -> {
                try (Connection c = pool(url, user).getConnection();
                    java.sql.PreparedStatement ps =
                        c.prepareStatement(
                            "INSERT INTO " + table + " (id, payload) VALUES (?, ?)")) {
                  c.setAutoCommit(false);
                  int n = 0;
                  while (it.hasNext()) {
                    String[] row = row(it.next());
                    ps.setString(1, row[0]);
                    ps.setString(2, row[1]);
                    ps.addBatch();
                    if (++n % 1000 == 0) {
                      ps.executeBatch();
                    }
                  }
                  ps.executeBatch();
                  c.commit();
                  c.setAutoCommit(true);
                }
              });
          storeOffsets(url, user, ranges);
        });
    return drop;
  }

  /**
   * The idempotent sink's own table shape (six columns, a primary key on the source position),
   * written the way an at-least-once job that survives its replays would: a batched upsert.
   */
  private Runnable pgUpsert(JavaStreamingContext ssc, String topic, Point p, String table)
      throws Exception {
    Runnable drop = pgTable(table, true);
    String url = pgUrl;
    String user = pg.user();
    handWritten(
        ssc,
        topic,
        table,
        (rdd, ranges) -> {
          rdd.foreachPartition(
              it -> {
                try (Connection c = pool(url, user).getConnection();
                    java.sql.PreparedStatement ps =
                        c.prepareStatement(
                            "INSERT INTO "
                                + table
                                + " (src_topic, src_partition, src_offset, src_index, id, payload)"
                                + " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (src_topic,"
                                + " src_partition, src_offset, src_index) DO UPDATE SET id ="
                                + " excluded.id, payload = excluded.payload")) {
                  c.setAutoCommit(false);
                  int n = 0;
                  while (it.hasNext()) {
                    ConsumerRecord<String, String> r = it.next();
                    String[] row = row(r);
                    ps.setString(1, r.topic());
                    ps.setInt(2, r.partition());
                    ps.setLong(3, r.offset());
                    ps.setInt(4, 0);
                    ps.setString(5, row[0]);
                    ps.setString(6, row[1]);
                    ps.addBatch();
                    if (++n % 1000 == 0) {
                      ps.executeBatch();
                    }
                  }
                  ps.executeBatch();
                  c.commit();
                  c.setAutoCommit(true);
                }
              });
          storeOffsets(url, user, ranges);
        });
    return drop;
  }

  private Runnable pgCopy(JavaStreamingContext ssc, String topic, Point p, String table)
      throws Exception {
    Runnable drop = pgTable(table, false);
    String url = pgUrl;
    String user = pg.user();
    handWritten(
        ssc,
        topic,
        table,
        (rdd, ranges) -> {
          rdd.foreachPartition(
              it -> {
                try (Connection c = pool(url, user).getConnection()) {
                  CopyIn copy =
                      c.unwrap(PGConnection.class)
                          .getCopyAPI()
                          .copyIn("COPY " + table + " (id, payload) FROM STDIN");
                  try {
                    StringBuilder chunk = new StringBuilder(64 * 1024);
                    while (it.hasNext()) {
                      String[] row = row(it.next());
                      escape(chunk, row[0]).append('\t');
                      escape(chunk, row[1]).append('\n');
                      if (chunk.length() >= 60 * 1024) {
                        byte[] b = chunk.toString().getBytes(StandardCharsets.UTF_8);
                        copy.writeToCopy(b, 0, b.length);
                        chunk.setLength(0);
                      }
                    }
                    byte[] b = chunk.toString().getBytes(StandardCharsets.UTF_8);
                    copy.writeToCopy(b, 0, b.length);
                    copy.endCopy();
                  } finally {
                    if (copy.isActive()) {
                      copy.cancelCopy();
                    }
                  }
                }
              });
          storeOffsets(url, user, ranges);
        });
    return drop;
  }

  /** COPY's text format: backslash, tab, newline and carriage return escaped. */
  private static StringBuilder escape(StringBuilder sb, String s) {
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      switch (ch) {
        case '\\' -> sb.append("\\\\");
        case '\t' -> sb.append("\\t");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        default -> sb.append(ch);
      }
    }
    return sb;
  }

  private JdbcSettings db() {
    return JdbcSettings.url(pgUrl()).user(pg.user()).maxPoolSize(POOL_SIZE);
  }

  private Runnable pgTx(JavaStreamingContext ssc, String topic, Point p, String table)
      throws Exception {
    Runnable drop = pgTable(table, false);
    var sink =
        JdbcSink.<String[]>transactional("bench-" + table)
            .connection(db())
            .table(table)
            .columns("id", "payload")
            .values(v -> List.of(v[0], v[1]))
            .build();
    ExactlyOnce.foreachRDD(eoStream(ssc, topic, sink), ROWS, sink);
    return andForget(drop, "bench-" + table);
  }

  private Runnable pgPerBatch(JavaStreamingContext ssc, String topic, Point p, String table)
      throws Exception {
    Runnable drop = pgTable(table, false);
    var sink =
        JdbcSink.<String[]>perBatch("bench-" + table)
            .connection(db())
            .table(table)
            .columns("id", "payload")
            .values(v -> List.of(v[0], v[1]))
            .build();
    ExactlyOnce.foreachBatch(eoStream(ssc, topic, sink), rdd -> rdd.map(Strategies::row), sink);
    return andForget(drop, "bench-" + table);
  }

  private Runnable pgIdem(JavaStreamingContext ssc, String topic, Point p, String table)
      throws Exception {
    Runnable drop = pgTable(table, true);
    var sink =
        JdbcSink.<String[]>idempotent("bench-" + table)
            .connection(db())
            .table(table)
            .columns("id", "payload")
            .values(v -> List.of(v[0], v[1]))
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    ExactlyOnce.foreachRDD(eoStream(ssc, topic, sink), ROWS, sink);
    return andForget(drop, "bench-" + table);
  }

  /**
   * Also deletes a JDBC pipeline's rows from the library's offsets and writers tables, so that no
   * run leaves the tables the next one locks and updates larger.
   */
  private Runnable andForget(Runnable drop, String pipeline) {
    String url = pgUrl;
    String user = pg.user();
    return () -> {
      drop.run();
      try (Connection c = pool(url, user).getConnection();
          java.sql.PreparedStatement offsets =
              c.prepareStatement("DELETE FROM eos_offsets WHERE pipeline_id = ?");
          java.sql.PreparedStatement writers =
              c.prepareStatement("DELETE FROM eos_writers WHERE pipeline_id = ?")) {
        offsets.setString(1, pipeline);
        offsets.executeUpdate();
        writers.setString(1, pipeline);
        writers.executeUpdate();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    };
  }

  // ---- Cassandra -----------------------------------------------------------------------------

  private static final Map<String, CqlSession> SESSIONS = new ConcurrentHashMap<>();

  static CqlSession session(String host, int port, String dc) {
    return SESSIONS.computeIfAbsent(
        host + ":" + port,
        k ->
            CqlSession.builder()
                .addContactPoint(new InetSocketAddress(host, port))
                .withLocalDatacenter(dc)
                // The sink's default request timeout (the driver's own is 2 s).
                .withConfigLoader(
                    com.datastax.oss.driver.api.core.config.DriverConfigLoader.programmaticBuilder()
                        .withDuration(
                            com.datastax.oss.driver.api.core.config.DefaultDriverOption
                                .REQUEST_TIMEOUT,
                            java.time.Duration.ofSeconds(10))
                        .build())
                .build());
  }

  private Runnable casTable(String table) {
    CassandraServer cs = cassandra();
    CqlSession s = session(cs.host(), cs.nativePort(), cs.localDatacenter());
    s.execute(
        "CREATE TABLE bench."
            + table
            + " (src_topic text, src_partition int, src_offset bigint, src_index int, id text,"
            + " payload text, PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
    return () -> s.execute("DROP TABLE bench." + table);
  }

  private static final String CAS_INSERT =
      "INSERT INTO bench.%s (src_topic, src_partition, src_offset, src_index, id, payload)"
          + " VALUES (?, ?, ?, ?, ?, ?)";

  private Runnable casAsync(JavaStreamingContext ssc, String topic, Point p, String table) {
    Runnable drop = casTable(table);
    String host = cassandra.host();
    int port = cassandra.nativePort();
    String dc = cassandra.localDatacenter();
    handWritten(
        ssc,
        topic,
        table,
        (rdd, ranges) ->
            rdd.foreachPartition(
                it -> {
                  CqlSession session = session(host, port, dc);
                  PreparedStatement insert = session.prepare(String.format(CAS_INSERT, table));
                  Semaphore inFlight = new Semaphore(CASSANDRA_IN_FLIGHT);
                  List<Throwable> errors = new CopyOnWriteArrayList<>();
                  while (it.hasNext()) {
                    ConsumerRecord<String, String> r = it.next();
                    String[] row = row(r);
                    inFlight.acquire();
                    session
                        .executeAsync(
                            insert.bind(r.topic(), r.partition(), r.offset(), 0, row[0], row[1]))
                        .whenComplete(
                            (ok, e) -> {
                              if (e != null) {
                                errors.add(e);
                              }
                              inFlight.release();
                            });
                  }
                  inFlight.acquire(CASSANDRA_IN_FLIGHT);
                  if (!errors.isEmpty()) {
                    throw new IllegalStateException(errors.get(0));
                  }
                }));
    return drop;
  }

  /**
   * UNLOGGED batches of rows that share their partition key (a Kafka partition's outputs do, in the
   * position-keyed layout), at most ~40 KB each (the node refuses batches above 50 KiB), 16 in
   * flight.
   */
  private Runnable casUnlogged(JavaStreamingContext ssc, String topic, Point p, String table) {
    Runnable drop = casTable(table);
    String host = cassandra.host();
    int port = cassandra.nativePort();
    String dc = cassandra.localDatacenter();
    int rowsPerBatch = Math.max(1, Math.min(100, 40_000 / (p.recordSize() + 60)));
    handWritten(
        ssc,
        topic,
        table,
        (rdd, ranges) ->
            rdd.foreachPartition(
                it -> {
                  CqlSession session = session(host, port, dc);
                  PreparedStatement insert = session.prepare(String.format(CAS_INSERT, table));
                  int inFlightBatches = 16;
                  Semaphore inFlight = new Semaphore(inFlightBatches);
                  List<Throwable> errors = new CopyOnWriteArrayList<>();
                  BatchStatementBuilder batch = BatchStatement.builder(BatchType.UNLOGGED);
                  int n = 0;
                  while (it.hasNext()) {
                    ConsumerRecord<String, String> r = it.next();
                    String[] row = row(r);
                    batch.addStatement(
                        insert.bind(r.topic(), r.partition(), r.offset(), 0, row[0], row[1]));
                    if (++n == rowsPerBatch || !it.hasNext()) {
                      inFlight.acquire();
                      java.util.concurrent.CompletionStage<AsyncResultSet> f =
                          session.executeAsync(batch.build());
                      f.whenComplete(
                          (ok, e) -> {
                            if (e != null) {
                              errors.add(e);
                            }
                            inFlight.release();
                          });
                      batch = BatchStatement.builder(BatchType.UNLOGGED);
                      n = 0;
                    }
                  }
                  inFlight.acquire(inFlightBatches);
                  if (!errors.isEmpty()) {
                    throw new IllegalStateException(errors.get(0));
                  }
                }));
    return drop;
  }

  private Runnable casEo(JavaStreamingContext ssc, String topic, Point p, String table) {
    Runnable drop = casTable(table);
    CassandraServer cs = cassandra();
    var sink =
        CassandraSink.<String[]>idempotent("bench-" + table)
            .connection(
                CassandraSettings.contactPoints(
                    cs.localDatacenter(), cs.host() + ":" + cs.nativePort()))
            .table("bench." + table)
            .columns("id", "payload")
            .values(v -> List.of(v[0], v[1]))
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    ExactlyOnce.foreachRDD(eoStream(ssc, topic, sink), ROWS, sink);
    return drop;
  }

  // ---- Kafka ---------------------------------------------------------------------------------

  private static final Map<String, KafkaProducer<byte[], byte[]>> PRODUCERS =
      new ConcurrentHashMap<>();

  /** One idempotent producer per executor JVM, shared by its tasks, as Kafka recommends. */
  static KafkaProducer<byte[], byte[]> producer(String bootstrap) {
    return PRODUCERS.computeIfAbsent(
        bootstrap,
        b -> {
          Properties p = new Properties();
          p.put("bootstrap.servers", b);
          p.put("enable.idempotence", "true");
          p.put("acks", "all"); // what the sink sets itself
          p.putAll(PRODUCER);
          return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
        });
  }

  private Runnable kafkaTopic(String name, Point p) {
    kafka.createTopic(name, p.partitions());
    return () -> {
      try (var admin = kafka.admin()) {
        admin.deleteTopics(List.of(name)).all().get(60, TimeUnit.SECONDS);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    };
  }

  private Runnable kafkaAlo(JavaStreamingContext ssc, String topic, Point p, String out) {
    String name = "out-" + out;
    Runnable delete = kafkaTopic(name, p);
    String bootstrap = kafka.bootstrapServers();
    handWritten(
        ssc,
        topic,
        out,
        (rdd, ranges) ->
            rdd.foreachPartition(
                it -> {
                  KafkaProducer<byte[], byte[]> producer = producer(bootstrap);
                  List<Future<?>> acks = new ArrayList<>();
                  while (it.hasNext()) {
                    ConsumerRecord<String, String> r = it.next();
                    acks.add(
                        producer.send(
                            new ProducerRecord<>(
                                name,
                                r.partition(),
                                null,
                                r.value().getBytes(StandardCharsets.UTF_8))));
                  }
                  producer.flush();
                  for (var a : acks) {
                    a.get();
                  }
                }));
    return delete;
  }

  private Runnable kafkaEo(JavaStreamingContext ssc, String topic, Point p, String out) {
    String name = "out-" + out;
    Runnable delete = kafkaTopic(name, p);
    var b =
        KafkaSink.<String>transactional("bench-" + out)
            .bootstrapServers(kafka.bootstrapServers())
            .topic(name)
            .value(ToBytes.utf8(v -> v));
    PRODUCER.forEach(b::producerProperty);
    var sink = b.build();
    RecordMapper<String, String, String> values = r -> List.of(r.value());
    ExactlyOnce.foreachRDD(eoStream(ssc, topic, sink), values, sink);
    return delete;
  }
}
