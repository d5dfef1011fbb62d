package org.exactlyonce.spark.kafka.internal;

import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitDecision;
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
    long started = System.nanoTime();
    TopicPartition tp = range.topicPartition();
    String id = spec.transactionalId(tp);
    for (int attempt = 0; ; attempt++) {
      Producer<byte[], byte[]> producer = Clients.borrowIdle(spec, id);
      boolean fresh = producer == null;
      if (fresh) {
        producer = Clients.fresh(spec, id);
      }
      boolean clean = false;
      long begun = 0; // when beginTransaction returned: a transaction's age tells a timeout apart
      boolean committing = false;
      try {
        Map<TopicPartition, OffsetAndMetadata> read =
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
        OffsetAndMetadata om = read.get(tp);
        // No offset is a GAP: only the driver stores where a partition starts.
        long stored = om == null ? CommitDecision.NONE : om.offset();
        if (Progress.epochOf(om) > epoch) {
          clean = true;
          return PartitionCommit.since(started, range, CommitOutcome.FENCED, stored, 0, 0);
        }
        Progress.refuseSetOutsideTheLibrary(spec, read);
        CommitOutcome outcome = CommitDecision.decide(stored, range);
        if (outcome != CommitOutcome.COMMITTED && outcome != CommitOutcome.TRIMMED) {
          clean = true;
          return PartitionCommit.since(started, range, outcome, stored, 0, 0);
        }
        producer.beginTransaction();
        begun = System.nanoTime();
        try {
          producer.sendOffsetsToTransaction(
              Map.of(tp, new OffsetAndMetadata(range.until(), Progress.metadata(epoch))),
              new ConsumerGroupMetadata(spec.progressGroup()));
        } catch (ProducerFencedException | InvalidProducerEpochException e) {
          if (attempt == 0) {
            // An idle producer of this JVM whose id another executor took since: start over with a
            // new producer, which fences that one in turn. Nothing was sent.
            continue;
          }
          throw e;
        }
        Outputs.Failures failures = new Outputs.Failures();
        long rows = Outputs.sendAll(spec, producer, outputs.positionedFrom(stored), failures);
        Outputs.sendDeadLetters(spec, producer, outputs.deadLetters(), failures);
        producer.flush();
        failures.check("sending the outputs of " + range);
        FaultPoints.reach(Outputs.BEFORE_COMMIT);
        FaultPoints.reach(FaultPoints.TASK_BEFORE_COMMIT);
        committing = true;
        producer.commitTransaction();
        clean = true;
        return PartitionCommit.since(started, range, outcome, stored, outputs.recordsRead(), rows);
      } catch (RuntimeException e) {
        throw TransactionFailures.describe(
            range,
            id,
            e,
            begun == 0 ? -1 : (System.nanoTime() - begun) / 1_000_000,
            spec.transactionTimeoutMs(),
            committing);
      } finally {
        if (clean) {
          Clients.giveBack(spec, id, producer);
        } else {
          // Abort now, so that the retry's read of the offset does not wait for the transaction
          // timeout; if that fails too (fenced, broker gone), the next producer of this id aborts
          // it in initTransactions. After a commit that timed out, the producer refuses to abort
          // (the commit may have reached the coordinator): the next initTransactions lets the
          // coordinator finish it, and the retry's stable read of the offset tells which way.
          Clients.abortAndDiscard(producer);
        }
      }
    }
  }
}
