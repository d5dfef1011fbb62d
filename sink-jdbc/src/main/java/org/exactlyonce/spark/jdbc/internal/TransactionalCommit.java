package org.exactlyonce.spark.jdbc.internal;

import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitProtocol;
import org.exactlyonce.spark.spi.PartitionOutputs;

/**
 * Strategy T: one range, one transaction, with {@link CommitProtocol#commitRange} over the
 * transaction ({@link JdbcCommitUnit}): lock the writer epoch (shared) and the offset row
 * (exclusive), decide, advance the offset with a compare-and-set, write, commit. The row lock
 * serialises a retry against a zombie or a speculative copy of the same range: whichever commits
 * second sees the offset advanced and writes nothing.
 */
public final class TransactionalCommit {
  private TransactionalCommit() {}

  public static <R> PartitionCommit commit(
      JdbcSpec<R> spec, long epoch, SourceRange range, PartitionOutputs<R> outputs) {
    PostgresDialect dialect = spec.dialect();
    try {
      return Databases.jdbi(spec.settings())
          // READ COMMITTED is set once per pooled connection (Databases): asking Jdbi for it here
          // cost a query of the current level and a reset on every commit.
          .inTransaction(
              h ->
                  CommitProtocol.commitRange(
                      new JdbcCommitUnit(h, dialect, spec.pipelineId()),
                      epoch,
                      range,
                      outputs,
                      (out, from) -> {
                        long rows = spec.writeAll(h, out.positionedFrom(from));
                        spec.writeDeadLetters(h, out.deadLetters());
                        return rows;
                      }));
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      // The transaction was rolled back; Spark retries the task.
      throw new ExactlyOnceException("writing " + range + " failed and was rolled back: " + e, e);
    }
  }
}
