package org.exactlyonce.spark.examples;

import com.datastax.oss.driver.api.core.CqlSession;
import java.io.FileReader;
import java.io.Reader;
import java.io.Serializable;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.spark.SparkConf;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceOutputs;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.kafka.KafkaSink;
import org.exactlyonce.spark.kafka.ToBytes;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import scala.Tuple2;

/**
 * Mobile ad events (clicks and conversions, about 1 % malformed) from Kafka, written exactly once
 * to four outputs by one Spark Streaming job:
 *
 * <ol>
 *   <li>{@code clicks}: every click to PostgreSQL, transactionally;
 *   <li>{@code conversions}: conversions and their value per campaign, an aggregate after a
 *       shuffle, to PostgreSQL per batch;
 *   <li>{@code cassandra}: every event to Cassandra, idempotently;
 *   <li>{@code kafka}: attributed conversions to a Kafka topic, transactionally.
 * </ol>
 *
 * <p>With no server options it starts real Kafka, PostgreSQL and Cassandra servers itself. It
 * produces the events once (a rerun against the same servers does not produce them again), runs
 * until every output caught up, and checks every output against what it produced.
 */
@Command(
    name = "run-example",
    mixinStandardHelpOptions = true,
    description = "Ad clicks and conversions: Kafka -> Spark -> PostgreSQL, Cassandra, Kafka.")
public final class AdEventsPipeline implements Callable<Integer> {
  static final String CLICKS = "clicks";
  static final String CONVERSIONS = "conversions";
  static final String CASSANDRA = "cassandra";
  static final String KAFKA = "kafka";

  /** Set when the job must die in the middle of its next batch (--crash-after). */
  static volatile boolean crashArmed;

  @Option(names = "--records", description = "events to produce (default ${DEFAULT-VALUE})")
  int records = 20_000;

  @Option(
      names = "--partitions",
      description = "partitions of the input (default ${DEFAULT-VALUE})")
  int partitions = 4;

  @Option(names = "--topic", description = "input topic (default ${DEFAULT-VALUE})")
  String topic = "ad-events";

  @Option(
      names = "--outputs",
      split = ",",
      description = "outputs to write: clicks, conversions, cassandra, kafka (default: all)")
  List<String> outputs = List.of(CLICKS, CONVERSIONS, CASSANDRA, KAFKA);

  @Option(
      names = "--crash-after",
      description =
          "kill the job (halt the JVM) in the middle of the batch after this many; running again"
              + " resumes from the stored offsets")
  int crashAfter;

  @Option(names = "--config", description = "a properties file with the settings below")
  Path config;

  @Option(names = "--bootstrap-servers", description = "Kafka to use instead of starting one")
  String bootstrapServers;

  @Option(names = "--jdbc-url", description = "PostgreSQL to use instead of starting one")
  String jdbcUrl;

  @Option(names = "--jdbc-user", description = "database user (default ${DEFAULT-VALUE})")
  String jdbcUser = "postgres";

  @Option(names = "--jdbc-password-env", description = "variable holding the database password")
  String jdbcPasswordEnv;

  @Option(names = "--cassandra", description = "Cassandra host:port to use instead of starting one")
  String cassandra;

  @Option(names = "--cassandra-dc", description = "local data center (default ${DEFAULT-VALUE})")
  String cassandraDc = "datacenter1";

  @Option(
      names = "--master",
      description =
          "Spark master (default: spark-submit's, else local[2,4]; --crash-after needs local)")
  String master;

  @Option(names = "--job-only", hidden = true, description = "run the job only (used internally)")
  boolean jobOnly;

  private final Set<String> enabled = new LinkedHashSet<>();
  private Embedded embedded;

  public static void main(String[] args) {
    int exit = new CommandLine(new AdEventsPipeline()).execute(args);
    System.exit(exit);
  }

  @Override
  public Integer call() throws Exception {
    applyConfig();
    for (String o : outputs) {
      if (!List.of(CLICKS, CONVERSIONS, CASSANDRA, KAFKA).contains(o)) {
        throw new CommandLine.ParameterException(
            new CommandLine(this),
            "unknown output '" + o + "': use clicks, conversions, cassandra, kafka");
      }
      enabled.add(o);
    }
    if (jobOnly) {
      return runJob(crashAfter);
    }
    startMissingServers();
    prepare();
    produceOnce();
    if (crashAfter > 0 && embedded != null && embedded.any()) {
      // The servers live in this JVM: the job that dies runs in a JVM of its own.
      int exit = embedded.runJobInChild(this);
      System.out.printf(
          "%nthe job process died mid-batch (exit %d), as a crash would kill it. Starting the same"
              + " job again: every sink resumes from the offsets it stored.%n%n",
          exit);
    } else if (crashAfter > 0) {
      return runJob(crashAfter); // dies; run the same command again
    }
    int exit = runJob(0);
    return exit != 0 ? exit : summary();
  }

  private void applyConfig() throws Exception {
    if (config == null) {
      return;
    }
    Properties p = new Properties();
    try (Reader r = new FileReader(config.toFile())) {
      p.load(r);
    }
    bootstrapServers = p.getProperty("bootstrap.servers", bootstrapServers);
    jdbcUrl = p.getProperty("jdbc.url", jdbcUrl);
    jdbcUser = p.getProperty("jdbc.user", jdbcUser);
    jdbcPasswordEnv = p.getProperty("jdbc.password.env", jdbcPasswordEnv);
    cassandra = p.getProperty("cassandra.contact.point", cassandra);
    cassandraDc = p.getProperty("cassandra.datacenter", cassandraDc);
    master = p.getProperty("spark.master", master);
    if (p.getProperty("outputs") != null) {
      outputs = List.of(p.getProperty("outputs").split(","));
    }
  }

  private void startMissingServers() {
    boolean needPostgres = enabled.contains(CLICKS) || enabled.contains(CONVERSIONS);
    if (bootstrapServers == null
        || (jdbcUrl == null && needPostgres)
        || (cassandra == null && enabled.contains(CASSANDRA))) {
      embedded = new Embedded();
      if (bootstrapServers == null) {
        System.out.println("starting a Kafka broker (KRaft, forked JVM) ...");
        bootstrapServers = embedded.kafka();
      }
      if (jdbcUrl == null && needPostgres) {
        System.out.println("starting PostgreSQL (embedded binaries) ...");
        String[] urlUser = embedded.postgres();
        jdbcUrl = urlUser[0];
        jdbcUser = urlUser[1];
      }
      if (cassandra == null && enabled.contains(CASSANDRA)) {
        System.out.println("starting Cassandra 5.0 (forked JVM) ...");
        String[] hostDc = embedded.cassandra();
        cassandra = hostDc[0];
        cassandraDc = hostDc[1];
      }
    }
  }

  JdbcSettings db() {
    JdbcSettings db = JdbcSettings.url(jdbcUrl).user(jdbcUser);
    return jdbcPasswordEnv == null ? db : db.passwordFromEnv(jdbcPasswordEnv);
  }

  private CqlSession cql() {
    int colon = cassandra.lastIndexOf(':');
    return CqlSession.builder()
        .addContactPoint(
            new InetSocketAddress(
                cassandra.substring(0, colon), Integer.parseInt(cassandra.substring(colon + 1))))
        .withLocalDatacenter(cassandraDc)
        .build();
  }

  private String attributedTopic() {
    return topic + "-attributed-conversions";
  }

  private String deadLetterTopic() {
    return topic + "-dead-letters";
  }

  /** Topics, tables and the keyspace, created when missing. */
  private void prepare() throws Exception {
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrapServers))) {
      Set<String> existing = admin.listTopics().names().get();
      List<NewTopic> create = new ArrayList<>();
      for (String t : List.of(topic, attributedTopic(), deadLetterTopic())) {
        if (!existing.contains(t)) {
          create.add(new NewTopic(t, t.equals(topic) ? partitions : 2, (short) 1));
        }
      }
      admin.createTopics(create).all().get();
      awaitLeaders(admin, create);
    }
    if (enabled.contains(CLICKS) || enabled.contains(CONVERSIONS)) {
      try (Connection c = DriverManager.getConnection(jdbcUrl, db().toProperties());
          Statement s = c.createStatement()) {
        // No unique key on purpose: a duplicate would show up as a second row in the summary.
        s.execute(
            "CREATE TABLE IF NOT EXISTS clicks (click_id text NOT NULL, campaign text NOT NULL,"
                + " ts bigint NOT NULL)");
        s.execute(
            "CREATE TABLE IF NOT EXISTS campaign_conversions (campaign text PRIMARY KEY,"
                + " conversions bigint NOT NULL, value_cents bigint NOT NULL)");
      }
    }
    if (enabled.contains(CASSANDRA)) {
      try (CqlSession s = cql()) {
        s.execute(
            "CREATE KEYSPACE IF NOT EXISTS ads WITH replication ="
                + " {'class': 'SimpleStrategy', 'replication_factor': 1}");
        s.execute(
            "CREATE TABLE IF NOT EXISTS ads.events (src_topic text, src_partition int,"
                + " src_offset bigint, src_index int, kind text, id text, campaign text,"
                + " PRIMARY KEY ((src_topic, src_partition), src_offset, src_index))");
      }
    }
  }

  private static void awaitLeaders(Admin admin, List<NewTopic> topics) throws Exception {
    for (NewTopic t : topics) {
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (true) {
        try {
          var d = admin.describeTopics(List.of(t.name())).allTopicNames().get().get(t.name());
          if (d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
            break;
          }
        } catch (Exception e) {
          if (System.nanoTime() > deadline) {
            throw e;
          }
        }
        Thread.sleep(50);
      }
    }
  }

  /** Produces the events unless the input already holds them (a rerun). */
  private void produceOnce() throws Exception {
    long present = endOffsets().values().stream().mapToLong(Long::longValue).sum();
    if (present >= records) {
      System.out.printf("topic %s already holds %,d events: not producing again%n", topic, present);
      return;
    }
    System.out.printf("producing %,d ad events (about 1 %% malformed) to %s ...%n", records, topic);
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", bootstrapServers);
    p.put("acks", "all");
    p.put("linger.ms", 5);
    // Spark 3.5's kafka-clients 3.4 idempotent producer was seen to lose records against a 4.1
    // broker (OutOfOrderSequenceException); one request in flight keeps order without it.
    p.put("enable.idempotence", false);
    p.put("max.in.flight.requests.per.connection", 1);
    try (KafkaProducer<String, String> producer =
        new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
      List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
      for (int i = (int) present; i < records; i++) {
        acks.add(producer.send(new ProducerRecord<>(topic, "e" + i, AdEvent.generate(i))));
      }
      producer.flush();
      for (var a : acks) {
        a.get();
      }
    }
  }

  private Map<TopicPartition, Long> endOffsets() throws Exception {
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrapServers))) {
      Map<TopicPartition, OffsetSpec> specs = new HashMap<>();
      admin
          .describeTopics(List.of(topic))
          .allTopicNames()
          .get()
          .get(topic)
          .partitions()
          .forEach(p -> specs.put(new TopicPartition(topic, p.partition()), OffsetSpec.latest()));
      Map<TopicPartition, Long> end = new HashMap<>();
      admin.listOffsets(specs).all().get().forEach((tp, i) -> end.put(tp, i.offset()));
      return end;
    }
  }

  /** One campaign's conversions in a batch. */
  public record CampaignTotal(String campaign, long conversions, long valueCents)
      implements Serializable {}

  /** In the middle of a batch, after --crash-after batches: the process dies, like kill -9. */
  static void crashPoint() {
    if (crashArmed) {
      System.out.println("--crash-after: halting the JVM in the middle of a batch");
      System.out.flush();
      Runtime.getRuntime().halt(137);
    }
  }

  private static List<AdEvent> parsed(ConsumerRecord<String, String> r) {
    crashPoint();
    return List.of(AdEvent.parse(r.value())); // throws on junk: dead letters
  }

  /** Runs the streaming job until every enabled output caught up with the input. */
  int runJob(int crashAfterBatches) throws Exception {
    SparkConf conf = new SparkConf(); // under spark-submit: its settings, master included
    if (master != null || !conf.contains("spark.master")) {
      conf.setMaster(master != null ? master : "local[2,4]");
    }
    conf.setAppName("ad-events-exactly-once")
        .set("spark.ui.enabled", "false")
        .set("spark.driver.host", "127.0.0.1");
    // spark-submit --conf may pace the job differently (SparkSubmitIT slows it down so that an
    // executor can be killed mid-run).
    conf.setIfMissing("spark.streaming.kafka.maxRatePerPartition", "2000");
    // The summary reads each output's metrics the way an operator would: from Spark's metrics
    // system, through its JMX sink (this is the job's own configuration, not the library's).
    conf.setIfMissing(
        "spark.metrics.conf.*.sink.jmx.class", "org.apache.spark.metrics.sink.JmxSink");
    JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.seconds(1));
    Map<String, Object> kafkaParams = new HashMap<>();
    kafkaParams.put("bootstrap.servers", bootstrapServers);
    kafkaParams.put("key.deserializer", StringDeserializer.class);
    kafkaParams.put("value.deserializer", StringDeserializer.class);
    kafkaParams.put("max.poll.records", 2000);
    try {
      // --- the library ----------------------------------------------------------------------
      JdbcSink<AdEvent> clicks =
          !enabled.contains(CLICKS)
              ? null
              : JdbcSink.<AdEvent>transactional("ads-clicks")
                  .connection(db())
                  .table("clicks")
                  .columns("click_id", "campaign", "ts")
                  .values(e -> List.of(e.id(), e.campaign(), e.ts()))
                  .deadLetterTable("eos_dead_letters")
                  .build();
      JdbcBatchSink<CampaignTotal> perCampaign =
          !enabled.contains(CONVERSIONS)
              ? null
              : JdbcSink.<CampaignTotal>perBatch("ads-conversions-per-campaign")
                  .connection(db())
                  .table("campaign_conversions")
                  .columns("campaign", "conversions", "value_cents")
                  .values(t -> List.of(t.campaign(), t.conversions(), t.valueCents()))
                  .upsertOn("campaign")
                  .accumulating("conversions", "value_cents")
                  .build();
      CassandraSink<AdEvent> events =
          enabled.contains(CASSANDRA)
              ? CassandraSink.<AdEvent>idempotent("ads-events")
                  .connection(CassandraSettings.contactPoints(cassandraDc, cassandra))
                  .table("ads.events")
                  .columns("kind", "id", "campaign")
                  .values(e -> List.of(e.kind(), e.id(), e.campaign()))
                  .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
                  .deadLetterTable("ads.eos_dead_letters")
                  .build()
              : null;
      KafkaSink<AdEvent> attributed =
          !enabled.contains(KAFKA)
              ? null
              : KafkaSink.<AdEvent>transactional("ads-attributed-conversions")
                  .bootstrapServers(bootstrapServers)
                  .topic(attributedTopic())
                  .key(ToBytes.utf8(AdEvent::clickId))
                  .value(
                      ToBytes.utf8(
                          e ->
                              e.id()
                                  + ","
                                  + e.clickId()
                                  + ","
                                  + e.campaign()
                                  + ","
                                  + e.valueCents()))
                  .deadLetterTopic(deadLetterTopic())
                  .build();

      // Each output is declared once, with its sink; create() starts the stream where every
      // declared sink's stored offsets say.
      ExactlyOnceOutputs<String, String> outputs =
          ExactlyOnce.<String, String>stream(ssc, kafkaParams, List.of(topic))
              .startingAt(StartPosition.earliest());
      if (enabled.contains(CLICKS)) {
        outputs.foreachRDD(r -> parsed(r).stream().filter(AdEvent::isClick).toList(), clicks);
      }
      if (enabled.contains(CONVERSIONS)) {
        outputs.foreachBatch(
            rdd ->
                rdd.flatMap(
                        r -> {
                          crashPoint();
                          try {
                            AdEvent e = AdEvent.parse(r.value());
                            return e.isConversion()
                                ? List.of(e).iterator()
                                : List.<AdEvent>of().iterator();
                          } catch (IllegalArgumentException junk) {
                            // Kept as dead letters by the other outputs; not a conversion.
                            return List.<AdEvent>of().iterator();
                          }
                        })
                    .mapToPair(e -> new Tuple2<>(e.campaign(), new long[] {1, e.valueCents()}))
                    .reduceByKey((a, b) -> new long[] {a[0] + b[0], a[1] + b[1]})
                    .map(t -> new CampaignTotal(t._1(), t._2()[0], t._2()[1])),
            perCampaign);
      }
      if (events != null) {
        outputs.foreachRDD(AdEventsPipeline::parsed, events);
      }
      if (enabled.contains(KAFKA)) {
        outputs.foreachRDD(
            r -> parsed(r).stream().filter(AdEvent::isConversion).toList(), attributed);
      }
      ExactlyOnceStream<String, String> stream = outputs.create();
      // ----------------------------------------------------------------------------------------

      Set<Long> batches = ConcurrentHashMap.newKeySet();
      // Where each output got to, from the batches' own results: no polling of the backends,
      // which a short outage of one of them would turn into a failure of the job.
      Map<PipelineId, Map<TopicPartition, Long>> committed = new ConcurrentHashMap<>();
      stream.onBatch(
          b -> {
            b.commits()
                .forEach(
                    c ->
                        committed
                            .computeIfAbsent(b.pipelineId(), p -> new ConcurrentHashMap<>())
                            .merge(c.range().topicPartition(), c.range().until(), Math::max));
            boolean first = batches.add(b.batchTimeMs());
            if (b.recordsIn() > 0 || b.replaysSkipped() > 0) {
              System.out.printf(
                  "batch %s %-30s records %,6d  rows %,6d  replays skipped %d  %,5d ms%n",
                  CLOCK.format(java.time.Instant.ofEpochMilli(b.batchTimeMs())),
                  b.pipelineId(),
                  b.recordsIn(),
                  b.rowsWritten(),
                  b.replaysSkipped(),
                  b.millis());
            }
            if (first && crashAfterBatches > 0 && batches.size() >= crashAfterBatches) {
              crashArmed = true;
            }
          });
      Map<TopicPartition, Long> end = endOffsets();
      ssc.start();
      long lastProgress = System.nanoTime();
      String printed = "";
      while (stream.failure() == null && !caughtUp(outputs.pipelines(), committed, end)) {
        ssc.awaitTerminationOrTimeout(1000);
        if (System.nanoTime() - lastProgress >= PROGRESS_EVERY.toNanos()) {
          printed = progress(outputs.pipelines(), committed, end);
          System.out.println(printed);
          lastProgress = System.nanoTime();
        }
      }
      if (stream.failure() == null) {
        String done = progress(outputs.pipelines(), committed, end);
        if (!figures(done).equals(figures(printed))) {
          System.out.println(done); // the last line: every output caught up
        }
        // Before the stop: a stream's metrics sources leave the metrics system with it.
        metricsLines = metricsOf(outputs.pipelines());
      }
      ssc.stop(true, true);
      if (stream.failure() != null) {
        System.out.println("FAILED: " + stream.failure());
        return 1;
      }
      return 0;
    } finally {
      ssc.stop(true, false);
    }
  }

  private static final java.time.format.DateTimeFormatter CLOCK =
      java.time.format.DateTimeFormatter.ofPattern("HH:mm:ss").withZone(java.time.ZoneOffset.UTC);
  private static final Duration PROGRESS_EVERY = Duration.ofSeconds(5);

  /** What the last run read from the metrics system, one line per output, for the summary. */
  private List<String> metricsLines = List.of();

  /** A progress line without its time. */
  private static String figures(String progressLine) {
    int at = progressLine.indexOf("UTC:");
    return at < 0 ? progressLine : progressLine.substring(at);
  }

  /** One line: per output, the records committed of those in the topic, and the lag. */
  private static String progress(
      Collection<PipelineId> pipelines,
      Map<PipelineId, Map<TopicPartition, Long>> committed,
      Map<TopicPartition, Long> end) {
    long total = end.values().stream().mapToLong(Long::longValue).sum();
    StringBuilder line =
        new StringBuilder("progress ")
            .append(CLOCK.format(java.time.Instant.now()))
            .append(" UTC:");
    for (PipelineId p : pipelines) {
      Map<TopicPartition, Long> done = committed.getOrDefault(p, Map.of());
      long n =
          end.entrySet().stream()
              .mapToLong(e -> Math.min(e.getValue(), done.getOrDefault(e.getKey(), 0L)))
              .sum();
      line.append(
          String.format(
              "  %s %,d/%,d (%d %%) lag %,d",
              p, n, total, total == 0 ? 100 : n * 100 / total, total - n));
    }
    return line.toString();
  }

  /**
   * Each output's figures as Spark's metrics system shows them (its JMX sink): the names are {@link
   * org.exactlyonce.spark.ExactlyOnceMetrics}'. Read on the driver, where they are kept.
   */
  private static List<String> metricsOf(Collection<PipelineId> pipelines) {
    javax.management.MBeanServer jmx =
        java.lang.management.ManagementFactory.getPlatformMBeanServer();
    List<String> lines = new ArrayList<>();
    for (PipelineId p : pipelines) {
      String source = ".driver." + org.exactlyonce.spark.ExactlyOnceMetrics.sourceName(p) + ".";
      Map<String, Object> counters = new TreeMap<>();
      Object p50 = null;
      Object p99 = null;
      try {
        for (javax.management.ObjectName n :
            jmx.queryNames(new javax.management.ObjectName("metrics:*"), null)) {
          String name = n.getKeyProperty("name");
          name = name.startsWith("\"") ? javax.management.ObjectName.unquote(name) : name;
          int at = name.indexOf(source);
          if (at < 0) {
            continue;
          }
          String metric = name.substring(at + source.length());
          if (metric.equals(org.exactlyonce.spark.ExactlyOnceMetrics.COMMIT_LATENCY_MS)) {
            p50 = jmx.getAttribute(n, "50thPercentile");
            p99 = jmx.getAttribute(n, "99thPercentile");
          } else if ("counters".equals(n.getKeyProperty("type"))) {
            counters.put(metric, jmx.getAttribute(n, "Count"));
          }
        }
      } catch (javax.management.JMException e) {
        lines.add(String.format("  %-36s not readable from JMX: %s", p, e));
        continue;
      }
      if (counters.isEmpty()) {
        lines.add(String.format("  %-36s no metrics in JMX (spark.metrics.conf overridden?)", p));
        continue;
      }
      lines.add(
          String.format(
              "  %-36s batches %,d, records %,d, rows %,d, replays skipped %,d, trimmed %,d, dead"
                  + " letters %,d, commit p50 %.0f ms, p99 %.0f ms",
              p,
              counters.get("batchesCommitted"),
              counters.get("recordsRead"),
              counters.get("rowsWritten"),
              counters.get("replaysSkipped"),
              counters.get("rangesTrimmed"),
              counters.get("deadLetters"),
              p50 == null ? 0.0 : ((Number) p50).doubleValue(),
              p99 == null ? 0.0 : ((Number) p99).doubleValue()));
    }
    return lines;
  }

  /** Whether every output has committed every partition up to {@code end}. */
  private static boolean caughtUp(
      Collection<PipelineId> pipelines,
      Map<PipelineId, Map<TopicPartition, Long>> committed,
      Map<TopicPartition, Long> end) {
    for (PipelineId p : pipelines) {
      Map<TopicPartition, Long> done = committed.getOrDefault(p, Map.of());
      // An empty partition has nothing to commit.
      if (!end.entrySet().stream()
          .allMatch(e -> e.getValue() == 0 || done.getOrDefault(e.getKey(), 0L) >= e.getValue())) {
        return false;
      }
    }
    return true;
  }

  /** Checks every output against the events produced; 0 if all are exact. */
  private int summary() throws Exception {
    Set<String> clickIds = new HashSet<>();
    Set<String> conversionIds = new HashSet<>();
    Map<String, long[]> perCampaign = new TreeMap<>();
    int malformed = 0;
    for (int i = 0; i < records; i++) {
      try {
        AdEvent e = AdEvent.parse(AdEvent.generate(i));
        if (e.isClick()) {
          clickIds.add(e.id());
        } else {
          conversionIds.add(e.id());
          long[] t = perCampaign.computeIfAbsent(e.campaign(), k -> new long[2]);
          t[0]++;
          t[1] += e.valueCents();
        }
      } catch (IllegalArgumentException junk) {
        malformed++;
      }
    }
    System.out.printf(
        "%nsummary: produced %,d events: %,d clicks, %,d conversions, %,d malformed%n",
        records, clickIds.size(), conversionIds.size(), malformed);
    boolean exact = true;
    if (enabled.contains(CLICKS)) {
      List<String> rows = new ArrayList<>();
      try (Connection c = DriverManager.getConnection(jdbcUrl, db().toProperties());
          ResultSet rs = c.createStatement().executeQuery("SELECT click_id FROM clicks")) {
        while (rs.next()) {
          rows.add(rs.getString(1));
        }
      }
      long dead = count("SELECT count(*) FROM eos_dead_letters WHERE pipeline_id = 'ads-clicks'");
      exact &= report("PostgreSQL clicks", clickIds, rows, malformed, dead);
    }
    if (enabled.contains(CONVERSIONS)) {
      Map<String, long[]> actual = new TreeMap<>();
      try (Connection c = DriverManager.getConnection(jdbcUrl, db().toProperties());
          ResultSet rs =
              c.createStatement()
                  .executeQuery(
                      "SELECT campaign, conversions, value_cents FROM campaign_conversions")) {
        while (rs.next()) {
          actual.put(rs.getString(1), new long[] {rs.getLong(2), rs.getLong(3)});
        }
      }
      boolean equal =
          actual.keySet().equals(perCampaign.keySet())
              && perCampaign.entrySet().stream()
                  .allMatch(e -> java.util.Arrays.equals(e.getValue(), actual.get(e.getKey())));
      System.out.printf(
          "  %-36s %d campaigns, totals %s%n",
          "PostgreSQL conversions per campaign",
          actual.size(),
          equal ? "equal to the input's" : "DIFFERENT from the input's");
      exact &= equal;
    }
    if (enabled.contains(CASSANDRA)) {
      List<String> ids = new ArrayList<>();
      long dead;
      try (CqlSession s = cql()) {
        s.execute("SELECT id FROM ads.events").forEach(r -> ids.add(r.getString(0)));
        dead =
            s.execute(
                    "SELECT count(*) FROM ads.eos_dead_letters WHERE pipeline_id = 'ads-events'"
                        + " ALLOW FILTERING")
                .one()
                .getLong(0);
      }
      Set<String> all = new HashSet<>(clickIds);
      all.addAll(conversionIds);
      exact &= report("Cassandra events", all, ids, malformed, dead);
    }
    if (enabled.contains(KAFKA)) {
      List<String> ids = new ArrayList<>();
      readCommitted(attributedTopic()).forEach(v -> ids.add(v.split(",")[0]));
      long dead = readCommitted(deadLetterTopic()).size(); // only this output writes this topic
      exact &= report("Kafka attributed conversions", conversionIds, ids, malformed, dead);
    }
    if (!metricsLines.isEmpty()) {
      System.out.println("metrics of the last run, from Spark's metrics system (JMX):");
      metricsLines.forEach(System.out::println);
    }
    System.out.println(exact ? "-> EXACTLY ONCE" : "-> BROKEN");
    return exact ? 0 : 2;
  }

  private static boolean report(
      String what, Set<String> expected, List<String> actual, int malformed, long deadLetters) {
    Set<String> distinct = new HashSet<>(actual);
    long duplicates = actual.size() - distinct.size();
    long missing = expected.stream().filter(id -> !distinct.contains(id)).count();
    long unexpected = distinct.stream().filter(id -> !expected.contains(id)).count();
    System.out.printf(
        "  %-36s rows %,d, duplicates %d, missing %d, unexpected %d, dead letters %d of %d%n",
        what, actual.size(), duplicates, missing, unexpected, deadLetters, malformed);
    return duplicates == 0 && missing == 0 && unexpected == 0 && deadLetters == malformed;
  }

  private long count(String sql) throws Exception {
    try (Connection c = DriverManager.getConnection(jdbcUrl, db().toProperties());
        ResultSet rs = c.createStatement().executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  /** Every value of {@code t}, as a read_committed reader sees it. */
  private List<String> readCommitted(String t) {
    Map<String, Object> p = new HashMap<>();
    p.put("bootstrap.servers", bootstrapServers);
    p.put("isolation.level", "read_committed");
    p.put("enable.auto.commit", false);
    List<String> out = new ArrayList<>();
    try (KafkaConsumer<String, String> c =
        new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      c.partitionsFor(t).forEach(i -> tps.add(new TopicPartition(t, i.partition())));
      c.assign(tps);
      c.seekToBeginning(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        c.poll(Duration.ofMillis(200)).forEach(r -> out.add(r.value()));
      }
    }
    return out;
  }

  /** The command line that runs this job, with the same servers, in another JVM. */
  List<String> jobArguments() {
    List<String> args = new ArrayList<>();
    args.addAll(List.of("--job-only", "--topic", topic));
    if (master != null) {
      args.addAll(List.of("--master", master));
    }
    args.addAll(List.of("--outputs", String.join(",", enabled)));
    args.addAll(List.of("--crash-after", Integer.toString(crashAfter)));
    args.addAll(List.of("--bootstrap-servers", bootstrapServers));
    if (jdbcUrl != null) {
      args.addAll(List.of("--jdbc-url", jdbcUrl, "--jdbc-user", jdbcUser));
    }
    if (cassandra != null) {
      args.addAll(List.of("--cassandra", cassandra, "--cassandra-dc", cassandraDc));
    }
    return args;
  }
}
