package org.exactlyonce.spark.spi;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SourceRange;

/**
 * The primitive a backend supplies to {@link CommitProtocol}: the offsets side of one atomic unit
 * of work (a database transaction, a Kafka transaction, a conditional batch). The backend opens the
 * unit, hands it to the protocol, and commits it when the protocol returns, or aborts it when the
 * protocol throws. The protocol decides; the unit only reads, locks and writes, and never decides
 * an outcome of its own.
 *
 * <p>The protocol calls, in this order and at most once each per attempt: {@link #epochIsCurrent},
 * then (if current) {@link #lockStoredOffsets}, then (if something is to be written) {@link
 * #advance}, then the backend's writer of outputs.
 */
public interface CommitUnit {

  /**
   * Whether {@code epoch} is still the pipeline's newest writer epoch, in a way that holds until
   * the unit ends (a shared lock on the writer row, or a condition the unit's writes carry): a
   * newer driver must not take an epoch between this check and the unit's commit without the commit
   * failing. A backend whose epoch travels with the offsets (a Kafka progress group) may read the
   * offsets here and return them from {@link #lockStoredOffsets}.
   */
  boolean epochIsCurrent(long epoch);

  /**
   * Reads the stored offset (next offset to process) of every range's partition, and keeps them
   * from changing until the unit ends (row locks), or lets {@link #advance} notice that they did (a
   * compare-and-set that reports it). A partition without a stored offset is absent from the result
   * (the protocol decides it as a {@code GAP}: only the driver stores where a partition starts).
   *
   * @param ranges in the protocol's fixed lock order (topic, then partition)
   */
  Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges);

  /**
   * Moves each stored offset from {@link Advance#expected} to its range's end, for writer {@code
   * epoch}, as a compare-and-set, within the unit.
   *
   * @return {@code true} if every compare-and-set applied; {@code false} if a stored offset was no
   *     longer the one read (possible only for a unit that does not lock), in which case nothing
   *     was changed and the protocol reads and decides again
   */
  boolean advance(List<Advance> advances, long epoch);

  /**
   * One compare-and-set of {@link CommitUnit#advance}: the stored offset of {@code range}'s
   * partition moves from {@code expected} to {@code range.until()}.
   *
   * @param range the range being committed
   * @param expected the stored offset the protocol read and decided on
   */
  record Advance(SourceRange range, long expected) {}
}
