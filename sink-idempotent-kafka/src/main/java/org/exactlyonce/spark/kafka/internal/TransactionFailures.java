package org.exactlyonce.spark.kafka.internal;

import java.util.Locale;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTxnStateException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TransactionAbortedException;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SourceRange;

/**
 * What a failed Kafka transaction of one range means, told apart by where it failed and how long it
 * was open, so that the error says what happened and what to do:
 *
 * <ul>
 *   <li>a {@link TimeoutException} from {@code commitTransaction}: the commit may have gone
 *       through. The outcome is unknown, not "aborted"; the retry finds out from the stored offset.
 *   <li>a fence (or an epoch or abort error) after the transaction was open longer than {@code
 *       transaction.timeout.ms}: the coordinator aborted it for its age. Spark's retry of the same
 *       range takes as long again, so the rate limit or the timeout must change.
 *   <li>a fence before that: another producer of the transactional id (a retry, a speculative copy
 *       of the task, a newer driver) took over.
 * </ul>
 *
 * Stateless; thread-safe.
 */
public final class TransactionFailures {
  /** The Spark setting that bounds how many records a batch reads per source partition. */
  public static final String MAX_RATE = "spark.streaming.kafka.maxRatePerPartition";

  private TransactionFailures() {}

  /**
   * The error to fail the task with.
   *
   * @param failure what the producer (or the sends' callbacks) threw
   * @param openMillis how long the transaction was open when it failed, or -1 if it never began
   * @param timeoutMillis the producers' {@code transaction.timeout.ms}
   * @param committing whether {@code commitTransaction} threw {@code failure}
   */
  public static ExactlyOnceException describe(
      SourceRange range,
      String transactionalId,
      RuntimeException failure,
      long openMillis,
      long timeoutMillis,
      boolean committing) {
    if (committing && failure instanceof TimeoutException) {
      return new ExactlyOnceException(
          "committing the Kafka transaction of "
              + range
              + " timed out: the outcome is unknown, the coordinator may have committed it or"
              + " not. Nothing is lost or written twice either way: Spark retries the task, whose"
              + " new producer of transactional id '"
              + transactionalId
              + "' lets the coordinator finish this transaction first, and the retry then reads"
              + " the stored offset: if the commit went through, the range is already committed"
              + " and nothing is written again; if not, the range is written. If it keeps"
              + " happening, the brokers are slow or unreachable: check them, or raise"
              + " apiTimeout(...) of the sink. Cause: "
              + failure,
          failure);
    }
    Throwable fence = fenceOrAbort(failure);
    if (fence != null && openMillis >= 0 && openMillis >= timeoutMillis) {
      return new ExactlyOnceException(
          "the Kafka transaction of "
              + range
              + " was aborted by the transaction coordinator, not fenced by another writer: it was"
              + " open "
              + openMillis
              + " ms and took longer than transactionTimeout ("
              + timeoutMillis
              + " ms), so the coordinator aborted it and discarded its outputs (the producer was"
              + " then refused with "
              + fence.getClass().getSimpleName()
              + "). Spark's retry of the same range takes as long again, so the pipeline would"
              + " make no progress: lower "
              + MAX_RATE
              + " (a batch then reads at most that many records per second of batch interval from"
              + " each partition; without it, the first batch after a downtime reads everything"
              + " since) or raise transactionTimeout(...) of the sink (at most the brokers'"
              + " transaction.max.timeout.ms)",
          failure);
    }
    if (failure instanceof ExactlyOnceException e) {
      return e;
    }
    if (fence != null) {
      return new ExactlyOnceException(
          "the Kafka transaction of "
              + range
              + " was fenced by another producer of transactional id '"
              + transactionalId
              + "' (a retry or speculative copy of the same range, or a newer driver); its"
              + " outputs were aborted and Spark retries the task",
          failure);
    }
    return new ExactlyOnceException(
        "writing " + range + " to Kafka failed and its transaction was aborted: " + failure,
        failure);
  }

  /**
   * The warning to log at start when no rate limit bounds a batch of a transactional sink, or null
   * when one does ({@value #MAX_RATE}, or backpressure with an initial rate, which Spark's direct
   * stream applies to the first batch).
   *
   * @param maxRatePerPartition {@value #MAX_RATE}, 0 when not set
   */
  public static String unboundedBatchWarning(
      String pipelineId,
      long transactionTimeoutMillis,
      long maxRatePerPartition,
      boolean backpressure,
      long initialRate) {
    if (maxRatePerPartition > 0 || (backpressure && initialRate > 0)) {
      return null;
    }
    return "pipeline '"
        + pipelineId
        + "': "
        + MAX_RATE
        + " is not set, so a batch reads every record available. The first batch after a long"
        + " downtime (or a start from the earliest offset) then holds everything since, and each"
        + " of its ranges is one Kafka transaction that must commit within transactionTimeout ("
        + transactionTimeoutMillis
        + " ms): one that takes longer is aborted by the coordinator, Spark retries the same"
        + " range, and the pipeline makes no progress. Set "
        + MAX_RATE
        + " (records per second per partition; a batch reads at most that times the batch"
        + " interval) so that a range is written well within transactionTimeout.";
  }

  /**
   * The first error in {@code t}'s causes that a producer whose transaction the coordinator aborted
   * gets: a fence or an epoch error (the coordinator bumps the epoch when it aborts a transaction
   * for its age), an aborted batch, or a message saying the transaction was aborted or timed out.
   */
  static Throwable fenceOrAbort(Throwable t) {
    for (Throwable c = t; c != null && c.getCause() != c; c = c.getCause()) {
      if (c instanceof ProducerFencedException
          || c instanceof InvalidProducerEpochException
          || c instanceof TransactionAbortedException
          || c instanceof InvalidTxnStateException) {
        return c;
      }
      String m = c.getMessage() == null ? "" : c.getMessage().toLowerCase(Locale.ROOT);
      if (c instanceof org.apache.kafka.common.KafkaException
          && m.contains("abort")
          && (m.contains("timeout") || m.contains("timed out"))) {
        return c;
      }
    }
    return null;
  }
}
