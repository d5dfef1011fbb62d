package org.exactlyonce.spark.kafka.internal;

import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitProtocol;
import org.exactlyonce.spark.spi.CommitUnit;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.PartitionOutputs;

/**
 * Strategy K for one range: with the producer of the range's transactional id, read the progress
 * group's stable offset, decide like strategy T, then in one Kafka transaction add the new offset,
 * send the outputs and commit.
 *
 * <p>Why this is safe: every write of this partition's progress offset goes through the same
 * transactional id, so at most one producer can commit it, the one initialised last. The offset is
 * read while this producer holds the id; if a newer producer took the id before this one's
 * transaction started, {@code sendOffsetsToTransaction} (the first call that reaches the broker) is
 * refused and the commit starts over with a new producer and a fresh read, before a single output
 * was sent. If the id is taken later (a zombie and its retry racing), the commit fails, its outputs
 * are aborted, and Spark retries the task, whose new read sees what the winner committed.
 *
 * <p>Failures are described by {@link TransactionFailures}: a commit that timed out has an unknown
 * outcome (the retry's read decides), and a transaction the coordinator aborted for outliving
 * {@code transaction.timeout.ms} is told apart from a fence by its age.
 */
public final class TransactionalKafkaCommit {
  private TransactionalKafkaCommit() {}

  /**
   * How long a commit with an idle producer waits for an open transaction on its offset to end by
   * itself (the markers of this producer's own last commit can lag its return briefly) before it
   * takes the id over with a new producer.
   */
  static final long HELD_GRACE_MS = 2_000;

  public static <R> PartitionCommit commit(
      KafkaSpec<R> spec, long epoch, SourceRange range, PartitionOutputs<R> outputs) {
    TopicPartition tp = range.topicPartition();
    String id = spec.transactionalId(tp);
    for (int attempt = 0; ; attempt++) {
      Producer<byte[], byte[]> idle = Clients.borrowIdle(spec, id);
      Unit unit =
          new Unit(spec, id, tp, idle == null ? Clients.fresh(spec, id) : idle, idle == null);
      unit.retryIfStale = attempt == 0;
      boolean clean = false;
      boolean committing = false;
      try {
        PartitionCommit commit =
            CommitProtocol.commitRange(
                unit,
                epoch,
                range,
                outputs,
                (out, from) -> {
                  Outputs.Failures failures = new Outputs.Failures();
                  long rows =
                      Outputs.sendAll(spec, unit.producer, out.positionedFrom(from), failures);
                  Outputs.sendDeadLetters(spec, unit.producer, out.deadLetters(), failures);
                  unit.producer.flush();
                  failures.check("sending the outputs of " + range);
                  FaultPoints.reach(Outputs.BEFORE_COMMIT);
                  return rows;
                });
        if (unit.begun != 0) {
          committing = true;
          unit.producer.commitTransaction();
        }
        clean = true;
        return commit;
      } catch (StaleIdleProducer e) {
        // An idle producer of this JVM whose id another executor took since: start over with a
        // new producer, which fences that one in turn. Nothing was sent.
        continue;
      } catch (RuntimeException e) {
        throw TransactionFailures.describe(
            range,
            id,
            e,
            unit.begun == 0 ? -1 : (System.nanoTime() - unit.begun) / 1_000_000,
            spec.transactionTimeoutMs(),
            committing);
      } finally {
        if (clean) {
          Clients.giveBack(spec, id, unit.producer);
        } else {
          // Abort now, so that the retry's read of the offset does not wait for the transaction
          // timeout; if that fails too (fenced, broker gone), the next producer of this id aborts
          // it in initTransactions. After a commit that timed out, the producer refuses to abort
          // (the commit may have reached the coordinator): the next initTransactions lets the
          // coordinator finish it, and the retry's stable read of the offset tells which way.
          Clients.abortAndDiscard(unit.producer);
        }
      }
    }
  }

  /** Thrown by {@link Unit#advance} when an idle producer turns out to have lost its id. */
  private static final class StaleIdleProducer extends RuntimeException {
    private static final long serialVersionUID = 1L;

    StaleIdleProducer(Throwable cause) {
      super(cause);
    }
  }

  /**
   * The protocol's primitive for one partition: its progress offset, read while this producer holds
   * the range's transactional id, and advanced inside the producer's transaction.
   */
  private static final class Unit implements CommitUnit {
    private final KafkaSpec<?> spec;
    private final String id;
    private final TopicPartition tp;
    private final boolean fresh;
    Producer<byte[], byte[]> producer;
    boolean retryIfStale;

    /** When beginTransaction returned (zero before): a transaction's age tells a timeout apart. */
    long begun;

    private Map<TopicPartition, OffsetAndMetadata> read;

    Unit(
        KafkaSpec<?> spec,
        String id,
        TopicPartition tp,
        Producer<byte[], byte[]> producer,
        boolean fresh) {
      this.spec = spec;
      this.id = id;
      this.tp = tp;
      this.producer = producer;
      this.fresh = fresh;
    }

    /** Reads the offset (its metadata carries the epoch that wrote it) and compares the epoch. */
    @Override
    public boolean epochIsCurrent(long epoch) {
      read =
          fresh
              ? Progress.read(
                  Clients.admin(spec), spec.progressGroup(), List.of(tp), spec.apiTimeoutMs())
              : Progress.readIfStable(
                  Clients.admin(spec),
                  spec.progressGroup(),
                  List.of(tp),
                  HELD_GRACE_MS,
                  spec.apiTimeoutMs());
      if (read == null) {
        // An open transaction of this id holds the offset: a newer attempt that hangs or died
        // (it fenced this idle producer when it started). A new producer's initTransactions
        // aborts it now, instead of this retry waiting for the broker's transaction timeout.
        Clients.discard(producer);
        producer = Clients.fresh(spec, id);
        read =
            Progress.read(
                Clients.admin(spec), spec.progressGroup(), List.of(tp), spec.apiTimeoutMs());
      }
      return Progress.epochOf(read.get(tp)) <= epoch;
    }

    /**
     * The offset read by {@link #epochIsCurrent}: only the producer holding this id can change it,
     * and a newer holder makes this producer's transaction fail.
     */
    @Override
    public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
      Progress.refuseSetOutsideTheLibrary(spec, read);
      OffsetAndMetadata om = read.get(tp);
      return om == null ? Map.of() : Map.of(tp, om.offset());
    }

    /**
     * Begins the transaction with the new offset: {@code sendOffsetsToTransaction} is the first
     * call that reaches the broker, so a producer that lost its id learns it before any output is
     * sent.
     */
    @Override
    public boolean advance(List<Advance> advances, long epoch) {
      producer.beginTransaction();
      begun = System.nanoTime();
      Map<TopicPartition, OffsetAndMetadata> offsets = new java.util.HashMap<>();
      advances.forEach(
          a ->
              offsets.put(
                  a.range().topicPartition(),
                  new OffsetAndMetadata(a.range().until(), Progress.metadata(epoch))));
      try {
        producer.sendOffsetsToTransaction(offsets, new ConsumerGroupMetadata(spec.progressGroup()));
      } catch (ProducerFencedException | InvalidProducerEpochException e) {
        if (retryIfStale) {
          throw new StaleIdleProducer(e);
        }
        throw e;
      }
      return true;
    }
  }
}
