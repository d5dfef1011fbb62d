package org.exactlyonce.spark.examples.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.CassandraSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.CassandraServer;

/**
 * The driver's offset bookkeeping of one batch, without Spark or Kafka: what the per-batch and
 * idempotent strategies run after writing (epoch check, lock, decide, compare-and-set every range,
 * commit), as a curve over the batch's partitions, for the PostgreSQL store (shared by {@code
 * JdbcSink.perBatch} and {@code JdbcSink.idempotent}) and the Cassandra store. The two stores
 * alternate at each partition count.
 */
final class Bookkeeping {
  private Bookkeeping() {}

  static final int BATCHES = 30;
  static final int WARM_UP = 5;

  static List<String> run(Strategies s) {
    CassandraServer cs = s.cassandra();
    ExactlyOnceSink jdbc =
        JdbcSink.<String[]>perBatch("bench-bookkeeping-" + System.nanoTime())
            .connection(JdbcSettings.url(s.pgUrl()).user(s.postgres().user()))
            .table("bookkeeping_unused")
            .columns("id")
            .values(v -> List.of(v[0]))
            .build();
    ExactlyOnceSink cassandra =
        CassandraSink.<String[]>idempotent("bench-bookkeeping-" + System.nanoTime())
            .connection(
                CassandraSettings.contactPoints(
                    cs.localDatacenter(), cs.host() + ":" + cs.nativePort()))
            .table("bench.bookkeeping_unused")
            .columns("id")
            .values(v -> List.of(v[0]))
            .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
            .build();
    List<String> lines = new ArrayList<>();
    for (int partitions : new int[] {4, 100, 1000}) {
      for (ExactlyOnceSink sink : List.of(jdbc, cassandra)) {
        String store = sink == jdbc ? "PostgreSQL store" : "Cassandra store";
        double[] p = batchCommit(sink, partitions);
        String line =
            String.format(
                "%s, one batch of %,d partitions: p50 %.1f ms, max %.1f ms (%d batches)",
                store, partitions, p[0], p[1], BATCHES);
        System.out.println("  bookkeeping  " + line);
        lines.add(line);
      }
    }
    return lines;
  }

  private static double[] batchCommit(ExactlyOnceSink sink, int partitions) {
    String topic = "bookkeeping-" + partitions + "-" + System.nanoTime();
    List<Long> micros = new ArrayList<>();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      long epoch = store.takeWriterEpoch();
      Map<TopicPartition, Long> starts = new HashMap<>();
      for (int p = 0; p < partitions; p++) {
        starts.put(new TopicPartition(topic, p), 0L);
      }
      store.storeStartOffsets(starts, epoch);
      for (int b = 0; b < BATCHES + WARM_UP; b++) {
        List<SourceRange> ranges = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
          ranges.add(SourceRange.of(topic, p, b, b + 1));
        }
        long t0 = System.nanoTime();
        var commits = store.commitRanges(epoch, ranges);
        long us = (System.nanoTime() - t0) / 1000;
        if (commits.stream().anyMatch(c -> c.outcome() != CommitOutcome.COMMITTED)) {
          throw new IllegalStateException("bookkeeping run: " + commits);
        }
        if (b >= WARM_UP) {
          micros.add(us);
        }
      }
    } catch (Exception e) {
      throw new IllegalStateException("bookkeeping run failed", e);
    }
    Collections.sort(micros);
    return new double[] {
      micros.get(micros.size() / 2) / 1000.0, micros.get(micros.size() - 1) / 1000.0
    };
  }
}
