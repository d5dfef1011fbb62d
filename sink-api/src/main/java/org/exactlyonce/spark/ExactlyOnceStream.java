package org.exactlyonce.spark;

import java.util.Map;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.streaming.api.java.JavaInputDStream;
import org.exactlyonce.spark.internal.PipelineGuard;

/**
 * A Kafka direct stream that started from the offsets its sinks stored, together with the writer
 * epoch each sink took. Created by {@link ExactlyOnce#directStream}; write it with {@link
 * ExactlyOnce#foreachRDD}. Driver-side only.
 *
 * @param <K> the record key type
 * @param <V> the record value type
 */
public final class ExactlyOnceStream<K, V> {
  private final JavaInputDStream<ConsumerRecord<K, V>> dstream;
  private final Map<PipelineId, Long> epochs;
  private final Map<TopicPartition, Long> startOffsets;
  private final PipelineGuard guard;

  ExactlyOnceStream(
      JavaInputDStream<ConsumerRecord<K, V>> dstream,
      Map<PipelineId, Long> epochs,
      Map<TopicPartition, Long> startOffsets,
      PipelineGuard guard) {
    this.dstream = dstream;
    this.epochs = Map.copyOf(epochs);
    this.startOffsets = Map.copyOf(startOffsets);
    this.guard = guard;
  }

  /**
   * The underlying direct stream, for other (non exactly-once) uses such as monitoring. Do not
   * commit its offsets to Kafka: the sinks own them.
   */
  public JavaInputDStream<ConsumerRecord<K, V>> dstream() {
    return dstream;
  }

  /** The offsets the stream started from (per partition, the lowest over its sinks). */
  public Map<TopicPartition, Long> startOffsets() {
    return startOffsets;
  }

  /** The writer epoch {@code pipeline} took when the stream was created. */
  public long writerEpoch(PipelineId pipeline) {
    Long epoch = epochs.get(pipeline);
    if (epoch == null) {
      throw new SinkConfigurationException(
          "the sink of pipeline '"
              + pipeline
              + "' was not given to ExactlyOnce.directStream, so the stream did not start from its"
              + " stored offsets and it holds no writer epoch: pass every sink the stream writes"
              + " to ExactlyOnce.directStream(...). Registered: "
              + epochs.keySet());
    }
    return epoch;
  }

  /**
   * Registers the one output operation of {@code pipeline} and returns its writer epoch.
   *
   * @throws SinkConfigurationException if the pipeline already has an output operation on this
   *     stream (the second would find every range committed by the first and write nothing), or
   *     streaming settings changed since the stream was created in a way the sinks cannot allow
   */
  long registerOutput(PipelineId pipeline) {
    long epoch = writerEpoch(pipeline);
    ExactlyOnce.checkStreamingSettings(guard.context());
    if (!guard.registerOutput(pipeline)) {
      throw new SinkConfigurationException(
          "pipeline '"
              + pipeline
              + "' already has an output operation on this stream: a second one would find every"
              + " range committed by the first and write nothing. One pipeline id names one"
              + " output: give the second output a sink with its own pipeline id (and pass it to"
              + " ExactlyOnce.directStream too).");
    }
    return epoch;
  }

  /**
   * Calls {@code listener} on the driver after every batch, once per sink, with what it wrote. A
   * failing listener is logged and does not fail the batch.
   */
  public ExactlyOnceStream<K, V> onBatch(Consumer<BatchResult> listener) {
    guard.addListener(listener);
    return this;
  }

  /** The first failure of this stream's output, or null while it runs. */
  public Throwable failure() {
    return guard.failure();
  }

  PipelineGuard guard() {
    return guard;
  }
}
