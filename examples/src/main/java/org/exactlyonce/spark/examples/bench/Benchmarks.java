package org.exactlyonce.spark.examples.bench;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.AsyncResultSet;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
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
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.SourcePosition;
import org.exactlyonce.spark.kafka.ToBytes;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The price of exactly-once: on the same Kafka data, in one run, each backend's hand-written
 * at-least-once write against this library's exactly-once sink, plus the raw read alone. Prints
 * records/s, per-batch latency (p50/p99) and the ratio exactly-once / at-least-once per backend;
 * writes a Markdown table and a PNG chart.
 */
@Command(
    name = "run-benchmarks",
    mixinStandardHelpOptions = true,
    description = "Exactly-once sinks versus hand-written at-least-once writes, side by side.")
public final class Benchmarks implements Callable<Integer> {

  @Option(names = "--records", description = "input records (default ${DEFAULT-VALUE})")
  int records = 200_000;

  @Option(
      names = "--record-size",
      description = "value bytes per record (default ${DEFAULT-VALUE})")
  int recordSize = 100;

  @Option(names = "--partitions", description = "input partitions (default ${DEFAULT-VALUE})")
  int partitions = 4;

  @Option(names = "--batch-ms", description = "batch interval, ms (default ${DEFAULT-VALUE})")
  int batchMs = 1000;

  @Option(
      names = "--batches",
      description = "batches the input is spread over by the rate limit (default ${DEFAULT-VALUE})")
  int batches = 4;

  @Option(
      names = "--outputs-per-record",
      description = "outputs per record (default ${DEFAULT-VALUE})")
  int outputsPerRecord = 1;

  @Option(
      names = "--backends",
      split = ",",
      description = "any of raw, postgres, cassandra, kafka, overhead (default: all)")
  List<String> backends = List.of("raw", "postgres", "cassandra", "kafka", "overhead");

  @Option(names = "--out", description = "results folder (default ${DEFAULT-VALUE})")
  Path out = Path.of("target", "benchmarks");

  /** One measured run. */
  public record Result(
      String backend,
      String strategy,
      double recordsPerSecond,
      double steadyRecordsPerSecond,
      long p50Ms,
      long p99Ms,
      int batches) {}

  private final List<Result> results = new ArrayList<>();
  private JavaSparkContext sc;
  private String topic;
  private String bootstrap;
  private static volatile String staticJdbcUrl;

  public static void main(String[] args) {
    System.exit(new CommandLine(new Benchmarks()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    System.out.println("starting servers ...");
    KafkaBroker kafka = TestServers.kafka();
    bootstrap = kafka.bootstrapServers();
    topic = "bench-" + System.nanoTime();
    kafka.createTopic(topic, partitions);
    produce();
    long perPartitionPerSecond =
        Math.max(1, (long) Math.ceil((double) records / partitions / batches / (batchMs / 1000.0)));
    sc =
        new JavaSparkContext(
            new SparkConf()
                .setAppName("benchmarks")
                .setMaster("local[2]")
                .set("spark.ui.enabled", "false")
                .set("spark.driver.host", "127.0.0.1")
                .set(
                    "spark.streaming.kafka.maxRatePerPartition",
                    Long.toString(perPartitionPerSecond)));
    try {
      System.out.println("warming up (a raw read, not reported) ...");
      raw();
      results.clear();
      if (backends.contains("raw")) {
        raw();
      }
      if (backends.contains("postgres")) {
        postgres();
      }
      if (backends.contains("cassandra")) {
        cassandra();
      }
      if (backends.contains("kafka")) {
        kafka(kafka);
      }
      if (backends.contains("overhead")) {
        overhead();
      }
    } finally {
      sc.stop();
    }
    report();
    return 0;
  }

  private void produce() {
    System.out.printf("producing %,d records of %d bytes to %s ...%n", records, recordSize, topic);
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", bootstrap);
    p.put("acks", "all");
    p.put("linger.ms", 10);
    p.put("batch.size", 256 * 1024);
    p.put("enable.idempotence", false);
    p.put("max.in.flight.requests.per.connection", 1);
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
      for (int i = 0; i < records; i++) {
        String id = "r" + i + "|";
        byte[] value = (id + "x".repeat(Math.max(0, recordSize - id.length()))).getBytes();
        acks.add(producer.send(new ProducerRecord<>(topic, i % partitions, null, value)));
      }
      producer.flush();
      for (var a : acks) {
        a.get();
      }
    } catch (Exception e) {
      throw new IllegalStateException("benchmark input not produced", e);
    }
  }

  private Map<String, Object> params(String group) {
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", bootstrap);
    p.put("key.deserializer", StringDeserializer.class);
    p.put("value.deserializer", StringDeserializer.class);
    p.put("group.id", group);
    p.put("auto.offset.reset", "earliest");
    p.put("enable.auto.commit", false);
    p.put("max.poll.records", 5000);
    return p;
  }

  /** Collects each batch's processing time and record count. */
  static final class Measure {
    final List<Long> batchMillis = new CopyOnWriteArrayList<>();
    final List<Long> batchRecords = new CopyOnWriteArrayList<>();
    final AtomicLong records = new AtomicLong();

    void batch(long millis, long n) {
      if (n == 0) {
        return;
      }
      batchMillis.add(millis);
      batchRecords.add(n);
      records.addAndGet(n);
    }

    Result result(String backend, String strategy, long total) {
      List<Long> sorted = new ArrayList<>(batchMillis);
      Collections.sort(sorted);
      long p50 = sorted.isEmpty() ? 0 : sorted.get((sorted.size() - 1) / 2);
      long p99 = sorted.isEmpty() ? 0 : sorted.get((int) Math.ceil(sorted.size() * 0.99) - 1);
      // Per second of batch processing time: the rate limit spreads the input over several
      // batches, so wall time would measure the batch interval, not the sink.
      double secs = Math.max(1, sorted.stream().mapToLong(Long::longValue).sum()) / 1000.0;
      // Without the first batch, which also pays for setup (pools, validation, JIT).
      long steadyRecords = batchRecords.stream().skip(1).mapToLong(Long::longValue).sum();
      long steadyMillis = batchMillis.stream().skip(1).mapToLong(Long::longValue).sum();
      double steady = steadyMillis == 0 ? 0 : steadyRecords / (steadyMillis / 1000.0);
      return new Result(backend, strategy, total / secs, steady, p50, p99, sorted.size());
    }
  }

  /** A hand-written job: the user's foreachRDD over Spark's own stream. */
  private Result handWritten(String backend, String strategy, RddWriter writer) throws Exception {
    Measure m = new Measure();
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(batchMs));
    try {
      JavaInputDStream<ConsumerRecord<String, String>> stream =
          KafkaUtils.createDirectStream(
              ssc,
              LocationStrategies.PreferConsistent(),
              ConsumerStrategies.<String, String>Subscribe(
                  List.of(topic), params("bench-" + strategy + "-" + System.nanoTime())));
      stream.foreachRDD(
          rdd -> {
            OffsetRange[] ranges = ((HasOffsetRanges) rdd.rdd()).offsetRanges();
            long n = 0;
            for (OffsetRange r : ranges) {
              n += r.count();
            }
            long t0 = System.currentTimeMillis();
            if (n > 0) {
              writer.write(rdd, ranges);
            }
            m.batch(System.currentTimeMillis() - t0, n);
          });
      ssc.start();
      while (m.records.get() < records) {
        ssc.awaitTerminationOrTimeout(100);
      }
    } finally {
      ssc.stop(false, true);
    }
    return print(m.result(backend, strategy, records));
  }

  interface RddWriter {
    void write(
        org.apache.spark.api.java.JavaRDD<ConsumerRecord<String, String>> rdd, OffsetRange[] ranges)
        throws Exception;
  }

  /** A job on this library: {@code wire} connects the stream to the sink. */
  private Result exactlyOnce(
      String backend,
      String strategy,
      ExactlyOnceSink sink,
      Consumer<ExactlyOnceStream<String, String>> wire)
      throws Exception {
    Measure m = new Measure();
    JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(batchMs));
    try {
      Map<String, Object> p = params("eos-bench-" + System.nanoTime());
      p.remove("auto.offset.reset");
      ExactlyOnceStream<String, String> stream =
          ExactlyOnce.directStream(ssc, p, List.of(topic), sink);
      stream.onBatch(b -> m.batch(b.millis(), b.recordsIn()));
      wire.accept(stream);
      ssc.start();
      while (m.records.get() < records && stream.failure() == null) {
        ssc.awaitTerminationOrTimeout(100);
      }
      if (stream.failure() != null) {
        throw new IllegalStateException("the benchmark job failed", stream.failure());
      }
    } finally {
      ssc.stop(false, true);
    }
    return print(m.result(backend, strategy, records));
  }

  private Result print(Result r) {
    results.add(r);
    System.out.printf(
        "%-10s %-56s %,10.0f records/s (%,10.0f after the first batch)   batch p50 %5d ms  p99"
            + " %5d ms  (%d batches)%n",
        r.backend(),
        r.strategy(),
        r.recordsPerSecond(),
        r.steadyRecordsPerSecond(),
        r.p50Ms(),
        r.p99Ms(),
        r.batches());
    return r;
  }

  /** {@code k} copies of each record's value. */
  private static RecordMapper<String, String, String> values(int k) {
    return rec -> Collections.nCopies(k, rec.value());
  }

  // ---- raw read ------------------------------------------------------------------------------

  private void raw() throws Exception {
    handWritten(
        "kafka-read",
        "raw read, no output (upper bound)",
        (rdd, ranges) ->
            rdd.foreachPartition(
                it -> {
                  while (it.hasNext()) {
                    it.next();
                  }
                }));
  }

  // ---- PostgreSQL ----------------------------------------------------------------------------

  private void postgres() throws Exception {
    PostgresServer pg = TestServers.postgres();
    String url = pg.createDatabase();
    String user = pg.user();
    try (Connection c = DriverManager.getConnection(url, user, "");
        Statement s = c.createStatement()) {
      for (String t : List.of("alo", "eos_copy", "eos_insert", "overhead")) {
        s.execute(
            "CREATE TABLE IF NOT EXISTS "
                + t
                + " (id text, payload text, src_partition int, src_offset bigint)");
      }
      s.execute(
          "CREATE TABLE IF NOT EXISTS alo_offsets (kafka_partition int PRIMARY KEY, until_offset bigint)");
    }
    staticJdbcUrl = url;
    int k = outputsPerRecord;
    Result alo =
        handWritten(
            "postgres",
            "at-least-once: executeBatch(1000) in foreachPartition",
            (rdd, ranges) -> {
              String u = url;
              rdd.foreachPartition(
                  it -> {
                    try (Connection c = DriverManager.getConnection(u, user, "");
                        java.sql.PreparedStatement ps =
                            c.prepareStatement(
                                "INSERT INTO alo (id, payload, src_partition, src_offset) VALUES (?, ?, ?, ?)")) {
                      c.setAutoCommit(false);
                      int n = 0;
                      while (it.hasNext()) {
                        ConsumerRecord<String, String> r = it.next();
                        for (int i = 0; i < k; i++) {
                          String v = r.value();
                          ps.setString(1, v.substring(0, v.indexOf('|')));
                          ps.setString(2, v);
                          ps.setInt(3, r.partition());
                          ps.setLong(4, r.offset());
                          ps.addBatch();
                          if (++n % 1000 == 0) {
                            ps.executeBatch();
                          }
                        }
                      }
                      ps.executeBatch();
                      c.commit();
                    }
                  });
              try (Connection c = DriverManager.getConnection(u, user, "");
                  java.sql.PreparedStatement ps =
                      c.prepareStatement(
                          "INSERT INTO alo_offsets VALUES (?, ?) ON CONFLICT (kafka_partition)"
                              + " DO UPDATE SET until_offset = excluded.until_offset")) {
                for (OffsetRange r : ranges) {
                  ps.setInt(1, r.partition());
                  ps.setLong(2, r.untilOffset());
                  ps.addBatch();
                }
                ps.executeBatch();
              }
            });
    JdbcSettings db = JdbcSettings.url(url).user(user);
    for (boolean copy : new boolean[] {true, false}) {
      JdbcSink<String[]> sink =
          JdbcSink.<String[]>transactional(copy ? "bench-pg-copy" : "bench-pg-insert")
              .connection(db)
              .table(copy ? "eos_copy" : "eos_insert")
              .columns("id", "payload", "src_partition", "src_offset")
              .values(v -> List.of(v[0], v[1], Integer.parseInt(v[2]), Long.parseLong(v[3])))
              .copy(copy)
              .build();
      RecordMapper<String, String, String[]> mapper = pgRows(k);
      Result eos =
          exactlyOnce(
              "postgres",
              copy
                  ? "exactly-once: JdbcSink.transactional (COPY)"
                  : "exactly-once: JdbcSink.transactional, copy(false)",
              sink,
              s -> ExactlyOnce.foreachRDD(s, mapper, sink));
      ratio("postgres", eos, alo);
    }
  }

  private static RecordMapper<String, String, String[]> pgRows(int k) {
    return r -> {
      List<String[]> out = new ArrayList<>(k);
      String v = r.value();
      for (int i = 0; i < k; i++) {
        out.add(
            new String[] {
              v.substring(0, v.indexOf('|')),
              v,
              Integer.toString(r.partition()),
              Long.toString(r.offset())
            });
      }
      return out;
    };
  }

  // ---- Cassandra -----------------------------------------------------------------------------

  private static volatile CqlSession aloSession;

  private static synchronized CqlSession aloSession(String host, int port, String dc) {
    if (aloSession == null) {
      aloSession =
          CqlSession.builder()
              .addContactPoint(new InetSocketAddress(host, port))
              .withLocalDatacenter(dc)
              .build();
    }
    return aloSession;
  }

  private void cassandra() throws Exception {
    CassandraServer cs = TestServers.cassandra();
    String host = cs.host();
    int port = cs.nativePort();
    String dc = cs.localDatacenter();
    CqlSession s = aloSession(host, port, dc);
    s.execute(
        "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy',"
            + " 'replication_factor': 1}");
    for (String t : List.of("alo", "eos")) {
      s.execute(
          "CREATE TABLE IF NOT EXISTS bench."
              + t
              + " (src_topic text, src_partition int, src_offset bigint, src_index int,"
              + " id text, payload text, PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
    }
    int k = outputsPerRecord;
    Result alo =
        handWritten(
            "cassandra",
            "at-least-once: executeAsync, 128 in flight",
            (rdd, ranges) ->
                rdd.foreachPartition(
                    it -> {
                      CqlSession session = aloSession(host, port, dc);
                      PreparedStatement insert =
                          session.prepare(
                              "INSERT INTO bench.alo (src_topic, src_partition, src_offset,"
                                  + " src_index, id, payload) VALUES (?, ?, ?, ?, ?, ?)");
                      Semaphore inFlight = new Semaphore(128);
                      List<Throwable> errors = new CopyOnWriteArrayList<>();
                      while (it.hasNext()) {
                        ConsumerRecord<String, String> r = it.next();
                        for (int i = 0; i < k; i++) {
                          inFlight.acquire();
                          String v = r.value();
                          CompletionStage<AsyncResultSet> f =
                              session.executeAsync(
                                  insert.bind(
                                      r.topic(),
                                      r.partition(),
                                      r.offset(),
                                      i,
                                      v.substring(0, v.indexOf('|')),
                                      v));
                          f.whenComplete(
                              (ok, e) -> {
                                if (e != null) {
                                  errors.add(e);
                                }
                                inFlight.release();
                              });
                        }
                      }
                      inFlight.acquire(128);
                      if (!errors.isEmpty()) {
                        throw new IllegalStateException(errors.get(0));
                      }
                    }));
    CassandraSink<String[]> sink =
        CassandraSink.<String[]>idempotent("bench-cassandra")
            .connection(CassandraSettings.contactPoints(dc, host + ":" + port))
            .table("bench.eos")
            .columns("id", "payload")
            .values(v -> List.of(v[0], v[1]))
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    RecordMapper<String, String, String[]> mapper = pgRows(k);
    Result eos =
        exactlyOnce(
            "cassandra",
            "exactly-once: CassandraSink.idempotent",
            sink,
            st -> ExactlyOnce.foreachRDD(st, mapper, sink));
    ratio("cassandra", eos, alo);
  }

  // ---- Kafka ---------------------------------------------------------------------------------

  private static volatile KafkaProducer<byte[], byte[]> aloProducer;

  private static synchronized KafkaProducer<byte[], byte[]> aloProducer(String bootstrap) {
    if (aloProducer == null) {
      Properties p = new Properties();
      p.put("bootstrap.servers", bootstrap);
      p.put("enable.idempotence", true);
      p.put("acks", "all");
      p.put("linger.ms", 5);
      aloProducer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }
    return aloProducer;
  }

  private static RddWriter aloKafka(String b, String outTopic, int k, boolean headers) {
    return (rdd, ranges) ->
        rdd.foreachPartition(
            it -> {
              KafkaProducer<byte[], byte[]> p = aloProducer(b);
              byte[] pipeline = "bench-kafka".getBytes(java.nio.charset.StandardCharsets.UTF_8);
              List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
              while (it.hasNext()) {
                ConsumerRecord<String, String> r = it.next();
                for (int i = 0; i < k; i++) {
                  ProducerRecord<byte[], byte[]> out =
                      new ProducerRecord<>(outTopic, r.partition(), null, r.value().getBytes());
                  if (headers) {
                    out.headers()
                        .add(
                            SourcePosition.HEADER,
                            new SourcePosition(r.topic(), r.partition(), r.offset(), i).toBytes())
                        .add(SourcePosition.PIPELINE_HEADER, pipeline);
                  }
                  acks.add(p.send(out));
                }
              }
              p.flush();
              for (var a : acks) {
                a.get();
              }
            });
  }

  private void kafka(KafkaBroker broker) throws Exception {
    String aloTopic = topic + "-alo";
    String eosTopic = topic + "-eos";
    broker.createTopic(aloTopic, partitions);
    broker.createTopic(eosTopic, partitions);
    Result alo =
        handWritten(
            "kafka",
            "at-least-once: idempotent producer, flush",
            aloKafka(bootstrap, aloTopic, outputsPerRecord, false));
    // The same, with the two headers the sink adds to every record (its source position and
    // pipeline): separates the cost of those bytes from the cost of the transactions.
    String headersTopic = topic + "-alo-headers";
    broker.createTopic(headersTopic, partitions);
    handWritten(
        "kafka",
        "at-least-once: the same, with the sink's two headers",
        aloKafka(bootstrap, headersTopic, outputsPerRecord, true));
    KafkaSink<String> sink =
        KafkaSink.<String>transactional("bench-kafka")
            .bootstrapServers(bootstrap)
            .topic(eosTopic)
            .value(ToBytes.utf8(v -> v))
            .build();
    RecordMapper<String, String, String> mapper = values(outputsPerRecord);
    Result eos =
        exactlyOnce(
            "kafka",
            "exactly-once: KafkaSink.transactional",
            sink,
            st -> ExactlyOnce.foreachRDD(st, mapper, sink));
    ratio("kafka", eos, alo);
  }

  // ---- commit overhead -----------------------------------------------------------------------

  private void overhead() throws Exception {
    PostgresServer pg = TestServers.postgres();
    String url = staticJdbcUrl != null ? staticJdbcUrl : pg.createDatabase();
    try (Connection c = DriverManager.getConnection(url, pg.user(), "");
        Statement s = c.createStatement()) {
      s.execute(
          "CREATE TABLE IF NOT EXISTS overhead (id text, payload text, src_partition int, src_offset bigint)");
    }
    JdbcSink<String[]> sink =
        JdbcSink.<String[]>transactional("bench-overhead")
            .connection(JdbcSettings.url(url).user(pg.user()))
            .table("overhead")
            .columns("id", "payload", "src_partition", "src_offset")
            .values(v -> List.of(v[0], v[1], Integer.parseInt(v[2]), Long.parseLong(v[3])))
            .build();
    // The bookkeeping of one range alone, without Spark or Kafka: epoch check, row lock, decide,
    // compare-and-set, commit (fsync'ed: synchronous_commit=on), for one-record ranges whose
    // record maps to no output.
    TopicPartition tp = new TopicPartition("overhead", 0);
    long epoch;
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      epoch = store.takeWriterEpoch();
      store.storeStartOffsets(Map.of(tp, 0L), epoch);
    }
    List<Long> micros = new ArrayList<>();
    // The floor, interleaved so that both see the same disk: a one-row UPDATE committed alone,
    // the cheapest durable transaction PostgreSQL can do here (one fsync of the WAL).
    List<Long> floorMicros = new ArrayList<>();
    Connection floor = DriverManager.getConnection(url, pg.user(), "");
    try (Statement s = floor.createStatement()) {
      s.execute("CREATE TABLE IF NOT EXISTS overhead_floor (id int PRIMARY KEY, v bigint)");
      s.execute("INSERT INTO overhead_floor VALUES (0, 0) ON CONFLICT DO NOTHING");
    }
    java.sql.PreparedStatement bump =
        floor.prepareStatement("UPDATE overhead_floor SET v = v + 1 WHERE id = 0");
    int commits = 2000;
    for (int i = 0; i < commits + 200; i++) {
      org.exactlyonce.spark.SourceRange range =
          org.exactlyonce.spark.SourceRange.of("overhead", 0, i, i + 1);
      // One record that maps to no output.
      PartitionOutputs<String[]> outputs =
          new PartitionOutputs<>() {
            @Override
            public java.util.Iterator<Positioned<String[]>> positionedFrom(long offset) {
              return Collections.emptyIterator();
            }

            @Override
            public long recordsRead() {
              return 1;
            }

            @Override
            public List<org.exactlyonce.spark.DeadLetter> deadLetters() {
              return List.of();
            }
          };
      long t0 = System.nanoTime();
      var c = sink.commit(epoch, range, outputs);
      long us = (System.nanoTime() - t0) / 1000;
      if (c.outcome() != org.exactlyonce.spark.CommitOutcome.COMMITTED) {
        throw new IllegalStateException("overhead run: " + c);
      }
      long f0 = System.nanoTime();
      bump.executeUpdate(); // autocommit: UPDATE and COMMIT in one round trip
      long floorUs = (System.nanoTime() - f0) / 1000;
      if (i >= 200) { // the first 200 warm up the pool and the JIT
        micros.add(us);
        floorMicros.add(floorUs);
      }
    }
    bump.close();
    floor.close();
    double[] range = percentiles(micros);
    double[] fsync = percentiles(floorMicros);
    System.out.printf(
        "%-10s %-56s p50 %.2f ms  p99 %.2f ms  (%,d range commits)%n",
        "postgres", "offset bookkeeping of one range alone", range[0], range[1], commits);
    System.out.printf(
        "%-10s %-56s p50 %.2f ms  p99 %.2f ms  (%,d commits, interleaved)%n",
        "postgres",
        "floor: a one-row UPDATE committed alone (one fsync)",
        fsync[0],
        fsync[1],
        commits);
    ratios.put(
        "commit overhead per range (target p99 <= 5 ms)",
        String.format(
            "p50 %.2f ms, p99 %.2f ms over %,d range commits; the disk's floor in the same run"
                + " (a one-row UPDATE committed alone): p50 %.2f ms, p99 %.2f ms",
            range[0], range[1], commits, fsync[0], fsync[1]));
    bookkeepingOverPartitions(sink);
  }

  /**
   * The driver's offset bookkeeping of one batch (what the per-batch and idempotent strategies run
   * after writing: epoch check, lock, decide, compare-and-set every range, commit) as a curve over
   * the batch's partitions, to show whether it grows in round trips with them.
   */
  private void bookkeepingOverPartitions(JdbcSink<String[]> sink) {
    StringBuilder curve = new StringBuilder();
    for (int partitions : new int[] {4, 100, 1000}) {
      String topic = "bookkeeping-" + partitions;
      List<Long> micros = new ArrayList<>();
      try (OffsetStore store = sink.openOffsetStore()) {
        long epoch = store.takeWriterEpoch();
        Map<TopicPartition, Long> starts = new java.util.HashMap<>();
        for (int p = 0; p < partitions; p++) {
          starts.put(new TopicPartition(topic, p), 0L);
        }
        store.storeStartOffsets(starts, epoch);
        int batches = 30;
        for (int b = 0; b < batches + 5; b++) {
          List<org.exactlyonce.spark.SourceRange> ranges = new ArrayList<>();
          for (int p = 0; p < partitions; p++) {
            ranges.add(org.exactlyonce.spark.SourceRange.of(topic, p, b, b + 1));
          }
          long t0 = System.nanoTime();
          var commits = store.commitRanges(epoch, ranges);
          long us = (System.nanoTime() - t0) / 1000;
          if (commits.stream()
              .anyMatch(c -> c.outcome() != org.exactlyonce.spark.CommitOutcome.COMMITTED)) {
            throw new IllegalStateException("bookkeeping run: " + commits);
          }
          if (b >= 5) { // the first 5 warm up
            micros.add(us);
          }
        }
      }
      double[] p = percentiles(micros);
      System.out.printf(
          "%-10s %-56s p50 %.2f ms  p99 %.2f ms  (%d batches)%n",
          "postgres",
          "offset bookkeeping of a batch of " + partitions + " partitions",
          p[0],
          p[1],
          micros.size());
      curve.append(String.format("%d partitions: p50 %.2f ms; ", partitions, p[0]));
    }
    ratios.put(
        "offset bookkeeping of one batch over partitions (per-batch and idempotent stores)",
        curve.toString());
  }

  /** p50 and p99 of microsecond samples, in milliseconds. */
  private static double[] percentiles(List<Long> micros) {
    List<Long> sorted = new ArrayList<>(micros);
    Collections.sort(sorted);
    return new double[] {
      sorted.get(sorted.size() / 2) / 1000.0,
      sorted.get((int) Math.ceil(sorted.size() * 0.99) - 1) / 1000.0
    };
  }

  private final Map<String, String> ratios = new LinkedHashMap<>();

  private void ratio(String backend, Result eos, Result alo) {
    ratios.put(
        backend + ": " + eos.strategy().replace("exactly-once: ", ""),
        String.format(
            "%.2fx the at-least-once write (%,.0f vs %,.0f records/s); %.2fx after the first"
                + " batch",
            eos.recordsPerSecond() / alo.recordsPerSecond(),
            eos.recordsPerSecond(),
            alo.recordsPerSecond(),
            eos.steadyRecordsPerSecond() / alo.steadyRecordsPerSecond()));
  }

  private void report() throws Exception {
    System.out.println();
    System.out.println("exactly-once / at-least-once, same data, same run:");
    ratios.forEach((k, v) -> System.out.printf("  %-52s %s%n", k, v));
    Files.createDirectories(out);
    StringBuilder md = new StringBuilder();
    md.append("Run ")
        .append(LocalDate.now())
        .append(": ")
        .append(
            String.format(
                "%,d records of %d bytes, %d partitions, %d ms batches, rate limit spreading the input over %d batches, %d output(s) per record, Spark local[2].%n%n",
                records, recordSize, partitions, batchMs, batches, outputsPerRecord));
    md.append(
        "| backend | strategy | records/s of batch time | same, after the first batch | batch p50"
            + " (ms) | batch p99 (ms) | batches |\n");
    md.append("|---|---|---:|---:|---:|---:|---:|\n");
    for (Result r : results) {
      md.append(
          String.format(
              "| %s | %s | %,.0f | %,.0f | %d | %d | %d |%n",
              r.backend(),
              r.strategy(),
              r.recordsPerSecond(),
              r.steadyRecordsPerSecond(),
              r.p50Ms(),
              r.p99Ms(),
              r.batches()));
    }
    md.append("\n");
    ratios.forEach((k, v) -> md.append("- ").append(k).append(": ").append(v).append("\n"));
    Files.writeString(out.resolve("results.md"), md.toString());
    Chart.write(out.resolve("throughput.png"), "records/s, same input, one run", results);
    System.out.println(
        "\nwrote " + out.resolve("results.md") + " and " + out.resolve("throughput.png"));
  }
}
