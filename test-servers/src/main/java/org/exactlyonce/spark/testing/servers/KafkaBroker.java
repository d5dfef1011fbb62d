package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A real Kafka broker (KRaft, combined broker and controller) in a child JVM, from the jars of
 * {@code org.apache.kafka:kafka_2.13}. Start, stop, kill -9 and restart keep its log directory.
 */
public final class KafkaBroker implements AutoCloseable {
  private static final String CLASSPATH_RESOURCE =
      "/org/exactlyonce/spark/testing/servers/kafka-broker.classpath";

  private final Path dir;
  private final String bootstrapServers;
  private final int port;
  private final int controllerPort;
  private final int securePort;
  private final TlsMaterial tls;
  private final Map<String, String> overrides = new java.util.TreeMap<>();
  private ForkedJvm jvm;

  /** The user of the secure listener (SASL/PLAIN over TLS). */
  public static final String SECURE_USER = "alice";

  /** Its password: a test secret, never used for anything else. */
  public static final String SECURE_PASSWORD = "alice-kafka-secret";

  private KafkaBroker(Path dir, TlsMaterial tls) {
    this.dir = dir;
    int[] ports = Ports.free(3); // three different ports: Kafka refuses two listeners on one
    this.port = ports[0];
    this.controllerPort = ports[1];
    this.securePort = ports[2];
    this.tls = tls;
    this.bootstrapServers = "127.0.0.1:" + port;
  }

  private KafkaBroker(String bootstrapServers) {
    this.dir = null;
    this.port = -1;
    this.controllerPort = -1;
    this.securePort = -1;
    this.tls = null;
    this.bootstrapServers = bootstrapServers;
  }

  /**
   * The secure listener ({@code SASL_SSL}, mechanism PLAIN, the certificate of {@link
   * TestServers#tls()}): {@code 127.0.0.1:port}.
   */
  public String secureBootstrapServers() {
    requireEmbedded();
    return "127.0.0.1:" + securePort;
  }

  /**
   * The client settings of the secure listener: {@code security.protocol}, {@code sasl.mechanism},
   * {@code sasl.jaas.config} with {@code password}, and the trust store.
   */
  public Map<String, String> secureClientProperties(String password) {
    requireEmbedded();
    return Map.of(
        "security.protocol",
        "SASL_SSL",
        "sasl.mechanism",
        "PLAIN",
        "sasl.jaas.config",
        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\""
            + SECURE_USER
            + "\" password=\""
            + password
            + "\";",
        "ssl.truststore.location",
        tls.trustStore().toAbsolutePath().toString(),
        "ssl.truststore.password",
        TlsMaterial.STORE_PASSWORD,
        "ssl.truststore.type",
        "PKCS12");
  }

  /**
   * A cluster that runs elsewhere (a Testcontainers container, a local install): tests create
   * topics on it, but it cannot be stopped, killed or restarted from here.
   */
  public static KafkaBroker external(String bootstrapServers) {
    return new KafkaBroker(bootstrapServers);
  }

  /** Formats a new log directory under {@code dir} and starts the broker on free ports. */
  public static KafkaBroker start(Path dir, TlsMaterial tls) {
    return start(dir, tls, Map.of());
  }

  /**
   * Like {@link #start(Path, TlsMaterial)}, with broker settings of the test's own, for example a
   * short {@code offsets.retention.minutes}.
   */
  public static KafkaBroker start(Path dir, TlsMaterial tls, Map<String, String> overrides) {
    KafkaBroker broker = new KafkaBroker(dir, tls);
    broker.overrides.putAll(overrides);
    broker.format();
    broker.startProcess();
    return broker;
  }

  /** {@code 127.0.0.1:port}. */
  public String bootstrapServers() {
    return bootstrapServers;
  }

  /** The pid of the broker JVM. */
  public long pid() {
    requireEmbedded();
    return jvm.pid();
  }

  private void requireEmbedded() {
    if (dir == null) {
      throw new UnsupportedOperationException(
          "the external Kafka at "
              + bootstrapServers
              + " cannot be stopped, killed or restarted from here: fault-injection tests need the"
              + " embedded broker (unset EOS_TEST_KAFKA_BOOTSTRAP)");
    }
  }

  private void format() {
    try {
      Files.createDirectories(dir);
      Properties p = new Properties();
      p.setProperty("process.roles", "broker,controller");
      p.setProperty("node.id", "1");
      p.setProperty("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
      String secure = "SASL_SSL://127.0.0.1:" + securePort;
      p.setProperty(
          "listeners",
          "PLAINTEXT://127.0.0.1:"
              + port
              + ","
              + secure
              + ",CONTROLLER://127.0.0.1:"
              + controllerPort);
      p.setProperty("advertised.listeners", "PLAINTEXT://127.0.0.1:" + port + "," + secure);
      p.setProperty("controller.listener.names", "CONTROLLER");
      p.setProperty("inter.broker.listener.name", "PLAINTEXT");
      p.setProperty(
          "listener.security.protocol.map",
          "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL");
      // The secure listener: TLS with the test certificate, then SASL/PLAIN with one user.
      p.setProperty("listener.name.sasl_ssl.sasl.enabled.mechanisms", "PLAIN");
      p.setProperty(
          "listener.name.sasl_ssl.plain.sasl.jaas.config",
          "org.apache.kafka.common.security.plain.PlainLoginModule required user_"
              + SECURE_USER
              + "=\""
              + SECURE_PASSWORD
              + "\";");
      p.setProperty(
          "listener.name.sasl_ssl.ssl.keystore.location",
          tls.keyStore().toAbsolutePath().toString());
      p.setProperty("listener.name.sasl_ssl.ssl.keystore.password", TlsMaterial.STORE_PASSWORD);
      p.setProperty("listener.name.sasl_ssl.ssl.key.password", TlsMaterial.STORE_PASSWORD);
      p.setProperty("listener.name.sasl_ssl.ssl.keystore.type", "PKCS12");
      p.setProperty("log.dirs", dir.resolve("data").toString());
      p.setProperty("num.partitions", "1");
      p.setProperty("auto.create.topics.enable", "false");
      p.setProperty("offsets.topic.replication.factor", "1");
      p.setProperty("offsets.topic.num.partitions", "4");
      p.setProperty("transaction.state.log.replication.factor", "1");
      p.setProperty("transaction.state.log.min.isr", "1");
      p.setProperty("transaction.state.log.num.partitions", "4");
      p.setProperty("group.initial.rebalance.delay.ms", "0");
      // A restart after kill -9 otherwise waits for the dead broker's session to expire.
      p.setProperty("broker.session.timeout.ms", "2000");
      p.setProperty("broker.heartbeat.interval.ms", "500");
      // A transaction past its timeout is aborted by the coordinator's next scan, every 10 s by
      // default: a test waiting for that abort waited up to 10 s for nothing.
      p.setProperty("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000");
      overrides.forEach(p::setProperty);
      try (var out = Files.newBufferedWriter(config())) {
        p.store(out, "written by KafkaBroker");
      }
      Files.writeString(
          dir.resolve("log4j2.properties"),
          "rootLogger.level=INFO\nrootLogger.appenderRef.f.ref=F\nappender.f.type=File\n"
              + "appender.f.name=F\nappender.f.fileName="
              + dir.resolve("server.log")
              + "\nappender.f.layout.type=PatternLayout\n"
              + "appender.f.layout.pattern=[%d] %p %m (%c)%n\n");
      byte[] id = new byte[16];
      new SecureRandom().nextBytes(id);
      String clusterId = Base64.getUrlEncoder().withoutPadding().encodeToString(id);
      ForkedJvm.run(
          "kafka-storage-format",
          ServerClasspath.read(CLASSPATH_RESOURCE),
          List.of("-Xmx256m", "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties")),
          "kafka.tools.StorageTool",
          // "--cluster-id=<id>", not "-t <id>": a random id may start with '-' and would then be
          // parsed as an option (seen: "argument --cluster-id/-t: expected one argument").
          List.of("format", "--cluster-id=" + clusterId, "--config", config().toString()),
          dir.resolve("format.log"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private Path config() {
    return dir.resolve("server.properties");
  }

  private void startProcess() {
    jvm =
        ForkedJvm.start(
            "kafka-broker",
            ServerClasspath.read(CLASSPATH_RESOURCE),
            List.of(
                "-Xms256m",
                "-Xmx512m",
                "-XX:+UseG1GC",
                "-Djava.net.preferIPv4Stack=true",
                "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties")),
            "kafka.Kafka",
            List.of(config().toString()),
            dir.resolve("stdout.log"));
    awaitReady();
  }

  private void awaitReady() {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    Exception last = null;
    while (System.nanoTime() < deadline) {
      if (!jvm.isAlive()) {
        throw new IllegalStateException("the Kafka broker exited at start:\n" + jvm.tail());
      }
      if (Ports.accepts(port)) {
        try (Admin admin = admin()) {
          admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
          // The broker answers metadata before its group coordinator is ready; a topic create
          // proves the controller is up too.
          admin.listTopics().names().get(5, TimeUnit.SECONDS);
          return;
        } catch (Exception e) {
          last = e;
        }
      }
      Ports.sleep(200);
    }
    throw new IllegalStateException(
        "the Kafka broker did not become ready: " + last + "\n" + jvm.tail());
  }

  /** An admin client for this broker; close it. */
  public Admin admin() {
    return Admin.create(
        Map.of(
            AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG,
            bootstrapServers(),
            AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG,
            10_000,
            AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG,
            20_000));
  }

  /**
   * Creates {@code topic} with {@code partitions} partitions and waits until every partition has a
   * leader (producing to a partition the broker has not finished creating was seen to confuse the
   * 3.4 client's idempotent sequence numbers).
   */
  public void createTopic(String topic, int partitions) {
    try (Admin admin = admin()) {
      admin
          .createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
          .all()
          .get(30, TimeUnit.SECONDS);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (true) {
        TopicDescription d;
        try {
          d =
              admin
                  .describeTopics(List.of(topic))
                  .allTopicNames()
                  .get(10, TimeUnit.SECONDS)
                  .get(topic);
        } catch (ExecutionException e) {
          // Created but not yet in the metadata the broker answers from: ask again.
          if (!(e.getCause()
                  instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException)
              || System.nanoTime() > deadline) {
            throw e;
          }
          Ports.sleep(50);
          continue;
        }
        if (d != null
            && d.partitions().size() == partitions
            && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
          return;
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              "topic " + topic + " has partitions without a leader: " + d);
        }
        Ports.sleep(50);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
      throw new IllegalStateException("cannot create topic " + topic, e);
    }
  }

  /**
   * A string producer for test input; close it. Not idempotent: the 3.4 client's idempotent
   * sequences were seen to desynchronise against this 4.1 broker (OutOfOrderSequenceException,
   * records lost). One request in flight keeps the order; use {@link #send} to check every record.
   */
  public KafkaProducer<String, String> producer() {
    return new KafkaProducer<>(
        Map.of(
            ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
            bootstrapServers(),
            ProducerConfig.ACKS_CONFIG,
            "all",
            ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
            false,
            ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
            1,
            ProducerConfig.LINGER_MS_CONFIG,
            5,
            ProducerConfig.BATCH_SIZE_CONFIG,
            64 * 1024),
        new StringSerializer(),
        new StringSerializer());
  }

  /**
   * A producer of string records with Kafka transactions, initialised: for tests of topics written
   * with transactions (commit markers, aborted records).
   */
  public KafkaProducer<String, String> transactionalProducer(String transactionalId) {
    KafkaProducer<String, String> p =
        new KafkaProducer<>(
            Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                bootstrapServers(),
                ProducerConfig.TRANSACTIONAL_ID_CONFIG,
                transactionalId),
            new StringSerializer(),
            new StringSerializer());
    p.initTransactions();
    return p;
  }

  /** Sends raw {@code records} (for example random bytes) and waits for every acknowledgement. */
  public void sendBytes(List<ProducerRecord<byte[], byte[]>> records) {
    try (KafkaProducer<byte[], byte[]> p =
        new KafkaProducer<>(
            Map.of(
                ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                bootstrapServers(),
                ProducerConfig.ACKS_CONFIG,
                "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
                false,
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION,
                1),
            new org.apache.kafka.common.serialization.ByteArraySerializer(),
            new org.apache.kafka.common.serialization.ByteArraySerializer())) {
      List<Future<RecordMetadata>> acks = new ArrayList<>();
      records.forEach(r -> acks.add(p.send(r)));
      p.flush();
      for (Future<RecordMetadata> a : acks) {
        try {
          a.get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
          throw new IllegalStateException("test input not produced", e);
        }
      }
    }
  }

  /**
   * Sends {@code records} and waits until every one is acknowledged, so a test's input is exactly
   * what it thinks it is.
   *
   * @throws IllegalStateException naming the first record the broker did not acknowledge
   */
  public void send(List<ProducerRecord<String, String>> records) {
    try (KafkaProducer<String, String> p = producer()) {
      List<Future<RecordMetadata>> acks = new ArrayList<>(records.size());
      for (ProducerRecord<String, String> r : records) {
        acks.add(p.send(r));
      }
      p.flush();
      for (int i = 0; i < acks.size(); i++) {
        try {
          acks.get(i).get(60, TimeUnit.SECONDS);
        } catch (Exception e) {
          throw new IllegalStateException(
              "test input not produced: record " + i + " " + records.get(i) + " failed", e);
        }
      }
    }
  }

  /** Graceful stop (SIGTERM): the broker flushes and closes its logs. */
  public void stop() {
    if (jvm != null && jvm.isAlive()) {
      jvm.stop(30);
      Ports.awaitClosed(port, Duration.ofSeconds(30));
    }
  }

  /** SIGKILL: the broker gets no chance to flush. */
  public void kill() {
    requireEmbedded();
    if (jvm != null) {
      jvm.kill();
    }
  }

  /** Starts the broker again on the same ports and log directory. */
  public void restart() {
    requireEmbedded();
    stop();
    startProcess();
  }

  @Override
  public void close() {
    if (jvm != null) {
      jvm.kill();
    }
  }

  @Override
  public String toString() {
    return "KafkaBroker(" + bootstrapServers() + ", " + jvm + ")";
  }
}
