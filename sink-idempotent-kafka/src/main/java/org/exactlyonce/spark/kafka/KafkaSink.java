package org.exactlyonce.spark.kafka;

import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SinkProperties;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.kafka.internal.KafkaSpec;
import org.exactlyonce.spark.kafka.internal.TransactionalKafkaCommit;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.spi.TransactionalSink;

/**
 * Kafka sinks. Two strategies, the guarantee in the name:
 *
 * <ul>
 *   <li>{@link #transactional(String)} (strategy K): each offset range's outputs and its progress
 *       offset in one Kafka transaction, through a producer whose {@code transactional.id} is
 *       stable per (pipeline, source partition). Exactly once for readers with {@code
 *       isolation.level=read_committed}.
 *   <li>{@link #idempotent(String)}: for clusters that do not allow transactions. Outputs are sent
 *       by idempotent producers and the offsets stored after the batch, so a failure replays
 *       outputs: at-least-once on the wire, exactly once for readers that drop replays with {@link
 *       SourcePositionDeduplicator}.
 * </ul>
 *
 * <p>Both store their progress as the committed offsets of a consumer group dedicated to the sink
 * (default {@code eos-progress-<pipeline id>}), with the writer epoch in each offset's metadata. A
 * starting driver takes its epoch by compare-and-set through the group {@code <progress
 * group>.epoch} and the transactional id {@code eos-<pipeline id>-:epoch} (so even the sink without
 * transactions takes epochs atomically where the cluster allows that id). Both mark every output
 * with its {@link SourcePosition} in a header. Output partitions are chosen deterministically (the
 * key's murmur2 hash, like Kafka's default partitioner; without a key, the source partition), so a
 * replay sends each output where it went before.
 *
 * <p>This class is the transactional sink. Immutable, serialisable configuration; producers are
 * kept per executor JVM and reused across batches.
 *
 * @param <R> the output type
 */
public final class KafkaSink<R> extends KafkaSinkBase<R> implements TransactionalSink<R> {
  private static final long serialVersionUID = 1L;

  private KafkaSink(KafkaSpec<R> spec) {
    super(spec);
  }

  /**
   * Starts building a transactional sink for pipeline {@code pipelineId}: outputs and progress of
   * each range in one Kafka transaction.
   *
   * @throws SinkConfigurationException if the id is not valid
   */
  public static <R> Builder<R, KafkaSink<R>> transactional(String pipelineId) {
    return new Builder<>(PipelineId.of(pipelineId), true, KafkaSink::new);
  }

  /**
   * Starts building a sink without transactions: at-least-once on the wire, exactly once for
   * readers using {@link SourcePositionDeduplicator}.
   *
   * @see KafkaIdempotentSink
   */
  public static <R> Builder<R, KafkaIdempotentSink<R>> idempotent(String pipelineId) {
    return new Builder<>(PipelineId.of(pipelineId), false, KafkaIdempotentSink::new);
  }

  @Override
  public PartitionCommit commit(long epoch, SourceRange range, PartitionOutputs<R> outputs) {
    return TransactionalKafkaCommit.commit(spec, epoch, range, outputs);
  }

  /**
   * Builds a Kafka sink. Required: {@link #bootstrapServers}, {@link #topic}, {@link #value}.
   *
   * @param <R> the output type
   * @param <S> the sink built
   */
  public static final class Builder<R, S> {
    // Set by the sink itself: each has a reason the user cannot choose it.
    private static final Map<String, String> RESERVED =
        Map.ofEntries(
            Map.entry(
                "transactional.id", "it is derived from the pipeline id and the source partition"),
            Map.entry("enable.idempotence", "the sink needs idempotent producers"),
            Map.entry("acks", "the sink needs acks=all"),
            Map.entry("transaction.timeout.ms", "use transactionTimeout(...)"),
            Map.entry("key.serializer", "use key(...)"),
            Map.entry("value.serializer", "use value(...)"),
            Map.entry(
                "partitioner.class", "outputs are partitioned deterministically by key or source"),
            Map.entry("bootstrap.servers", "use bootstrapServers(...)"),
            Map.entry(
                "client.id", "it is derived from the pipeline id, so that brokers' logs name it"),
            Map.entry("max.block.ms", "use apiTimeout(...)"),
            Map.entry("default.api.timeout.ms", "use apiTimeout(...)"));

    private final PipelineId pipelineId;
    private final boolean transactional;
    private final Function<KafkaSpec<R>, S> factory;
    private final Map<String, String> clientConfig = new TreeMap<>();
    private final Map<String, String> producerConfig = new TreeMap<>();
    private String bootstrapServers;
    private String topic;
    private ToBytes<? super R> key;
    private ToBytes<? super R> value;
    private String progressGroup;
    private Duration transactionTimeout = Duration.ofMinutes(1);
    private Duration apiTimeout = Duration.ofSeconds(30);
    private String deadLetterTopic;
    private long recoveryScanDepth = 100_000;
    private Duration expectedDowntime = Duration.ofDays(3);
    private Duration progressKeepAlive = Duration.ofHours(1);
    private int maxIdleProducers = 64;
    private Duration idleProducerTimeout = Duration.ofMinutes(10);

    Builder(PipelineId pipelineId, boolean transactional, Function<KafkaSpec<R>, S> factory) {
      this.pipelineId = pipelineId;
      this.transactional = transactional;
      this.factory = factory;
    }

    /** The brokers to write to, {@code host:port[,host:port...]}. */
    public Builder<R, S> bootstrapServers(String servers) {
      this.bootstrapServers = servers;
      return this;
    }

    /**
     * A setting for every client of the sink, producers and admin alike: security settings ({@code
     * security.protocol}, {@code ssl.*}, {@code sasl.*}) go here.
     */
    public Builder<R, S> clientProperty(String key, String value) {
      checkNotReserved(key);
      clientConfig.put(key, value);
      return this;
    }

    /**
     * A producer setting, for example {@code linger.ms}, {@code batch.size}, {@code
     * compression.type}.
     */
    public Builder<R, S> producerProperty(String key, String value) {
      checkNotReserved(key);
      producerConfig.put(key, value);
      return this;
    }

    /** The output topic; it must exist. */
    public Builder<R, S> topic(String topic) {
      this.topic = topic;
      return this;
    }

    /**
     * The output key; without one, outputs go to the partition numbered like their source partition
     * (modulo the output topic's partition count). Must be deterministic.
     */
    public Builder<R, S> key(ToBytes<? super R> key) {
      this.key = key;
      return this;
    }

    /** The output value. Required. */
    public Builder<R, S> value(ToBytes<? super R> value) {
      this.value = value;
      return this;
    }

    /**
     * The consumer group that holds the sink's progress; default {@code eos-progress-<pipeline
     * id>}. It must be dedicated to the sink: never the group the stream reads with, never one with
     * members.
     */
    public Builder<R, S> progressGroup(String group) {
      this.progressGroup = group;
      return this;
    }

    /**
     * The producers' {@code transaction.timeout.ms} (default 1 minute): the longest one range's
     * write may take before the broker aborts it. At most the brokers' {@code
     * transaction.max.timeout.ms} (checked at start); at least the time a task takes to write its
     * range, or every attempt is aborted.
     */
    public Builder<R, S> transactionTimeout(Duration timeout) {
      this.transactionTimeout = timeout;
      return this;
    }

    /** How long a call to Kafka (metadata, offsets, a blocked send) may take; default 30 s. */
    public Builder<R, S> apiTimeout(Duration timeout) {
      this.apiTimeout = timeout;
      return this;
    }

    /**
     * Routes records the mapper fails on to {@code topic} (which must exist), in the same
     * transaction as the outputs, with the error in header {@code eos.error}; without it, the first
     * bad record stops the job.
     */
    public Builder<R, S> deadLetterTopic(String topic) {
      this.deadLetterTopic = topic;
      return this;
    }

    /**
     * How many records at the end of each output partition are read when the progress group has
     * lost its offsets (default 100,000): the progress is recovered from the source positions of
     * this pipeline's outputs found there.
     */
    public Builder<R, S> recoveryScanDepth(long records) {
      this.recoveryScanDepth = records;
      return this;
    }

    /**
     * The longest the pipeline may stay stopped (default 3 days). A warning at start says when the
     * brokers' {@code offsets.retention.minutes} is shorter: the progress group's offsets would
     * expire and have to be recovered from the output.
     */
    public Builder<R, S> expectedDowntime(Duration downtime) {
      this.expectedDowntime = downtime;
      return this;
    }

    /**
     * How often the driver re-commits the progress offsets of every partition the stream reads,
     * unchanged, between batches (default 1 hour). Kafka expires a partition's committed offset
     * {@code offsets.retention.minutes} after that partition's last commit, even while other
     * partitions of the group commit; a partition that receives nothing is never committed by a
     * batch, so without this its progress would vanish. Must be well inside the brokers' {@code
     * offsets.retention.minutes} (checked at start: at most half of it).
     */
    public Builder<R, S> progressKeepAlive(Duration interval) {
      this.progressKeepAlive = interval;
      return this;
    }

    /**
     * How many idle transactional producers of this pipeline one executor keeps between batches
     * (default 64), and for how long (default 10 minutes). The transactional sink writes each
     * source partition with its own producer (its own transactional id), each with a sender thread
     * and buffers; a producer kept for the next batch saves its {@code initTransactions}. Beyond
     * {@code max} the least recently used is closed, and one idle longer than {@code evictAfter} is
     * closed instead of reused: brokers forget an id idle past {@code
     * transactional.id.expiration.ms}, after which its producer fails. {@code max} 0 keeps none.
     */
    public Builder<R, S> idleProducers(int max, Duration evictAfter) {
      this.maxIdleProducers = max;
      this.idleProducerTimeout = evictAfter;
      return this;
    }

    /**
     * Applies the settings of this pipeline found in Spark configuration {@code conf} (keys {@code
     * spark.exactlyonce.<pipeline id>.<key>}, see {@link KafkaProperties} and {@code
     * docs/settings.md}), which is only read. Same as {@link #settingsFrom(Map)}.
     *
     * @throws SinkConfigurationException naming the key and the fix
     */
    public Builder<R, S> settingsFrom(SparkConf conf) {
      return apply(SinkProperties.read(pipelineId, conf, KafkaProperties.ALL));
    }

    /**
     * Applies the settings of this pipeline found in {@code conf} under {@code
     * spark.exactlyonce.<pipeline id>.} (see {@link KafkaProperties} and {@code docs/settings.md}):
     * each key calls its builder method and is checked as {@link #build()} checks it. A key that is
     * absent leaves the builder as it was; builder calls made after this one win over the
     * configuration, calls made before it are overridden by keys present ({@code client.<name>} and
     * {@code producer.<name>} add to the settings given in code).
     *
     * @throws SinkConfigurationException for an unknown key (naming the nearest one), a key that
     *     looks like a secret (SASL and TLS passwords are passed in code, read from the environment
     *     or a file) or a value that is not valid, naming the key and the fix
     */
    public Builder<R, S> settingsFrom(Map<String, String> conf) {
      return apply(SinkProperties.read(pipelineId, conf, KafkaProperties.ALL));
    }

    /**
     * Applies the options of Spark's own Kafka sink, as a query writing with {@code
     * writeStream().format("kafka").option(...)} passes them, so that moving such a query to this
     * sink keeps its options: {@code kafka.bootstrap.servers}, {@code topic}, and {@code
     * kafka.<setting>} for any Kafka client setting ({@code kafka.security.protocol}, {@code
     * kafka.sasl.jaas.config}, {@code kafka.linger.ms}, ...); option names are case-insensitive, as
     * in Spark. Settings an admin client takes too (security, connection settings) go to all of the
     * sink's clients, as {@link #clientProperty}; the others to its producers, as {@link
     * #producerProperty}. {@code kafka.acks=all} (or {@code -1}) and {@code
     * kafka.enable.idempotence=true} are what the sink does anyway and are accepted; settings the
     * sink sets itself are refused ({@code kafka.client.id}, {@code kafka.max.block.ms} and {@code
     * kafka.default.api.timeout.ms}: use {@link #apiTimeout}).
     *
     * @param options Spark Kafka sink options
     * @throws SinkConfigurationException for an option that is not one of Spark's Kafka sink (a
     *     source option such as {@code subscribe}, a typo), or a setting the sink sets itself (the
     *     serializers, {@code transactional.id}, ...), naming the option and the fix
     */
    public Builder<R, S> sparkKafkaOptions(Map<String, String> options) {
      for (Map.Entry<String, String> e : new TreeMap<>(options).entrySet()) {
        String option = e.getKey();
        // Option names are case-insensitive in Spark, and Kafka's settings are lower case.
        String lower = option.toLowerCase(java.util.Locale.ROOT);
        String value = e.getValue();
        if (lower.equals("topic")) {
          checkTopic(value);
          topic(value);
        } else if (lower.equals("kafka.bootstrap.servers")) {
          bootstrapServers(value);
        } else if (lower.equals("checkpointlocation")) {
          throw new SinkConfigurationException(
              "pipeline '"
                  + pipelineId
                  + "': '"
                  + option
                  + "' is an option of the query, not of its sink: set it on the query"
                  + " (ExactlyOnceForeachBatch...checkpointLocation(path)), or leave it out (the"
                  + " sink's stored offsets are where a query starts)");
        } else if (lower.startsWith("kafka.") && lower.length() > "kafka.".length()) {
          String key = lower.substring("kafka.".length());
          if ((key.equals("acks")
                  && (value.trim().equalsIgnoreCase("all") || value.trim().equals("-1")))
              || (key.equals("enable.idempotence") && value.trim().equalsIgnoreCase("true"))) {
            continue;
          }
          if (AdminClientConfig.configNames().contains(key)) {
            clientProperty(key, value);
          } else {
            producerProperty(key, value);
          }
        } else {
          throw new SinkConfigurationException(
              "pipeline '"
                  + pipelineId
                  + "': '"
                  + option
                  + "' is not an option of Spark's Kafka sink: it takes 'kafka.bootstrap.servers',"
                  + " 'topic' and 'kafka.<Kafka client setting>' (a source option such as"
                  + " 'subscribe' belongs on the query's source); remove it");
        }
      }
      return this;
    }

    private Builder<R, S> apply(SinkProperties p) {
      p.ifPresent(KafkaProperties.BOOTSTRAP_SERVERS, this::bootstrapServers);
      p.ifPresent(
          KafkaProperties.TOPIC,
          t -> {
            checkTopic(t);
            topic(t);
          });
      p.forEachEntry(KafkaProperties.CLIENT, this::clientProperty);
      p.forEachEntry(KafkaProperties.PRODUCER, this::producerProperty);
      p.ifPresent(
          KafkaProperties.PROGRESS_GROUP,
          g -> {
            checkProgressGroup(g);
            progressGroup(g);
          });
      p.ifPresent(
          KafkaProperties.TRANSACTION_TIMEOUT,
          t -> {
            checkTransactionTimeout(t);
            transactionTimeout(t);
          });
      p.ifPresent(
          KafkaProperties.API_TIMEOUT,
          t -> {
            checkApiTimeout(t);
            apiTimeout(t);
          });
      p.ifPresent(
          KafkaProperties.DEAD_LETTER_TOPIC,
          t -> {
            checkTopic(t);
            deadLetterTopic(t);
          });
      p.ifPresent(
          KafkaProperties.RECOVERY_SCAN_DEPTH,
          n -> {
            checkRecoveryScanDepth(n);
            recoveryScanDepth(n);
          });
      p.ifPresent(KafkaProperties.EXPECTED_DOWNTIME, this::expectedDowntime);
      p.ifPresent(
          KafkaProperties.PROGRESS_KEEP_ALIVE,
          d -> {
            checkProgressKeepAlive(d);
            progressKeepAlive(d);
          });
      p.ifPresent(
          KafkaProperties.MAX_IDLE_PRODUCERS,
          n -> {
            checkIdleProducers(n, idleProducerTimeout);
            idleProducers(n, idleProducerTimeout);
          });
      p.ifPresent(
          KafkaProperties.IDLE_PRODUCER_TIMEOUT,
          d -> {
            checkIdleProducers(maxIdleProducers, d);
            idleProducers(maxIdleProducers, d);
          });
      return this;
    }

    /**
     * Validates the configuration (without connecting; the stream checks the brokers when it
     * starts) and builds the sink.
     *
     * @throws SinkConfigurationException naming the setting that is missing or wrong
     */
    public S build() {
      require(bootstrapServers, "bootstrapServers", "bootstrapServers(\"host:9092\")");
      require(topic, "topic", "topic(\"results\")");
      if (value == null) {
        throw new SinkConfigurationException(
            "pipeline '" + pipelineId + "': no value given: set value(output -> bytes)");
      }
      checkTopic(topic);
      String group =
          progressGroup == null
              ? ProgressGroups.defaultProgressGroup(pipelineId.value())
              : progressGroup;
      checkProgressGroup(group);
      checkTransactionTimeout(transactionTimeout);
      checkRecoveryScanDepth(recoveryScanDepth);
      checkProgressKeepAlive(progressKeepAlive);
      checkIdleProducers(maxIdleProducers, idleProducerTimeout);
      checkApiTimeout(apiTimeout);
      return factory.apply(
          new KafkaSpec<>(
              pipelineId,
              transactional,
              bootstrapServers,
              Map.copyOf(clientConfig),
              Map.copyOf(producerConfig),
              topic,
              key,
              value,
              group,
              transactionTimeout.toMillis(),
              apiTimeout.toMillis(),
              deadLetterTopic,
              recoveryScanDepth,
              expectedDowntime.toMillis(),
              progressKeepAlive.toMillis(),
              maxIdleProducers,
              idleProducerTimeout.toMillis()));
    }

    private void checkTopic(String topic) {
      if (!topic.matches("[A-Za-z0-9._-]{1,249}")) {
        throw new SinkConfigurationException(
            "pipeline '" + pipelineId + "': '" + topic + "' is not a valid Kafka topic name");
      }
    }

    private void checkProgressGroup(String group) {
      if (group.isBlank()) {
        throw new SinkConfigurationException(
            "pipeline '" + pipelineId + "': progressGroup must not be blank");
      }
    }

    private void checkTransactionTimeout(Duration transactionTimeout) {
      if (transactionTimeout.isNegative() || transactionTimeout.toMillis() < 1000) {
        throw new SinkConfigurationException(
            "pipeline '"
                + pipelineId
                + "': transactionTimeout "
                + transactionTimeout
                + " is too short: a range's write must fit in it; use at least a few seconds");
      }
    }

    private void checkRecoveryScanDepth(long recoveryScanDepth) {
      if (recoveryScanDepth < 1) {
        throw new SinkConfigurationException(
            "pipeline '" + pipelineId + "': recoveryScanDepth must be at least 1");
      }
    }

    private void checkProgressKeepAlive(Duration progressKeepAlive) {
      if (progressKeepAlive == null
          || progressKeepAlive.isNegative()
          || progressKeepAlive.toMillis() < 1000) {
        throw new SinkConfigurationException(
            "pipeline '"
                + pipelineId
                + "': progressKeepAlive "
                + progressKeepAlive
                + " must be at least 1 second (and at most half the brokers'"
                + " offsets.retention.minutes)");
      }
    }

    private void checkIdleProducers(int maxIdleProducers, Duration idleProducerTimeout) {
      if (maxIdleProducers < 0 || idleProducerTimeout == null || idleProducerTimeout.isNegative()) {
        throw new SinkConfigurationException(
            "pipeline '"
                + pipelineId
                + "': idleProducers("
                + maxIdleProducers
                + ", "
                + idleProducerTimeout
                + ") needs a count of at least 0 and a non-negative duration, for example"
                + " idleProducers(64, Duration.ofMinutes(10))");
      }
    }

    private void checkApiTimeout(Duration apiTimeout) {
      if (apiTimeout.isNegative() || apiTimeout.toMillis() < 100) {
        throw new SinkConfigurationException(
            "pipeline '" + pipelineId + "': apiTimeout " + apiTimeout + " is too short");
      }
    }

    private void require(String value, String name, String example) {
      if (value == null || value.isBlank()) {
        throw new SinkConfigurationException(
            "pipeline '" + pipelineId + "': no " + name + " given: set " + example);
      }
    }

    private void checkNotReserved(String key) {
      String why = RESERVED.get(key);
      if (why != null) {
        throw new SinkConfigurationException(
            "pipeline '"
                + pipelineId
                + "': the Kafka setting '"
                + key
                + "' is set by the sink ("
                + why
                + "); remove it");
      }
    }
  }
}
