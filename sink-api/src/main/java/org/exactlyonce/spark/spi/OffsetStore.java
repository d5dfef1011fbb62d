package org.exactlyonce.spark.spi;

import java.util.Map;
import org.apache.kafka.common.TopicPartition;

/**
 * The driver's view of where a sink stores its offsets and its writer epoch. Not thread-safe; used
 * by the driver thread that creates the stream, then closed.
 */
public interface OffsetStore extends AutoCloseable {

  /**
   * Checks where the offsets and writer epochs are kept (tables, columns, types; settings of the
   * backend the store relies on), creating the offset tables if they are missing. Offsets only: the
   * outputs (output, staging and dead-letter tables or topics) are checked by {@link
   * ExactlyOnceSink#checkOutputs()}, which the start runs before opening any store.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException naming what is wrong and the fix
   */
  void validate();

  /**
   * Takes a new writer epoch for the pipeline: every commit of an older epoch is refused from now
   * on ({@link org.exactlyonce.spark.CommitOutcome#FENCED}).
   *
   * @return the new epoch, greater than every earlier one of this pipeline
   */
  long takeWriterEpoch();

  /** The stored offset (next offset to process) of every partition this pipeline has stored. */
  Map<TopicPartition, Long> storedOffsets();

  /**
   * The stored offsets when the stream starts over {@code streamPartitions}, with writer {@code
   * epoch} just taken. A store whose offsets can vanish while the pipeline is stopped (a Kafka
   * consumer group's offsets expire) recovers them here, or refuses to start, rather than let the
   * start position apply to partitions that were already written. Default: {@link
   * #storedOffsets()}.
   *
   * @throws org.exactlyonce.spark.OffsetMismatchException if offsets were lost and cannot be
   *     recovered
   */
  default Map<TopicPartition, Long> storedOffsetsAtStart(
      java.util.Collection<TopicPartition> streamPartitions, long epoch) {
    return storedOffsets();
  }

  /**
   * Checks, before any writer epoch is taken, what would make the start refuse to run over {@code
   * streamPartitions} (for example offsets set outside the library, or partitions this sink cannot
   * write), so that a deployment that cannot start does not fence the running one first. The same
   * conditions may be checked again after the epoch. Default: nothing to check.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException or {@link
   *     org.exactlyonce.spark.OffsetMismatchException} naming the problem and the fix
   */
  default void checkBeforeEpoch(java.util.Collection<TopicPartition> streamPartitions) {}

  /**
   * Per partition, the highest offset this pipeline ever committed or stored as a start: a mark the
   * data path raises and nothing but {@link #rewind} lowers. A stored offset below it was moved
   * back outside the library, and the start refuses it. Default: no marks (the store cannot tell).
   */
  default Map<TopicPartition, Long> highWaterMarks() {
    return Map.of();
  }

  /**
   * The options of the offsets tool's {@code reset} ({@code bin/exactly-once-offsets}) that name
   * this store, for example {@code --jdbc-url jdbc:postgresql://db/ads --user app --password-env
   * PGPASSWORD} (and {@code --force} where the tool cannot tell whether a driver holds the
   * pipeline), so that errors can name the command that resolves them; never a secret. Default:
   * null, the tool cannot reach this store.
   */
  default String offsetsToolResetOptions() {
    return null;
  }

  /** Whether {@link #rewind} is supported; asked before a writer epoch is taken for it. */
  default boolean canRewind() {
    return false;
  }

  /**
   * Moves the stored offsets of {@code offsets} there on purpose, high-water marks included, for
   * writer {@code epoch} (re-processing a range after fixing a bug, for example). Partitions
   * without a stored offset get one.
   *
   * @throws org.exactlyonce.spark.WriterFencedException if {@code epoch} is no longer current
   * @throws UnsupportedOperationException if the store cannot rewind
   */
  default void rewind(Map<TopicPartition, Long> offsets, long epoch) {
    throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot rewind offsets");
  }

  /**
   * Stores start offsets for partitions that have none yet; a partition that already has a stored
   * offset keeps it.
   *
   * @throws org.exactlyonce.spark.WriterFencedException if {@code epoch} is no longer current
   */
  void storeStartOffsets(Map<TopicPartition, Long> offsets, long epoch);

  /**
   * Advances the stored offsets of {@code ranges} in one atomic step, each a compare-and-set on its
   * range's start (used by strategies that write before they commit offsets). A store implements it
   * with {@link CommitProtocol#advanceRanges} over its {@link CommitUnit}, which decides: a range
   * whose offset is already at or past its end is {@code ALREADY_COMMITTED}; a range whose stored
   * offset is before its start is a {@code GAP} and is not advanced.
   *
   * @return one commit per range, {@code FENCED} for all if {@code epoch} is no longer current
   */
  java.util.List<org.exactlyonce.spark.PartitionCommit> commitRanges(
      long epoch, java.util.List<org.exactlyonce.spark.SourceRange> ranges);

  /**
   * Keeps the stored offsets of {@code partitions} from expiring, for writer {@code epoch}: called
   * on the driver between batches, every {@link ExactlyOnceSink#progressKeepAlive()}, with every
   * partition the stream reads, idle ones included. A store whose offsets expire when they are not
   * written for a while (a Kafka consumer group's, after {@code offsets.retention.minutes}) writes
   * them again unchanged. Default: nothing (offsets in a database do not expire).
   *
   * @throws org.exactlyonce.spark.WriterFencedException if {@code epoch} is no longer current
   */
  default void keepAlive(java.util.Collection<TopicPartition> partitions, long epoch) {}

  @Override
  void close();
}
