package org.exactlyonce.spark.kafka.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SourceRange;
import org.junit.jupiter.api.Test;

/** The errors of a failed Kafka transaction say what happened to it and what to do. */
class TransactionFailuresTest {
  private static final SourceRange RANGE = SourceRange.of("clicks", 3, 100, 900_100);
  private static final String ID = "eos-p1-clicks-3";
  private static final long TIMEOUT = 60_000;

  @Test
  void aCommitThatTimedOutHasAnUnknownOutcomeNotAnAbortedOne() {
    TimeoutException timeout =
        new TimeoutException("Timeout expired after 30000ms while awaiting EndTxn(true)");

    ExactlyOnceException e = TransactionFailures.describe(RANGE, ID, timeout, 2_000, TIMEOUT, true);

    assertThat(e.getMessage())
        .contains("outcome is unknown")
        .contains("reads the stored offset")
        .contains("already committed")
        .doesNotContain("was aborted");
    assertThat(e).hasCause(timeout);
  }

  @Test
  void aTimeoutBeforeTheCommitIsAnAbortedWrite() {
    ExactlyOnceException e =
        TransactionFailures.describe(
            RANGE, ID, new TimeoutException("partitionsFor"), 2_000, TIMEOUT, false);

    assertThat(e.getMessage()).contains("its transaction was aborted");
  }

  @Test
  void aTransactionOlderThanItsTimeoutWasAbortedByTheCoordinatorNotFenced() {
    for (RuntimeException refused :
        new RuntimeException[] {
          new ProducerFencedException("There is a newer producer with the same transactionalId"),
          new InvalidProducerEpochException("Producer attempted to produce with an old epoch"),
          // what a send's callback failure becomes once checked after flush
          new ExactlyOnceException(
              "sending the outputs failed",
              new InvalidProducerEpochException("Producer attempted to produce with an old epoch")),
          new KafkaException("The transaction was aborted due to timeout")
        }) {
      ExactlyOnceException e =
          TransactionFailures.describe(RANGE, ID, refused, 75_000, TIMEOUT, true);

      assertThat(e.getMessage())
          .as(refused.toString())
          .contains("took longer than transactionTimeout (60000 ms)")
          .contains("lower spark.streaming.kafka.maxRatePerPartition")
          .contains("raise transactionTimeout(...)")
          .doesNotContain("fenced by another producer");
      assertThat(e).hasCause(refused);
    }
  }

  @Test
  void aFenceWithinTheTimeoutIsAnotherProducerOfTheId() {
    ExactlyOnceException e =
        TransactionFailures.describe(
            RANGE, ID, new ProducerFencedException("newer producer"), 1_500, TIMEOUT, false);

    assertThat(e.getMessage())
        .contains("fenced by another producer of transactional id '" + ID + "'")
        .doesNotContain("transactionTimeout");
  }

  @Test
  void otherErrorsOfTheSinkPassUnchanged() {
    ExactlyOnceException own = new ExactlyOnceException("sending the outputs failed: too large");

    assertThat(TransactionFailures.describe(RANGE, ID, own, 75_000, TIMEOUT, false)).isSameAs(own);
  }

  @Test
  void anUnboundedBatchIsWarnedAboutWithTheSettingToSet() {
    String warning = TransactionFailures.unboundedBatchWarning("p1", TIMEOUT, 0, false, 0);

    assertThat(warning)
        .contains("pipeline 'p1'")
        .contains("spark.streaming.kafka.maxRatePerPartition is not set")
        .contains("first batch after a long downtime")
        .contains("transactionTimeout (60000 ms)");
    assertThat(TransactionFailures.unboundedBatchWarning("p1", TIMEOUT, 5_000, false, 0)).isNull();
    assertThat(TransactionFailures.unboundedBatchWarning("p1", TIMEOUT, 0, true, 1_000)).isNull();
    assertThat(TransactionFailures.unboundedBatchWarning("p1", TIMEOUT, 0, true, 0)).isNotNull();
  }
}
