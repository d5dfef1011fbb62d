package org.exactlyonce.spark.jdbc.internal;

import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitDecision;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.PartitionOutputs;

/**
 * Strategy T: one range, one transaction. Lock the writer epoch (shared) and the offset row
 * (exclusive), decide, write, advance the offset with a compare-and-set, commit. The row lock
 * serialises a retry against a zombie or a speculative copy of the same range: whichever commits
 * second sees the offset advanced and writes nothing.
 */
public final class TransactionalCommit {
  private TransactionalCommit() {}

  public static <R> PartitionCommit commit(
      JdbcSpec<R> spec, long epoch, SourceRange range, PartitionOutputs<R> outputs) {
    long started = System.nanoTime();
    PostgresDialect dialect = spec.dialect();
    try {
      return Databases.jdbi(spec.settings())
          // READ COMMITTED is set once per pooled connection (Databases): asking Jdbi for it here
          // cost a query of the current level and a reset on every commit.
          .inTransaction(
              h -> {
                if (!OffsetRows.epochIsCurrent(h, dialect, spec.pipelineId(), epoch)) {
                  return PartitionCommit.since(started, range, CommitOutcome.FENCED, -1, 0, 0);
                }
                long stored = OffsetRows.lock(h, dialect, spec.pipelineId(), range);
                CommitOutcome outcome = CommitDecision.decide(stored, range);
                if (outcome != CommitOutcome.COMMITTED && outcome != CommitOutcome.TRIMMED) {
                  return PartitionCommit.since(started, range, outcome, stored, 0, 0);
                }
                long rows = spec.writeAll(h, outputs.positionedFrom(stored));
                spec.writeDeadLetters(h, outputs.deadLetters());
                OffsetRows.advance(h, dialect, spec.pipelineId(), epoch, range, stored);
                FaultPoints.reach(FaultPoints.TASK_BEFORE_COMMIT);
                return PartitionCommit.since(
                    started, range, outcome, stored, outputs.recordsRead(), rows);
              });
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      // The transaction was rolled back; Spark retries the task.
      throw new ExactlyOnceException("writing " + range + " failed and was rolled back: " + e, e);
    }
  }
}
