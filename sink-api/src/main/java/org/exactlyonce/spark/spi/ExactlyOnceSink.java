package org.exactlyonce.spark.spi;

import java.io.Serializable;
import java.util.List;
import org.exactlyonce.spark.PipelineId;

/**
 * A sink: serialisable configuration of where outputs and offsets go. It is shipped to executors
 * with every batch, so it holds settings, never connections; a backend opens connections on the
 * executor and reuses them across batches of that JVM.
 */
public interface ExactlyOnceSink extends Serializable {

  /** The pipeline whose offsets this sink stores. */
  PipelineId pipelineId();

  /**
   * The sink's effective configuration, logged once at INFO when a stream starts (as Kafka clients
   * log theirs): pipeline, backend, where outputs and offsets go, batch sizes and timeouts. Never a
   * secret: no password, no URL parameters, no client credential. Default: {@code toString()},
   * which every sink of the library keeps free of secrets.
   */
  default String describe() {
    return toString();
  }

  /**
   * Checks this sink's outputs on the driver (the pre-flight check), creating what the sink owns
   * where it is missing. It must check everything a write would otherwise fail on mid-stream: that
   * the output table or topic exists, has the columns the sink writes and the unique key its
   * upserts or replays rely on; that the staging table and the dead-letter table or topic exist
   * (created if the sink creates them) with the shape the sink writes. Offsets are not outputs:
   * their tables belong to {@link OffsetStore#validate()}.
   *
   * <p>A stream's start runs it for every sink first, before any offset store is opened and before
   * any writer epoch is taken, so a deployment whose outputs are wrong stops without fencing the
   * running one. It may run again, and from two drivers at once (create only if not exists). It
   * opens and closes its own connections. Default: nothing to check.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException naming the output, what is wrong and
   *     the fix
   */
  default void checkOutputs() {}

  /**
   * The columns this sink fills from its outputs' fields of the same names ({@link
   * org.exactlyonce.spark.RowValues#byName}), each with its type read from the backend, in the
   * sink's column order; empty (the default) for a sink whose values are positional. Run on the
   * driver before a Structured Streaming query starts, which checks its output schema against them.
   * Opens and closes its own connection.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException if the output table is missing
   */
  default List<OutputColumn> columnsByName() {
    return List.of();
  }

  /**
   * Opens the driver-side view of this sink's offset store. Called once when the stream is created,
   * after {@link #checkOutputs()}, before the first batch.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException if the backend cannot be reached
   */
  OffsetStore openOffsetStore();

  /**
   * Whether records the mapper fails on go to this sink's dead letters (written with the outputs,
   * exactly once) instead of failing the task and stopping the pipeline. Default: no.
   */
  default boolean routesBadRecordsToDeadLetters() {
    return false;
  }

  /**
   * Checks the Spark settings of the streaming context this sink is written from, once on the
   * driver when the stream is created, before anything is read or written (for example a setting
   * whose absence lets one batch outgrow what the backend allows). Logs a warning for a risk, or
   * throws for a setting the sink cannot work with. Default: nothing to check.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException naming the setting and the fix
   */
  default void checkStreamingSettings(org.apache.spark.SparkConf conf) {}

  /**
   * Checks the consumer settings of the stream this sink is fed from, before it is created (for
   * example that the stream does not read with a consumer group the sink itself uses). Default:
   * nothing to check.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException naming the setting and the fix
   */
  default void checkConsumerSettings(java.util.Map<String, Object> kafkaParams) {}

  /**
   * How often the driver calls {@link OffsetStore#keepAlive} between batches; zero (the default)
   * for a store whose offsets never expire.
   */
  default java.time.Duration progressKeepAlive() {
    return java.time.Duration.ZERO;
  }
}
