package org.exactlyonce.spark.jdbc.internal;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.CommitDecision;
import org.exactlyonce.spark.spi.CommitUnit;
import org.jdbi.v3.core.Handle;

/**
 * The protocol's primitive in PostgreSQL: one open transaction. The writer row is locked shared (a
 * newer epoch waits for the commit) and the offset rows exclusively, in the protocol's order, so a
 * retry, a zombie or a speculative copy of the same range waits and then finds it advanced.
 */
final class JdbcCommitUnit implements CommitUnit {
  private final Handle handle;
  private final PostgresDialect dialect;
  private final PipelineId pipeline;

  JdbcCommitUnit(Handle handle, PostgresDialect dialect, PipelineId pipeline) {
    this.handle = handle;
    this.dialect = dialect;
    this.pipeline = pipeline;
  }

  @Override
  public boolean epochIsCurrent(long epoch) {
    return OffsetRows.epochIsCurrent(handle, dialect, pipeline, epoch);
  }

  @Override
  public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
    Map<TopicPartition, Long> out = new HashMap<>();
    for (SourceRange r : ranges) {
      long stored = OffsetRows.lock(handle, dialect, pipeline, r);
      if (stored != CommitDecision.NONE) {
        out.put(r.topicPartition(), stored);
      }
    }
    return out;
  }

  @Override
  public boolean advance(List<Advance> advances, long epoch) {
    for (Advance a : advances) {
      OffsetRows.advance(handle, dialect, pipeline, epoch, a.range(), a.expected());
    }
    return true; // the rows are locked: OffsetRows.advance throws if one changed anyway
  }
}
