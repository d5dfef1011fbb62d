package org.exactlyonce.spark.internal;

import java.util.ArrayList;
import java.util.List;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.spi.CommitDecision;

/** Turns the commit outcomes of a batch into the driver's verdict, the same for every strategy. */
public final class Outcomes {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Outcomes.class);

  private Outcomes() {}

  /**
   * Records the committed ranges and throws if any range was fenced, left a gap or found its stored
   * offset moved backwards (a gap below an offset this driver saw committed).
   *
   * @throws WriterFencedException if a newer driver took over
   * @throws OffsetMismatchException naming every range that could not be committed
   */
  public static void check(
      PipelineGuard guard, PipelineId pipeline, long epoch, List<PartitionCommit> commits) {
    List<PartitionCommit> fenced = new ArrayList<>();
    List<PartitionCommit> mismatched = new ArrayList<>();
    for (PartitionCommit c : commits) {
      switch (c.outcome()) {
        case FENCED -> fenced.add(c);
        case GAP, REGRESSION -> {
          long seen = guard.lastCommitted(pipeline, c.range().topicPartition());
          mismatched.add(
              c.outcome() == CommitOutcome.GAP
                      && c.storedBefore() != CommitDecision.NONE
                      && seen > c.storedBefore()
                  ? new PartitionCommit(
                      c.range(),
                      CommitOutcome.REGRESSION,
                      c.storedBefore(),
                      c.recordsIn(),
                      c.rowsWritten(),
                      c.millis())
                  : c);
        }
        default -> {
          // The protocol decided these on the executors, the same way for every backend; the
          // driver's log is where an operator looks for them.
          if (c.outcome() == CommitOutcome.TRIMMED) {
            LOG.info(
                "pipeline '{}': {} was partly committed by an earlier attempt (stored offset {}):"
                    + " only the rest was written",
                pipeline,
                c.range(),
                c.storedBefore());
          } else if (c.outcome() == CommitOutcome.ALREADY_COMMITTED && !c.range().isEmpty()) {
            LOG.debug(
                "pipeline '{}': {} was already committed (stored offset {}): a replay, nothing"
                    + " written",
                pipeline,
                c.range(),
                c.storedBefore());
          }
          guard.recordCommitted(pipeline, c.range().topicPartition(), c.range().until());
        }
      }
    }
    if (!fenced.isEmpty()) {
      guard.fenced(pipeline, fenced.size());
      throw new WriterFencedException(
          "pipeline '"
              + pipeline
              + "': another instance started with the same pipeline id and took over (this"
              + " driver's writer epoch "
              + epoch
              + " is no longer current). This driver stops without writing "
              + fenced.size()
              + " range(s); the other instance goes on from the stored offsets.");
    }
    if (!mismatched.isEmpty()) {
      StringBuilder msg = new StringBuilder("pipeline '").append(pipeline).append("' stops: ");
      for (PartitionCommit c : mismatched) {
        msg.append(c.range().topicPartition());
        if (c.outcome() == CommitOutcome.GAP && c.storedBefore() == CommitDecision.NONE) {
          msg.append(" GAP: no stored offset for the range ")
              .append(c.range())
              .append(" (only the driver stores where a partition starts; an executor never")
              .append(" takes the range in front of it as the start)");
        } else if (c.outcome() == CommitOutcome.GAP) {
          msg.append(" GAP: stored offset ")
              .append(c.storedBefore())
              .append(" is before the range ")
              .append(c.range());
        } else {
          msg.append(" REGRESSION: stored offset ")
              .append(c.storedBefore())
              .append(" moved back below ")
              .append(guard.lastCommitted(pipeline, c.range().topicPartition()));
        }
        msg.append("; ");
      }
      msg.append(
          "committing would lose records, so nothing of these ranges was written. This happens"
              + " when an earlier batch failed and the stream moved on, or the stored offsets were"
              + " changed by hand: restart the job (it resumes from the stored offsets).");
      throw new OffsetMismatchException(msg.toString(), mismatched);
    }
  }
}
