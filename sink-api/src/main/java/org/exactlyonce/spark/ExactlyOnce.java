package org.exactlyonce.spark;

import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.streaming.api.java.JavaInputDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.kafka010.ConsumerStrategies;
import org.apache.spark.streaming.kafka010.LocationStrategies;
import org.exactlyonce.spark.internal.IdempotentBatch;
import org.exactlyonce.spark.internal.KafkaParams;
import org.exactlyonce.spark.internal.LagMirror;
import org.exactlyonce.spark.internal.PerBatch;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.internal.SparkVersionCheck;
import org.exactlyonce.spark.internal.StartOffsets;
import org.exactlyonce.spark.internal.StartSequence;
import org.exactlyonce.spark.internal.StreamMetrics;
import org.exactlyonce.spark.internal.TransactionAwareStream;
import org.exactlyonce.spark.internal.TransactionalBatch;
import org.exactlyonce.spark.spi.BatchSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.TransactionalSink;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Entry point: create the Kafka direct stream from the offsets a sink stored, then write it exactly
 * once.
 *
 * <pre>{@code
 * var clicks = JdbcSink.<Click>transactional("clicks-to-postgres")
 *     .connection(JdbcSettings.url(url).user("app").passwordFromEnv("PGPASSWORD"))
 *     .table("clicks").columns("click_id", "campaign_id", "ts")
 *     .values(c -> List.of(c.id(), c.campaign(), c.ts()))
 *     .build();
 * ExactlyOnceStream<String, String> stream =
 *     ExactlyOnce.<String, String>stream(ssc, kafkaParams, List.of("clicks"))
 *         .foreachRDD(record -> List.of(Click.parse(record.value())), clicks)
 *         .create();
 * ssc.start();
 * }</pre>
 *
 * <p>{@link #stream} declares each output once. The lower-level pair {@link #directStream} and
 * {@link #foreachRDD}/{@link #foreachBatch} does the same in two steps, each sink named in both.
 */
public final class ExactlyOnce {
  private static final Logger LOG = LoggerFactory.getLogger(ExactlyOnce.class);

  private ExactlyOnce() {}

  /**
   * Declares the exactly-once outputs of a Kafka direct stream over {@code topics}, each sink once;
   * {@link ExactlyOnceOutputs#create()} then creates the stream from every sink's stored offsets.
   * The preferred entry point: a sink cannot be given to the stream and forgotten in its outputs,
   * or the other way round.
   *
   * <pre>{@code
   * ExactlyOnceStream<String, String> stream =
   *     ExactlyOnce.<String, String>stream(ssc, kafkaParams, List.of("clicks"))
   *         .foreachRDD(record -> List.of(Click.parse(record.value())), clicks)
   *         .create();
   * }</pre>
   */
  public static <K, V> ExactlyOnceOutputs<K, V> stream(
      JavaStreamingContext ssc, Map<String, Object> kafkaParams, Collection<String> topics) {
    return new ExactlyOnceOutputs<>(ssc, kafkaParams, topics);
  }

  /**
   * Creates a direct stream over {@code topics} that starts where {@code sink} stored its offsets;
   * partitions it never stored start at their earliest offset.
   *
   * @see #directStream(JavaStreamingContext, Map, Collection, StartPosition, ExactlyOnceSink...)
   */
  public static <K, V> ExactlyOnceStream<K, V> directStream(
      JavaStreamingContext ssc,
      Map<String, Object> kafkaParams,
      Collection<String> topics,
      ExactlyOnceSink sink) {
    return directStream(ssc, kafkaParams, topics, StartPosition.earliest(), sink);
  }

  /**
   * Creates a direct stream over {@code topics} for one or more sinks, before the streaming context
   * starts. For each sink it validates the configuration against the backend, takes a new writer
   * epoch (fencing any older driver of the same pipeline id), loads the stored offsets, resolves
   * {@code start} for partitions with none and stores those <em>before</em> the first batch. The
   * stream starts, per partition, at the lowest offset over the sinks; each sink skips what it
   * already committed.
   *
   * <p>The consumer settings must not enable auto-commit; {@code auto.offset.reset} is set to
   * {@code earliest} (it only applies to partitions added while the job runs) and {@code group.id}
   * defaults to {@code exactly-once-<pipeline id>}. The stream's consumers are assigned their
   * partitions and commit nothing, so they never join that group and it does not appear in {@code
   * kafka-consumer-groups}; for lag there, see {@link ExactlyOnceOutputs#mirrorOffsetsTo}.
   *
   * <p>While the streaming context runs, each sink's pipeline has a source in Spark's metrics
   * system, named and described in {@link ExactlyOnceMetrics}.
   *
   * @throws SinkConfigurationException if the settings, a topic or a sink's backend is wrong
   * @throws OffsetMismatchException if a stored offset is no longer in Kafka or lies past its end
   */
  public static <K, V> ExactlyOnceStream<K, V> directStream(
      JavaStreamingContext ssc,
      Map<String, Object> kafkaParams,
      Collection<String> topics,
      StartPosition start,
      ExactlyOnceSink... sinks) {
    return directStream(ssc, kafkaParams, topics, start, null, sinks);
  }

  /**
   * {@link #directStream(JavaStreamingContext, Map, Collection, StartPosition, ExactlyOnceSink...)}
   * that also copies committed offsets to consumer group {@code mirrorGroup} (null: no copy).
   */
  static <K, V> ExactlyOnceStream<K, V> directStream(
      JavaStreamingContext ssc,
      Map<String, Object> kafkaParams,
      Collection<String> topics,
      StartPosition start,
      String mirrorGroup,
      ExactlyOnceSink... sinks) {
    if (topics == null || topics.isEmpty()) {
      throw new SinkConfigurationException("no topic given: name at least one topic to read");
    }
    if (sinks.length == 0) {
      throw new SinkConfigurationException("no sink given: pass the sinks this stream writes to");
    }
    Set<PipelineId> ids = new TreeSet<>();
    for (ExactlyOnceSink s : sinks) {
      if (!ids.add(s.pipelineId())) {
        throw new SinkConfigurationException(
            "two sinks share pipeline id '"
                + s.pipelineId()
                + "': each output needs its own id, or their offsets would overwrite each other");
      }
    }
    SparkVersionCheck.checkRunning(ssc.sparkContext().version(), ssc.sparkContext().getConf());
    checkStreamingSettings(ssc);
    for (ExactlyOnceSink s : sinks) {
      s.checkStreamingSettings(ssc.sparkContext().getConf());
    }
    Map<String, Object> params =
        KafkaParams.forDirectStream(kafkaParams, "exactly-once-" + ids.iterator().next());
    for (ExactlyOnceSink s : sinks) {
      s.checkConsumerSettings(params);
    }
    if (mirrorGroup != null) {
      checkMirrorGroup(mirrorGroup, params, sinks);
    }

    StartSequence.Started started;
    try (StartOffsets kafka = new StartOffsets(params, topics);
        StartSequence.Validated validated = StartSequence.validate(List.of(sinks))) {
      started = validated.takeEpochs(kafka).resolve(kafka, start);
    }
    StreamMetrics metrics =
        new StreamMetrics(
            ids, ssc.sparkContext().getConf().getBoolean(ExactlyOnceMetrics.ENABLED_SETTING, true));
    PipelineGuard guard = new PipelineGuard(ssc, metrics);
    started.stored().forEach((id, stored) -> guard.markStored(id, stored.keySet()));
    TransactionAwareStream.checkMarkersSetting(ssc);
    TransactionAwareStream<K, V> input =
        new TransactionAwareStream<>(
            ssc.ssc(),
            LocationStrategies.PreferConsistent(),
            // Assigned, not subscribed: a subscribed consumer joins group.id, which then shows up
            // in kafka-consumer-groups as a group with a member and no offsets. The stream assigns
            // partitions added to a topic later itself.
            ConsumerStrategies.<K, V>Assign(started.from().keySet(), params, started.from()),
            params,
            topics);
    input.measure(metrics);
    JavaInputDStream<ConsumerRecord<K, V>> dstream =
        new JavaInputDStream<>(input, TransactionAwareStream.classTag());
    if (mirrorGroup != null) {
      LagMirror mirror = LagMirror.toGroup(mirrorGroup, params);
      guard.mirrorTo(mirror);
      input.closeOnStop(mirror);
      LOG.info(
          "pipelines {}: committed offsets are mirrored to consumer group '{}' for lag tools"
              + " (never read back: the sinks' offsets are the truth)",
          ids,
          mirrorGroup);
    }
    return new ExactlyOnceStream<>(dstream, started.epochs(), started.from(), guard);
  }

  /**
   * Refuses a lag mirror group that a consumer or a sink of this stream uses itself: copying
   * offsets into it would fight the stream's own consumer or overwrite a sink's offsets.
   */
  private static void checkMirrorGroup(
      String group, Map<String, Object> params, ExactlyOnceSink... sinks) {
    if (group.isBlank()) {
      throw new SinkConfigurationException(
          "mirrorOffsetsTo(\"" + group + "\"): the consumer group name must not be blank");
    }
    Object own = params.get(ConsumerConfig.GROUP_ID_CONFIG);
    if (group.equals(own)) {
      throw new SinkConfigurationException(
          "mirrorOffsetsTo(\""
              + group
              + "\") names the stream's own group.id: a Kafka consumer reads its group's"
              + " committed offsets (for a partition it has no position for), so the mirror would"
              + " be read back, while the sinks' offsets must stay the only truth. Give"
              + " mirrorOffsetsTo(...) a group of its own, for example \""
              + group
              + "-lag\" (nothing else may use it).");
    }
    for (ExactlyOnceSink s : sinks) {
      Map<String, Object> probe = new HashMap<>(params);
      probe.put(ConsumerConfig.GROUP_ID_CONFIG, group);
      try {
        // The sink accepted the stream's settings just before: only the group can be refused.
        s.checkConsumerSettings(probe);
      } catch (SinkConfigurationException e) {
        throw new SinkConfigurationException(
            "mirrorOffsetsTo(\""
                + group
                + "\") names a consumer group that pipeline '"
                + s.pipelineId()
                + "' uses itself (a Kafka sink's progress group holds the sink's own offsets):"
                + " the mirror would overwrite them. Give mirrorOffsetsTo(...) a group of its own,"
                + " for example \""
                + group
                + "-lag\". The sink's check said: "
                + e.getMessage(),
            e);
      }
    }
  }

  /**
   * Moves {@code sink}'s stored offsets back (or forward) to {@code offsets} on purpose, for
   * example to process a range again after fixing a bug in the job. It takes a new writer epoch
   * first, so a job still running on the pipeline is fenced and stops; start the job again after
   * the rewind. The high-water marks move with the offsets, so the start accepts them (an offset
   * moved back any other way is refused at start).
   *
   * @return the offsets stored before the rewind
   * @throws SinkConfigurationException if the sink's backend is unreachable or misconfigured
   */
  public static Map<TopicPartition, Long> rewind(
      ExactlyOnceSink sink, Map<TopicPartition, Long> offsets) {
    offsets.forEach(
        (tp, o) -> {
          if (o == null || o < 0) {
            throw new SinkConfigurationException(
                "rewind offset for " + tp + " must be >= 0, got " + o);
          }
        });
    try (OffsetStore store = sink.openOffsetStore()) {
      if (!store.canRewind()) {
        // Checked before the epoch: taking one would stop a running job for nothing.
        throw new SinkConfigurationException(
            "the offsets of pipeline '"
                + sink.pipelineId()
                + "' cannot be rewound through the library ("
                + sink.getClass().getSimpleName()
                + "): nothing was changed");
      }
      // The outputs too: the rewound range is written to them again, by this deployment's
      // restart, and a rewind fences the running driver.
      sink.checkOutputs();
      store.validate();
      long epoch = store.takeWriterEpoch();
      Map<TopicPartition, Long> before = store.storedOffsets();
      store.rewind(offsets, epoch);
      LOG.warn(
          "pipeline '{}': offsets rewound on purpose from {} to {} (writer epoch {})",
          sink.pipelineId(),
          before,
          offsets,
          epoch);
      return before;
    }
  }

  /**
   * Refuses the streaming settings under which the sinks' offsets could not be the truth.
   *
   * <p>Spark checkpointing: a context restored from a checkpoint resumes from the checkpoint's
   * offsets, not the sinks', and rebuilds the output functions without their driver-side guard and
   * without a new writer epoch; the sinks' offsets already do what a checkpoint would (a restart,
   * even of new code, resumes exactly where every sink committed).
   *
   * <p>{@code spark.streaming.concurrentJobs} above 1: batch N+1's output could commit before batch
   * N's, so a partition's offset could move past a batch that has not written yet.
   */
  static void checkStreamingSettings(JavaStreamingContext ssc) {
    if (ssc.ssc().isCheckpointingEnabled() || ssc.ssc().isCheckpointPresent()) {
      throw new SinkConfigurationException(
          "Spark checkpointing is enabled (ssc.checkpoint(...) or StreamingContext.getOrCreate)"
              + ": a context restored from a checkpoint would resume from the checkpoint's offsets"
              + " instead of the sinks', with no writer epoch and no guard. The sinks store the"
              + " offsets themselves, so a restart resumes exactly where they committed without a"
              + " checkpoint: remove ssc.checkpoint(...) and create the context with new"
              + " JavaStreamingContext(...). Stateful operations that need checkpointing belong"
              + " in another context.");
    }
    int jobs = ssc.sparkContext().getConf().getInt(CONCURRENT_JOBS, 1);
    if (jobs != 1) {
      throw new SinkConfigurationException(
          CONCURRENT_JOBS
              + "="
              + jobs
              + ": with more than one concurrent batch, batch N+1 could commit a partition's"
              + " offset before batch N has written it, and batch N's records would then be"
              + " skipped as already committed. Remove the setting (the default is 1).");
    }
  }

  private static final String CONCURRENT_JOBS = "spark.streaming.concurrentJobs";

  /**
   * Writes every record of {@code stream} through {@code mapper} to {@code sink}, exactly once:
   * partition i of each batch is committed together with its offset range i. A replayed range (task
   * retry, speculative copy, restart) is recognised and writes nothing. The first batch that fails
   * after Spark's task retries stops the streaming context; nothing after it is written.
   *
   * @param mapper maps one record to its outputs; must be deterministic
   */
  public static <K, V, R> void foreachRDD(
      ExactlyOnceStream<K, V> stream, RecordMapper<K, V, R> mapper, TransactionalSink<R> sink) {
    long epoch = stream.registerOutput(sink.pipelineId());
    stream.dstream().foreachRDD(new TransactionalBatch<>(sink, mapper, epoch, stream.guard()));
  }

  /**
   * Writes every record of {@code stream} through {@code mapper} to an idempotent {@code sink}:
   * executors upsert each output under a deterministic key, then the driver advances the offsets of
   * all ranges at once. A replay rewrites the same keys. The first failed batch stops the streaming
   * context.
   *
   * @param mapper maps one record to its outputs; must be deterministic
   */
  public static <K, V, R> void foreachRDD(
      ExactlyOnceStream<K, V> stream, RecordMapper<K, V, R> mapper, IdempotentSink<R> sink) {
    long epoch = stream.registerOutput(sink.pipelineId());
    stream.dstream().foreachRDD(new IdempotentBatch<>(sink, mapper, epoch, stream.guard()));
  }

  /**
   * Computes results from each whole batch with {@code compute} (shuffles, joins and aggregations
   * allowed) and writes them to {@code sink} together with the offsets of every range of the batch,
   * in one atomic step: the batch is one exactly-once unit. Use it for aggregates, whose output
   * partitions no longer map to offset ranges.
   *
   * @param compute turns the batch's records into results; must be deterministic for a given set of
   *     records
   */
  public static <K, V, R> void foreachBatch(
      ExactlyOnceStream<K, V> stream,
      Function<JavaRDD<ConsumerRecord<K, V>>, JavaRDD<R>> compute,
      BatchSink<R> sink) {
    long epoch = stream.registerOutput(sink.pipelineId());
    stream.dstream().foreachRDD(new PerBatch<>(sink, compute, epoch, stream.guard()));
  }
}
