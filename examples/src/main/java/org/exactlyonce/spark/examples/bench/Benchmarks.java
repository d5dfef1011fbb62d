package org.exactlyonce.spark.examples.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.exactlyonce.spark.examples.bench.Strategies.Measure;
import org.exactlyonce.spark.examples.bench.Strategies.Strategy;
import org.exactlyonce.spark.testing.servers.KafkaBroker;
import org.exactlyonce.spark.testing.servers.TestServers;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The price of exactly-once, measured against what a competent user writes by hand: for each
 * backend, this library's exactly-once sinks and the best at-least-once writers (pooled
 * connections, {@code reWriteBatchedInserts} and COPY for PostgreSQL, async single rows and
 * UNLOGGED batches per partition key for Cassandra, one shared idempotent producer for Kafka) read
 * the same Kafka input, in one run, over curves of records per partition per batch, partitions and
 * record size.
 *
 * <p>Method: every server is started and every strategy run once (not reported) before the first
 * measured run; at each point the strategies run in alternating order over {@code --rounds} rounds
 * (forward, then backward), each into a fresh table or topic that is dropped afterwards, so that
 * nothing a run leaves behind changes the next; the figure of a run is records per second of batch
 * processing time (Spark's own {@code processingDelay}) without the run's first batch, and a point
 * reports the median and the spread (min–max) over rounds. Prints figures, writes {@code
 * results.md}, the raw {@code results.csv} and one PNG per curve and backend.
 */
@Command(
    name = "run-benchmarks",
    mixinStandardHelpOptions = true,
    description = "Exactly-once sinks versus competent at-least-once writers, over curves.")
public final class Benchmarks implements Callable<Integer> {

  @Option(
      names = "--rounds",
      description = "alternated rounds per point (default ${DEFAULT-VALUE})")
  int rounds = 3;

  @Option(
      names = "--batches",
      description =
          "batches per run; the first is not counted (pools, JIT, validation) (default"
              + " ${DEFAULT-VALUE})")
  int batches = 3;

  @Option(names = "--batch-ms", description = "batch interval, ms (default ${DEFAULT-VALUE})")
  int batchMs = 500;

  @Option(
      names = "--per-partition",
      split = ",",
      description =
          "the records-per-partition-per-batch curve, at 4 partitions and 100 B (default"
              + " ${DEFAULT-VALUE})")
  List<Integer> perPartition = List.of(250, 1_000, 12_500, 50_000);

  @Option(
      names = "--partitions",
      split = ",",
      description =
          "the partitions curve, at 250 records per partition per batch and 100 B (default"
              + " ${DEFAULT-VALUE})")
  List<Integer> partitions = List.of(4, 100, 1_000);

  @Option(
      names = "--record-sizes",
      split = ",",
      description =
          "the record-size curve in bytes, at 4 partitions and 1,000 records per partition per"
              + " batch (default ${DEFAULT-VALUE})")
  List<Integer> recordSizes = List.of(100, 2_048);

  @Option(
      names = "--backends",
      split = ",",
      description = "any of postgres, cassandra, kafka, bookkeeping (default: all)")
  Set<String> backends =
      new LinkedHashSet<>(List.of("postgres", "cassandra", "kafka", "bookkeeping"));

  @Option(
      names = "--profile",
      description =
          "after the rounds, one JFR-recorded run of every strategy at each --profile-at point;"
              + " prints where the batches' time went")
  boolean profile;

  @Option(
      names = "--profile-only",
      description = "the warm-up and the profiled runs only, no measured rounds")
  boolean profileOnly;

  @Option(
      names = "--profile-at",
      split = ",",
      description =
          "records per partition per batch of the profiled points, at 4 partitions and 100 B"
              + " (default ${DEFAULT-VALUE})")
  List<Integer> profileAt = List.of(1_000, 12_500);

  @Option(
      names = "--profile-batches",
      description =
          "batches per profiled run, the first not counted; more batches, a steadier account"
              + " (default ${DEFAULT-VALUE})")
  int profileBatches = 21;

  @Option(names = "--out", description = "results folder (default ${DEFAULT-VALUE})")
  Path out = Path.of("target", "benchmarks");

  static final int BASE_PARTITIONS = 4;
  static final int BASE_SIZE = 100;
  static final int PARTITION_CURVE_PER_PARTITION = 250;
  static final int SIZE_CURVE_PER_PARTITION = 1_000;
  static final int REFERENCE_PER_PARTITION = 12_500;

  /** One point of a curve: the input's shape. */
  record Point(int partitions, int perPartition, int recordSize) {
    String label() {
      return String.format(
          "%d partitions x %,d records/partition/batch x %d B",
          partitions, perPartition, recordSize);
    }
  }

  /** One measured run of one strategy at one point. */
  record Run(Point point, String strategy, int round, double recordsPerSecond, long p50Ms) {}

  private final List<Run> runs = new ArrayList<>();
  private final List<String> failures = new ArrayList<>();

  private static String rootCause(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return e.getMessage() + (t == e ? "" : " (" + t + ")");
  }

  private final Map<String, String> profiles = new LinkedHashMap<>();
  private final List<String> bookkeeping = new ArrayList<>();
  private KafkaBroker kafka;

  public static void main(String[] args) {
    System.setProperty("java.awt.headless", "true");
    System.exit(new CommandLine(new Benchmarks()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    Instant started = Instant.now();
    System.out.println("starting and warming every server ...");
    kafka = TestServers.kafka();
    Strategies strategies = new Strategies(kafka, batchMs);
    List<Strategy> all = strategies.all(backends);
    List<Point> points = points();
    System.out.printf("%d points x %d strategies x %d rounds%n", points.size(), all.size(), rounds);
    if (!all.isEmpty()) {
      // The warm-up: every server and every strategy once, at the smallest point, not reported.
      Point warm = new Point(BASE_PARTITIONS, 250, BASE_SIZE);
      atPoint(warm, all, 1, false);
    }
    for (Point p : profileOnly ? List.<Point>of() : points) {
      if (!all.isEmpty()) {
        atPoint(p, all, rounds, true);
      }
    }
    if ((profile || profileOnly) && !all.isEmpty()) {
      for (int n : profileAt) {
        profile(all, new Point(BASE_PARTITIONS, n, BASE_SIZE));
      }
    }
    if (backends.contains("bookkeeping")) {
      try {
        bookkeeping.addAll(Bookkeeping.run(strategies));
      } catch (RuntimeException e) {
        failures.add("bookkeeping: " + rootCause(e));
      }
    }
    Report.write(
        out,
        this,
        runs,
        points,
        all,
        profiles,
        bookkeeping,
        failures,
        Duration.between(started, Instant.now()));
    return 0;
  }

  List<Point> points() {
    Set<Point> ps = new LinkedHashSet<>();
    for (int n : perPartition) {
      ps.add(new Point(BASE_PARTITIONS, n, BASE_SIZE));
    }
    for (int p : partitions) {
      ps.add(new Point(p, PARTITION_CURVE_PER_PARTITION, BASE_SIZE));
    }
    for (int s : recordSizes) {
      ps.add(new Point(BASE_PARTITIONS, SIZE_CURVE_PER_PARTITION, s));
    }
    return new ArrayList<>(ps);
  }

  /** Runs every strategy {@code rounds} times at {@code p}, alternating the order. */
  private void atPoint(Point p, List<Strategy> all, int rounds, boolean record) throws Exception {
    String topic = produce(p, batches);
    long total = (long) p.partitions() * p.perPartition() * batches;
    JavaSparkContext sc = sparkContext(p);
    try {
      for (int round = 1; round <= rounds; round++) {
        List<Strategy> order = new ArrayList<>(all);
        if (round % 2 == 0) {
          java.util.Collections.reverse(order);
        }
        for (Strategy s : order) {
          Measure m;
          try {
            m = s.run(sc, topic, p, total, null);
          } catch (Exception e) {
            // A failed run (a baseline's request timing out under load, say) is reported, not
            // counted, and the others go on.
            String why = s.id() + " at " + p.label() + ", round " + round + ": " + rootCause(e);
            failures.add(why);
            System.out.println("  FAILED " + why);
            continue;
          }
          if (record) {
            Run r = new Run(p, s.id(), round, m.steadyRecordsPerSecond(), m.p50());
            runs.add(r);
            System.out.printf(
                "  round %d  %-44s %,12.0f records/s  batch p50 %5d ms  (%s)%n",
                round, s.id(), r.recordsPerSecond(), r.p50Ms(), p.label());
          } else {
            System.out.printf("  warm-up  %-44s done%n", s.id());
          }
        }
      }
    } finally {
      sc.stop();
    }
  }

  /** One more run of every strategy at {@code p}, recorded with JFR. */
  private void profile(List<Strategy> all, Point p) throws Exception {
    String topic = produce(p, profileBatches);
    long total = (long) p.partitions() * p.perPartition() * profileBatches;
    Path dir = out.resolve("jfr");
    Files.createDirectories(dir);
    JavaSparkContext sc = sparkContext(p);
    try {
      for (Strategy s : all) {
        Path file =
            dir.resolve(
                (s.id() + "-" + p.perPartition()).replaceAll("[^A-Za-z0-9.-]+", "_") + ".jfr");
        Measure m;
        try {
          m = s.run(sc, topic, p, total, file);
        } catch (Exception e) {
          failures.add("profile of " + s.id() + " at " + p.label() + ": " + rootCause(e));
          continue;
        }
        String account =
            String.format(
                    "    batch p50 %d ms, %,.0f records/s%n", m.p50(), m.steadyRecordsPerSecond())
                + Profiles.account(file, m.countedWindows(), m.sparkTimes());
        String key = s.id() + "  at " + p.label();
        profiles.put(key, account);
        System.out.println("  profiled " + key + "\n" + account);
      }
    } finally {
      sc.stop();
    }
  }

  private JavaSparkContext sparkContext(Point p) {
    // The rate limit makes every batch hold exactly perPartition records of each partition (the
    // whole input is in the topic before the run starts). One context per point: the limit is
    // read from the context's configuration.
    double perSecond = p.perPartition() * 1000.0 / batchMs;
    return new JavaSparkContext(
        new SparkConf()
            .setAppName("benchmarks")
            .setMaster("local[2]")
            .set("spark.ui.enabled", "false")
            .set("spark.driver.host", "127.0.0.1")
            .set("spark.streaming.kafka.maxRatePerPartition", Long.toString((long) perSecond))
            // Spark sizes its executor consumer cache once per JVM (default 64): room for the
            // largest point's partitions, else every batch there would open new consumers.
            .set(
                "spark.streaming.kafka.consumer.cache.maxCapacity",
                Integer.toString(
                    Math.max(
                        64, 2 * partitions.stream().mapToInt(Integer::intValue).max().orElse(4)))));
  }

  private final Map<List<Integer>, String> topics = new HashMap<>();

  /** The input of a point: {@code n} batches' worth of records, produced once. */
  private String produce(Point p, int n) {
    // The single broker here has, a few times, left one partition of a new topic unanswered until
    // the producer's delivery timeout: the input then goes to a new topic.
    for (int attempt = 1; ; attempt++) {
      try {
        return produceOnce(p, n);
      } catch (IllegalStateException e) {
        if (attempt == 3) {
          throw e;
        }
        System.out.println("input not produced (" + e.getCause() + "); again on a new topic");
      }
    }
  }

  private String produceOnce(Point point, int batchesOfInput) {
    return topics.computeIfAbsent(
        List.of(point.partitions(), point.perPartition(), point.recordSize(), batchesOfInput),
        key -> {
          String topic =
              "bench-"
                  + point.partitions()
                  + "-"
                  + point.perPartition()
                  + "-"
                  + point.recordSize()
                  + "-"
                  + System.nanoTime();
          kafka.createTopic(topic, point.partitions());
          long n = (long) point.partitions() * point.perPartition() * batchesOfInput;
          System.out.printf("producing %,d records to %s ...%n", n, topic);
          Map<String, Object> c = new HashMap<>();
          c.put("bootstrap.servers", kafka.bootstrapServers());
          c.put("acks", "all");
          c.put("linger.ms", 10);
          c.put("batch.size", 512 * 1024);
          c.put("delivery.timeout.ms", 45_000);
          c.put("request.timeout.ms", 15_000);
          try (KafkaProducer<byte[], byte[]> producer =
              new KafkaProducer<>(c, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<?>> acks = new ArrayList<>();
            String pad = "x".repeat(point.recordSize());
            for (long i = 0; i < n; i++) {
              String id = "r" + i + "|";
              byte[] value =
                  (id + pad.substring(0, Math.max(0, point.recordSize() - id.length())))
                      .getBytes(java.nio.charset.StandardCharsets.UTF_8);
              acks.add(
                  producer.send(
                      new ProducerRecord<>(topic, (int) (i % point.partitions()), null, value)));
              if (acks.size() >= 100_000) {
                for (var a : acks) {
                  a.get();
                }
                acks.clear();
              }
            }
            producer.flush();
            for (var a : acks) {
              a.get();
            }
          } catch (Exception e) {
            throw new IllegalStateException("benchmark input not produced", e);
          }
          return topic;
        });
  }

  int batches() {
    return batches;
  }

  int rounds() {
    return rounds;
  }

  int batchMs() {
    return batchMs;
  }
}
