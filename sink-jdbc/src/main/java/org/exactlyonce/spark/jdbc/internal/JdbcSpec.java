package org.exactlyonce.spark.jdbc.internal;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.exactlyonce.spark.DeadLetter;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcWriter;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.statement.PreparedBatch;

/**
 * The validated configuration every JDBC sink shares: where to connect, where offsets live, and how
 * outputs are written (a table mapping or the user's writer). Immutable and serialisable.
 */
public record JdbcSpec<R>(
    PipelineId pipelineId,
    JdbcSettings settings,
    PostgresDialect dialect,
    TableMapping<R> mapping,
    JdbcWriter<R> writer,
    int batchSize,
    boolean copy,
    SqlIdentifier deadLetters)
    implements Serializable {

  /** Writes {@code letters} (keyed by pipeline and source position: a replay adds nothing). */
  public void writeDeadLetters(Handle h, List<DeadLetter> letters) {
    if (letters.isEmpty()) {
      return;
    }
    PreparedBatch batch = h.prepareBatch(dialect.insertDeadLetter(deadLetters));
    for (DeadLetter d : letters) {
      batch
          .bind("pipeline", pipelineId.value())
          .bind("topic", d.topic())
          .bind("partition", d.partition())
          .bind("offset", d.offset())
          .bind("key", d.key())
          .bind("value", d.value())
          .bind("error", d.error())
          .add();
    }
    batch.execute();
  }

  /** The writer of outputs: the table mapping, or the user's writer given plain values. */
  public RowWriter<R> rowWriter() {
    if (mapping != null) {
      return mapping;
    }
    JdbcWriter<R> w = writer;
    return (h, rows) -> w.write(h, rows.stream().map(Positioned::value).toList());
  }

  /** Writes {@code rows} through {@code h} in chunks of the batch size; returns the count. */
  public long writeAll(Handle h, Iterator<Positioned<R>> rows) throws Exception {
    if (copy && mapping != null && mapping.isPlainInsert()) {
      return CopyWriter.copy(h, mapping, rows);
    }
    if (mapping != null && mapping.upsertsOnKey()) {
      return writeInKeyOrder(h, rows);
    }
    RowWriter<R> w = rowWriter();
    long written = 0;
    List<Positioned<R>> chunk = new ArrayList<>(Math.min(batchSize, 1024));
    while (rows.hasNext()) {
      chunk.add(rows.next());
      if (chunk.size() == batchSize) {
        w.write(h, chunk);
        written += chunk.size();
        chunk = new ArrayList<>(Math.min(batchSize, 1024));
      }
    }
    if (!chunk.isEmpty()) {
      w.write(h, chunk);
      written += chunk.size();
    }
    return written;
  }

  /**
   * Upserts on the user's key: the whole partition (or batch) merged per key, then written in key
   * order in chunks of the batch size, so every transaction locks the keys it shares with another
   * in the same order (see {@link TableMapping#mergeInKeyOrder}). A user's own {@link JdbcWriter}
   * decides its own order.
   */
  private long writeInKeyOrder(Handle h, Iterator<Positioned<R>> rows) {
    long[] outputs = {0};
    Iterator<Positioned<R>> counted =
        new Iterator<>() {
          @Override
          public boolean hasNext() {
            return rows.hasNext();
          }

          @Override
          public Positioned<R> next() {
            outputs[0]++;
            return rows.next();
          }
        };
    List<Object[]> merged = mapping.mergeInKeyOrder(counted);
    for (int from = 0; from < merged.size(); from += batchSize) {
      mapping.writeRows(h, merged.subList(from, Math.min(merged.size(), from + batchSize)));
    }
    return outputs[0];
  }

  /** A description without secrets, for toString. */
  public String describe(String strategy) {
    return "JdbcSink."
        + strategy
        + "{pipeline="
        + pipelineId
        + ", "
        + settings
        + ", offsets="
        + dialect.offsetsTable()
        + ", writers="
        + dialect.writersTable()
        + ", "
        + (mapping == null ? "custom writer" : mapping.insertSql())
        + ", batchSize="
        + batchSize
        + (copy && mapping != null && mapping.isPlainInsert() ? ", COPY" : "")
        + (deadLetters == null ? "" : ", deadLetters=" + deadLetters)
        + "}";
  }
}
