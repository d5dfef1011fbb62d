package org.exactlyonce.spark.structured;

import java.util.List;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.internal.BatchPlan;

/**
 * Refuses a batch that starts after the sink's stored offset, on the driver, before anything of it
 * is computed or written. In a query the adapter started, Spark's next batch always starts where
 * the previous one ended, so such a batch comes from a checkpoint ahead of the sink, or from
 * offsets moved back by hand while the query ran; the sink's own commit would refuse it too (a
 * {@code GAP}), but only after computing it, and with a fix ("restart") that does not help while
 * the checkpoint stays.
 */
final class CheckpointGaps {
  private CheckpointGaps() {}

  static void check(PipelineId pipeline, BatchPlan plan, String checkpointLocation) {
    List<PartitionCommit> gaps = plan.gaps();
    if (gaps.isEmpty()) {
      return;
    }
    StringBuilder msg = new StringBuilder("pipeline '").append(pipeline).append("' stops: ");
    for (PartitionCommit g : gaps) {
      msg.append(g.range().topicPartition())
          .append(" GAP: the batch reads ")
          .append(g.range())
          .append(" but the sink's stored offset is ")
          .append(g.storedBefore())
          .append("; ");
    }
    msg.append("the records in between were never written, so nothing of this batch was written.");
    if (checkpointLocation != null) {
      msg.append(" The query's checkpoint ")
          .append(checkpointLocation)
          .append(
              " is ahead of the sink (a checkpoint of another pipeline or deployment, or the"
                  + " sink's offsets restored from an older backup). Move the checkpoint away and"
                  + " start the query again: without it the query starts at the sink's stored"
                  + " offsets.");
    } else {
      msg.append(
          " The stored offsets were moved back outside the library while the query ran:"
              + " start the query again (it starts at the stored offsets), or rewind them with"
              + " ExactlyOnce.rewind to process those records again on purpose.");
    }
    throw new OffsetMismatchException(msg.toString(), gaps);
  }
}
