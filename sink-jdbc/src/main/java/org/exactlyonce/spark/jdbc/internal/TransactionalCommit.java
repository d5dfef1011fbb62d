package org.exactlyonce.spark.jdbc.internal;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.CommitDecision;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcWriter;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.transaction.TransactionIsolationLevel;

/**
 * Strategy T: one range, one transaction. Lock the writer epoch (shared) and the offset row
 * (exclusive), decide, write, advance the offset with a compare-and-set, commit. The row lock
 * serialises a retry against a zombie or a speculative copy of the same range: whichever commits
 * second sees the offset advanced and writes nothing.
 */
public final class TransactionalCommit {
  private TransactionalCommit() {}

  public static <R> PartitionCommit commit(
      PipelineId pipeline,
      JdbcSettings settings,
      PostgresDialect dialect,
      JdbcWriter<R> writer,
      int batchSize,
      long epoch,
      SourceRange range,
      PartitionOutputs<R> outputs) {
    long started = System.nanoTime();
    try {
      return Databases.jdbi(settings)
          .inTransaction(
              TransactionIsolationLevel.READ_COMMITTED,
              h -> {
                Optional<Long> current =
                    h.createQuery(dialect.lockEpoch())
                        .bind("pipeline", pipeline.value())
                        .mapTo(Long.class)
                        .findOne();
                if (current.isEmpty() || current.get() != epoch) {
                  return result(range, CommitOutcome.FENCED, -1, 0, 0, started);
                }
                long stored = lockOffset(h, dialect, pipeline, range);
                CommitOutcome outcome = CommitDecision.decide(stored, range);
                if (outcome != CommitOutcome.COMMITTED && outcome != CommitOutcome.TRIMMED) {
                  return result(range, outcome, stored, 0, 0, started);
                }
                long rows = write(h, writer, batchSize, outputs.from(stored));
                int updated =
                    h.createUpdate(dialect.advanceOffset())
                        .bind("until", range.until())
                        .bind("epoch", epoch)
                        .bind("pipeline", pipeline.value())
                        .bind("topic", range.topic())
                        .bind("partition", range.partition())
                        .bind("expected", stored)
                        .execute();
                if (updated != 1) {
                  // Cannot happen while the row lock is held; if it does, roll everything back.
                  throw new ExactlyOnceException(
                      "the offset row of "
                          + range.topicPartition()
                          + " changed under its lock (expected "
                          + stored
                          + "); rolling back");
                }
                return result(range, outcome, stored, outputs.recordsRead(), rows, started);
              });
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      // The transaction was rolled back; Spark retries the task.
      throw new ExactlyOnceException("writing " + range + " failed and was rolled back: " + e, e);
    }
  }

  /**
   * Locks and reads the stored offset of the range's partition. A partition with no row is one
   * added to the topic while the job runs: the stream starts it at its earliest offset, which is
   * this range's start.
   */
  private static long lockOffset(
      Handle h, PostgresDialect dialect, PipelineId pipeline, SourceRange range) {
    Optional<Long> stored = selectForUpdate(h, dialect, pipeline, range);
    if (stored.isPresent()) {
      return stored.get();
    }
    h.createUpdate(dialect.insertOffsetIfAbsent())
        .bind("pipeline", pipeline.value())
        .bind("topic", range.topic())
        .bind("partition", range.partition())
        .bind("offset", range.from())
        .bind("epoch", -1L)
        .execute();
    return selectForUpdate(h, dialect, pipeline, range).orElseThrow();
  }

  private static Optional<Long> selectForUpdate(
      Handle h, PostgresDialect dialect, PipelineId pipeline, SourceRange range) {
    return h.createQuery(dialect.lockOffset())
        .bind("pipeline", pipeline.value())
        .bind("topic", range.topic())
        .bind("partition", range.partition())
        .mapTo(Long.class)
        .findOne();
  }

  private static <R> long write(Handle h, JdbcWriter<R> writer, int batchSize, Iterator<R> rows)
      throws Exception {
    long written = 0;
    List<R> chunk = new ArrayList<>(Math.min(batchSize, 1024));
    while (rows.hasNext()) {
      chunk.add(rows.next());
      if (chunk.size() == batchSize) {
        writer.write(h, chunk);
        written += chunk.size();
        chunk = new ArrayList<>(Math.min(batchSize, 1024));
      }
    }
    if (!chunk.isEmpty()) {
      writer.write(h, chunk);
      written += chunk.size();
    }
    return written;
  }

  private static PartitionCommit result(
      SourceRange range,
      CommitOutcome outcome,
      long stored,
      long in,
      long rows,
      long startedNanos) {
    return new PartitionCommit(
        range, outcome, stored, in, rows, (System.nanoTime() - startedNanos) / 1_000_000);
  }
}
