package org.exactlyonce.spark.jdbc.internal;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.ExactlyOnceException;
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

  /**
   * One range (strategy T, the hot path) by its key; several in one statement, so that a batch of
   * many partitions costs a constant number of round trips.
   */
  @Override
  public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
    Map<TopicPartition, Long> out = new HashMap<>();
    if (ranges.size() == 1) {
      SourceRange r = ranges.get(0);
      long stored = OffsetRows.lock(handle, dialect, pipeline, r);
      if (stored != CommitDecision.NONE) {
        out.put(r.topicPartition(), stored);
      }
      return out;
    }
    handle
        .createQuery(dialect.lockOffsets())
        .bind("pipeline", pipeline.value())
        .bindArray("topics", String.class, ranges.stream().map(SourceRange::topic).toList())
        .bindArray(
            "partitions", Integer.class, ranges.stream().map(SourceRange::partition).toList())
        .map(
            (rs, ctx) ->
                Map.entry(new TopicPartition(rs.getString(1), rs.getInt(2)), rs.getLong(3)))
        .forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  @Override
  public boolean advance(List<Advance> advances, long epoch) {
    if (advances.size() == 1) {
      Advance a = advances.get(0);
      OffsetRows.advance(handle, dialect, pipeline, epoch, a.range(), a.expected());
      return true; // the row is locked: OffsetRows.advance throws if it changed anyway
    }
    int updated =
        handle
            .createUpdate(dialect.advanceOffsets())
            .bind("pipeline", pipeline.value())
            .bind("epoch", epoch)
            .bindArray(
                "topics", String.class, advances.stream().map(a -> a.range().topic()).toList())
            .bindArray(
                "partitions",
                Integer.class,
                advances.stream().map(a -> a.range().partition()).toList())
            .bindArray("expected", Long.class, advances.stream().map(Advance::expected).toList())
            .bindArray("untils", Long.class, advances.stream().map(a -> a.range().until()).toList())
            .execute();
    if (updated != advances.size()) {
      // Cannot happen while the row locks are held. Throw rather than return false: false tells
      // the protocol that nothing changed, and some rows of this statement did; the transaction
      // rolls back.
      throw new ExactlyOnceException(
          "the offset rows of "
              + advances.stream().map(a -> a.range().topicPartition()).toList()
              + " changed under their locks ("
              + updated
              + " of "
              + advances.size()
              + " compare-and-sets applied); rolling back");
    }
    return true;
  }
}
