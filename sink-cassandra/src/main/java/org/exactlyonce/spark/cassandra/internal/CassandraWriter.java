package org.exactlyonce.spark.cassandra.internal;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.DefaultConsistencyLevel;
import com.datastax.oss.driver.api.core.cql.BatchStatement;
import com.datastax.oss.driver.api.core.cql.BatchType;
import com.datastax.oss.driver.api.core.cql.BoundStatement;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.cql.Row;
import com.datastax.oss.driver.api.core.cql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.exactlyonce.spark.DeadLetter;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;
import org.exactlyonce.spark.spi.Rows;

/** Executor-side writes of a Cassandra sink. */
public final class CassandraWriter {
  private CassandraWriter() {}

  /**
   * Writes dead letters keyed by pipeline and source position, with the offset as write timestamp:
   * a replay rewrites the same cells.
   */
  public static void writeDeadLetters(CassandraSpec<?> spec, List<DeadLetter> letters) {
    if (letters.isEmpty()) {
      return;
    }
    PreparedStatement insert =
        Sessions.prepare(
            spec.settings(),
            "INSERT INTO "
                + spec.deadLetters().cql()
                + " (pipeline_id, topic, kafka_partition,"
                + " src_offset, record_key, record_value, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
                + " USING TIMESTAMP ?");
    CqlSession session = Sessions.get(spec.settings());
    for (DeadLetter d : letters) {
      session.execute(
          insert.bind(
              spec.pipelineId().value(),
              d.topic(),
              d.partition(),
              d.offset(),
              d.key() == null ? null : java.nio.ByteBuffer.wrap(d.key()),
              d.value() == null ? null : java.nio.ByteBuffer.wrap(d.value()),
              d.error(),
              d.offset()));
    }
  }

  /** Writes {@code rows}; returns how many outputs were written. */
  public static <R> long write(
      CassandraSpec<R> spec, SourceRange range, Iterator<Positioned<R>> rows) {
    return spec.mode() == CassandraSpec.Mode.RUNNING_TOTAL
        ? runningTotals(spec, range, rows)
        : upserts(spec, rows);
  }

  /**
   * Asynchronous INSERTs with at most {@code maxRequestsInFlight} outstanding, each with a write
   * timestamp derived from the source: a replay writes the same cells with the same timestamps.
   */
  private static <R> long upserts(CassandraSpec<R> spec, Iterator<Positioned<R>> rows) {
    List<String> cols = spec.insertColumns();
    String cql =
        "INSERT INTO "
            + spec.table().cql()
            + " ("
            + names(cols)
            + ") VALUES ("
            + cols.stream().map(c -> "?").collect(Collectors.joining(", "))
            + ") USING TIMESTAMP ?";
    CqlSession session = Sessions.get(spec.settings());
    PreparedStatement insert = Sessions.prepare(spec.settings(), cql);
    // Rows of one Cassandra partition go together as one UNLOGGED batch: one mutation for the
    // node (applied at once, no batch log, exempt from the batch size thresholds), far fewer
    // requests than one per row. With the recommended source-position layout (partition key =
    // topic and partition) every row of a range shares its partition; in other layouts
    // consecutive rows rarely do, and each goes alone as before. A batch holds up to
    // limit / 16 in-flight permits, so about as many rows stay outstanding as with single rows.
    int limit = spec.settings().maxRequestsInFlight();
    int batchPermits = Math.max(1, limit / 16);
    Semaphore inFlight = new Semaphore(limit);
    AtomicReference<Throwable> failure = new AtomicReference<>();
    long written = 0;
    try {
      List<BoundStatement> pending = new ArrayList<>();
      java.nio.ByteBuffer pendingKey = null;
      long pendingBytes = 0;
      while (rows.hasNext() && failure.get() == null) {
        Positioned<R> p = rows.next();
        List<Object> values = new ArrayList<>(values(spec, p));
        if (spec.mode() == CassandraSpec.Mode.SOURCE_POSITION) {
          values.addAll(List.of(p.topic(), p.partition(), p.offset(), p.index()));
        }
        values.add(timestamp(spec, p));
        BoundStatement bound = insert.bind(values.toArray());
        written++;
        java.nio.ByteBuffer key = bound.getRoutingKey();
        long bytes = 0;
        for (java.nio.ByteBuffer v : bound.getValues()) {
          bytes += v == null ? 0 : v.remaining();
        }
        if (!pending.isEmpty()
            && (key == null
                || !key.equals(pendingKey)
                || pending.size() == BATCH_ROWS
                || pendingBytes + bytes > BATCH_BYTES)) {
          flush(session, pending, inFlight, batchPermits, failure);
        }
        if (key == null) {
          send(session, bound, inFlight, 1, failure);
          continue;
        }
        pending.add(bound);
        pendingKey = key;
        pendingBytes = pending.size() == 1 ? bytes : pendingBytes + bytes;
      }
      if (!pending.isEmpty() && failure.get() == null) {
        flush(session, pending, inFlight, batchPermits, failure);
      }
      inFlight.acquire(limit); // wait for every write
      inFlight.release(limit);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ExactlyOnceException("interrupted while writing to " + spec.table(), e);
    }
    if (failure.get() != null) {
      throw new ExactlyOnceException(
          "a write to "
              + spec.table()
              + " failed (the task is retried; rewrites are idempotent): "
              + failure.get(),
          failure.get());
    }
    return written;
  }

  /**
   * Rows and value bytes of one UNLOGGED batch. Every batch is of one partition (same routing key),
   * which the node exempts from its batch size thresholds; 32 KiB stays below the default failure
   * threshold (50 KiB) anyway.
   */
  static final int BATCH_ROWS = 100;

  static final long BATCH_BYTES = 32 * 1024;

  /** Sends the pending rows of one partition, as one statement or one UNLOGGED batch. */
  private static void flush(
      CqlSession session,
      List<BoundStatement> pending,
      Semaphore inFlight,
      int batchPermits,
      AtomicReference<Throwable> failure)
      throws InterruptedException {
    if (pending.size() == 1) {
      send(session, pending.get(0), inFlight, 1, failure);
    } else {
      send(
          session,
          BatchStatement.newInstance(BatchType.UNLOGGED, List.copyOf(pending)),
          inFlight,
          batchPermits,
          failure);
    }
    pending.clear();
  }

  private static void send(
      CqlSession session,
      Statement<?> statement,
      Semaphore inFlight,
      int permits,
      AtomicReference<Throwable> failure)
      throws InterruptedException {
    inFlight.acquire(permits);
    session
        .executeAsync(statement)
        .whenComplete(
            (rs, e) -> {
              if (e != null) {
                failure.compareAndSet(null, e);
              }
              inFlight.release(permits);
            });
  }

  /**
   * How many outputs of one record {@code timestampFromSourceOffset()} can order: its write
   * timestamp is {@code offset * OUTPUTS_PER_RECORD + index}.
   */
  static final int OUTPUTS_PER_RECORD = 1024;

  private static <R> long timestamp(CassandraSpec<R> spec, Positioned<R> p) {
    return switch (spec.mode()) {
      case NATURAL_KEY_RECORD_TIMESTAMP -> spec.timestamp().micros(p.value());
      case NATURAL_KEY_OFFSET_TIMESTAMP -> offsetTimestamp(spec, p);
      // Every output has its own key: the timestamp only has to be the same on a replay.
      default -> p.offset();
    };
  }

  /**
   * The source offset orders the versions of a key whose records share a Kafka partition; the
   * output's index orders the outputs of one record. Without the index two outputs of one key and
   * one record tied, and Cassandra resolves a tie cell by cell (the greater value of each column
   * wins): a row that neither output had.
   */
  private static <R> long offsetTimestamp(CassandraSpec<R> spec, Positioned<R> p) {
    if (p.index() >= OUTPUTS_PER_RECORD || p.offset() > Long.MAX_VALUE / OUTPUTS_PER_RECORD) {
      throw new ExactlyOnceException(
          "sink '"
              + spec.pipelineId()
              + "': record "
              + p.topic()
              + "-"
              + p.partition()
              + "@"
              + p.offset()
              + " has output #"
              + p.index()
              + "; timestampFromSourceOffset() orders at most "
              + OUTPUTS_PER_RECORD
              + " outputs per record at offsets below "
              + Long.MAX_VALUE / OUTPUTS_PER_RECORD
              + ". Use keyedBySourcePosition(...) or timestampFrom(...) for this table");
    }
    return p.offset() * OUTPUTS_PER_RECORD + p.index();
  }

  private static <R> List<?> values(CassandraSpec<R> spec, Positioned<R> p) {
    return Rows.valuesOf(spec.values(), p, spec.columns());
  }

  /**
   * Running totals: per key, add the amounts of the outputs at offsets after the last one this
   * pipeline applied from this source partition, and remember the new last offset, in one
   * conditional update. A replay, a retry or a speculative copy finds the offset applied and adds
   * nothing. The applied offsets are keyed by pipeline and source partition ({@link
   * CassandraSpec#appliedKey}), so several pipelines can keep totals on one table.
   */
  private static <R> long runningTotals(
      CassandraSpec<R> spec, SourceRange range, Iterator<Positioned<R>> rows) {
    Map<List<Object>, List<Positioned<R>>> byKey = new LinkedHashMap<>();
    while (rows.hasNext()) {
      Positioned<R> p = rows.next();
      byKey.computeIfAbsent(List.copyOf(values(spec, p)), k -> new ArrayList<>()).add(p);
    }
    String source = CassandraSpec.appliedKey(spec.pipelineId(), range.topic(), range.partition());
    String legacy = CassandraSpec.legacyAppliedKey(range.topic(), range.partition());
    String where =
        spec.columns().stream()
            .map(c -> CqlName.quote(c) + " = ?")
            .collect(Collectors.joining(" AND "));
    String t = spec.table().cql();
    String applied = CqlName.quote(CassandraSpec.APPLIED_COLUMN);
    String totalColumn = CqlName.quote(spec.totalColumn());
    PreparedStatement read =
        Sessions.prepare(
            spec.settings(),
            "SELECT " + totalColumn + ", " + applied + " FROM " + t + " WHERE " + where);
    PreparedStatement insert =
        Sessions.prepare(
            spec.settings(),
            "INSERT INTO "
                + t
                + " ("
                + names(spec.columns())
                + ", "
                + totalColumn
                + ", "
                + applied
                + ") VALUES ("
                + spec.columns().stream().map(c -> "?").collect(Collectors.joining(", "))
                + ", ?, ?) IF NOT EXISTS");
    PreparedStatement update =
        Sessions.prepare(
            spec.settings(),
            "UPDATE "
                + t
                + " SET "
                + totalColumn
                + " = ?, "
                + applied
                + " = ? WHERE "
                + where
                + " IF "
                + totalColumn
                + " = ? AND "
                + applied
                + " = ?");
    CqlSession session = Sessions.get(spec.settings());
    DefaultConsistencyLevel serial =
        DefaultConsistencyLevel.valueOf(spec.settings().serialConsistency());
    long written = 0;
    for (Map.Entry<List<Object>, List<Positioned<R>>> e : byKey.entrySet()) {
      List<Object> key = e.getKey();
      for (int attempt = 0; ; attempt++) {
        if (attempt == 100) {
          throw new ExactlyOnceException(
              "running total of " + key + " in " + spec.table() + " kept changing");
        }
        Row row = session.execute(read.bind(key.toArray()).setConsistencyLevel(serial)).one();
        Map<String, Long> appliedNow =
            row == null || row.isNull(1) ? Map.of() : row.getMap(1, String.class, Long.class);
        // An entry without the pipeline was written before the keys named it, when a table could
        // only be kept by one pipeline per source partition: it is that pipeline's, so take it as
        // ours and move it under our key with this update.
        Long mine = appliedNow.get(source);
        long last = mine != null ? mine : appliedNow.getOrDefault(legacy, -1L);
        long add = 0;
        long max = last;
        int n = 0;
        for (Positioned<R> p : e.getValue()) {
          if (p.offset() > last) {
            add += spec.amount().amount(p.value());
            max = Math.max(max, p.offset());
            n++;
          }
        }
        if (n == 0) {
          break; // applied before: a replay
        }
        Map<String, Long> next = new HashMap<>(appliedNow);
        next.remove(legacy);
        next.put(source, max);
        List<Object> args = new ArrayList<>();
        boolean ok;
        if (row == null) {
          args.addAll(key);
          args.add(add);
          args.add(next);
          ok =
              session
                  .execute(insert.bind(args.toArray()).setSerialConsistencyLevel(serial))
                  .wasApplied();
        } else {
          long total = row.isNull(0) ? 0 : row.getLong(0);
          args.add(total + add);
          args.add(next);
          args.addAll(key);
          args.add(row.isNull(0) ? null : total);
          args.add(row.isNull(1) ? null : appliedNow);
          ok =
              session
                  .execute(update.bind(args.toArray()).setSerialConsistencyLevel(serial))
                  .wasApplied();
        }
        if (ok) {
          written += n;
          break;
        }
      }
    }
    return written;
  }

  /** Column names as a CQL list, each quoted. */
  private static String names(List<String> columns) {
    return columns.stream().map(CqlName::quote).collect(Collectors.joining(", "));
  }
}
