package org.exactlyonce.spark;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.spi.BatchSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.TransactionalSink;

/**
 * The outputs of one Kafka direct stream, each declared once: its sink and how the stream's records
 * become the sink's outputs. {@link #create()} then starts the stream where every declared sink's
 * stored offsets say, and registers every output. Created by {@link ExactlyOnce#stream}.
 * Driver-side, used by one thread while the job is set up.
 *
 * <pre>{@code
 * ExactlyOnceStream<String, String> stream =
 *     ExactlyOnce.<String, String>stream(ssc, kafkaParams, List.of("clicks"))
 *         .foreachRDD(record -> List.of(Click.parse(record.value())), clicks)
 *         .foreachBatch(rdd -> countsPerCampaign(rdd), totals)
 *         .create();
 * ssc.start();
 * }</pre>
 *
 * @param <K> the record key type
 * @param <V> the record value type
 */
public final class ExactlyOnceOutputs<K, V> {
  private final JavaStreamingContext ssc;
  private final Map<String, Object> kafkaParams;
  private final List<String> topics;
  private final Map<PipelineId, ExactlyOnceSink> sinks = new LinkedHashMap<>();
  private final List<Consumer<ExactlyOnceStream<K, V>>> outputs = new ArrayList<>();
  private StartPosition start = StartPosition.earliest();
  private String mirrorGroup;
  private boolean created;

  ExactlyOnceOutputs(
      JavaStreamingContext ssc, Map<String, Object> kafkaParams, Collection<String> topics) {
    this.ssc = ssc;
    this.kafkaParams = new HashMap<>(kafkaParams);
    this.topics = List.copyOf(topics);
  }

  /**
   * Where partitions start on the pipelines' first start (default {@link
   * StartPosition#earliest()}); partitions added to a topic later start at their earliest offset.
   */
  public ExactlyOnceOutputs<K, V> startingAt(StartPosition position) {
    this.start = position;
    return this;
  }

  /**
   * Also copies the offsets the sinks committed to the Kafka consumer group {@code consumerGroup},
   * so that the lag monitoring a team already runs on consumer groups ({@code kafka-consumer-groups
   * --describe}, Burrow, a Kafka lag exporter) shows this job's progress. Default: no copy.
   *
   * <p>After every batch whose ranges all committed (a failed batch copies nothing), the driver
   * commits, per partition of the batch, the offset the sinks now hold, the lowest over the
   * stream's outputs if there are several, with the Kafka Admin client ({@code
   * alterConsumerGroupOffsets}), connecting with the stream's {@code bootstrap.servers} and client
   * security settings. The group is a mirror only: it is <b>never read back</b>. The sinks' stored
   * offsets stay the truth and decide where a restart resumes; resetting the group changes nothing.
   *
   * <p>A copy that fails (broker unreachable, no ACL for the group) is logged at WARN once per
   * streak of failures and retried with the next batch; it never fails a batch or stops the
   * pipeline, but a batch waits up to 10 seconds for a broker that does not answer. The Admin
   * client is created on the driver with the first copy and closed when the streaming context
   * stops.
   *
   * @param consumerGroup a group used by nothing else: not the stream's {@code group.id} (checked)
   *     nor a Kafka sink's progress group (checked), nor another job's group
   * @throws SinkConfigurationException from {@link #create()} if the group is the stream's own
   *     {@code group.id} or a group a sink uses itself
   */
  public ExactlyOnceOutputs<K, V> mirrorOffsetsTo(String consumerGroup) {
    if (created) {
      throw new IllegalStateException("the stream was already created: set the mirror before");
    }
    this.mirrorGroup = java.util.Objects.requireNonNull(consumerGroup, "consumerGroup");
    return this;
  }

  /**
   * Writes every record through {@code mapper} to a transactional {@code sink}: partition i of each
   * batch is committed together with its offset range i.
   *
   * @see ExactlyOnce#foreachRDD(ExactlyOnceStream, RecordMapper, TransactionalSink)
   */
  public <R> ExactlyOnceOutputs<K, V> foreachRDD(
      RecordMapper<K, V, R> mapper, TransactionalSink<R> sink) {
    return add(sink, stream -> ExactlyOnce.foreachRDD(stream, mapper, sink));
  }

  /**
   * Writes every record through {@code mapper} to an idempotent {@code sink}.
   *
   * @see ExactlyOnce#foreachRDD(ExactlyOnceStream, RecordMapper, IdempotentSink)
   */
  public <R> ExactlyOnceOutputs<K, V> foreachRDD(
      RecordMapper<K, V, R> mapper, IdempotentSink<R> sink) {
    return add(sink, stream -> ExactlyOnce.foreachRDD(stream, mapper, sink));
  }

  /**
   * Computes results from each whole batch and writes them to {@code sink} with every range of the
   * batch, in one atomic step.
   *
   * @see ExactlyOnce#foreachBatch(ExactlyOnceStream, Function, BatchSink)
   */
  public <R> ExactlyOnceOutputs<K, V> foreachBatch(
      Function<JavaRDD<ConsumerRecord<K, V>>, JavaRDD<R>> compute, BatchSink<R> sink) {
    return add(sink, stream -> ExactlyOnce.foreachBatch(stream, compute, sink));
  }

  private ExactlyOnceOutputs<K, V> add(
      ExactlyOnceSink sink, Consumer<ExactlyOnceStream<K, V>> output) {
    if (created) {
      throw new IllegalStateException("the stream was already created: declare outputs before");
    }
    if (sinks.putIfAbsent(sink.pipelineId(), sink) != null) {
      throw new SinkConfigurationException(
          "pipeline '"
              + sink.pipelineId()
              + "' already has an output on this stream: a second one would find every range"
              + " committed by the first and write nothing. Give each output a sink with its own"
              + " pipeline id.");
    }
    outputs.add(output);
    return this;
  }

  /** The pipelines of the declared outputs, in declaration order. */
  public List<PipelineId> pipelines() {
    return List.copyOf(sinks.keySet());
  }

  /**
   * Validates every declared sink, takes their writer epochs, creates the direct stream from their
   * stored offsets and registers every output, before the streaming context starts.
   *
   * @throws SinkConfigurationException if no output was declared, or a setting, topic or backend is
   *     wrong
   * @throws OffsetMismatchException if a stored offset is no longer in Kafka or lies past its end
   * @see ExactlyOnce#directStream(JavaStreamingContext, Map, Collection, StartPosition,
   *     ExactlyOnceSink...)
   */
  public ExactlyOnceStream<K, V> create() {
    if (outputs.isEmpty()) {
      throw new SinkConfigurationException(
          "no output declared: add foreachRDD(...) or foreachBatch(...) before create()");
    }
    if (created) {
      throw new IllegalStateException("create() was already called");
    }
    created = true;
    ExactlyOnceStream<K, V> stream =
        ExactlyOnce.directStream(
            ssc,
            kafkaParams,
            topics,
            start,
            mirrorGroup,
            sinks.values().toArray(ExactlyOnceSink[]::new));
    outputs.forEach(o -> o.accept(stream));
    return stream;
  }
}
