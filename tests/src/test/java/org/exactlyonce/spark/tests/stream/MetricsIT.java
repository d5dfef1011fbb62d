package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceExecutorMetrics;
import org.exactlyonce.spark.ExactlyOnceMetrics;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.exactlyonce.spark.tests.support.StreamHarness;
import org.junit.jupiter.api.Test;

/**
 * The metrics of a pipeline, read the way an operator reads them: through a real Spark metrics sink
 * (JMX, configured with {@code spark.metrics.conf.*}), on a stream writing to PostgreSQL.
 */
class MetricsIT {
  private static final int PER_PARTITION = 150;
  private static final int PARTITIONS = 2;
  private static final long TOTAL = (long) PER_PARTITION * PARTITIONS;

  /** Records of "ahead" its mapper fails on, to its dead letters: offsets 7, 57 and 107. */
  private static boolean bad(long offset) {
    return offset % 50 == 7;
  }

  private static final long BAD = 3L * PARTITIONS;

  private final MBeanServer jmx = ManagementFactory.getPlatformMBeanServer();

  /** The executor-side metrics read, as MBean name suffix and attribute. */
  private static final List<String> EXECUTOR_METRICS =
      List.of(
          ExactlyOnceExecutorMetrics.ROWS_WRITTEN + "/Count",
          ExactlyOnceExecutorMetrics.RECORDS_READ + "/Count",
          ExactlyOnceExecutorMetrics.RANGES_COMMITTED + "/Count",
          ExactlyOnceExecutorMetrics.REPLAYS_SKIPPED + "/Count",
          ExactlyOnceExecutorMetrics.TASK_ROWS_WRITTEN + "/Count",
          ExactlyOnceExecutorMetrics.TASK_COMMIT_MS + "/Count");

  /**
   * Run 1: pipeline "ahead" writes 300 records, rate-limited to 50 records per partition and batch,
   * so each batch leaves a known lag behind the partitions' end. Run 2: a new pipeline "behind"
   * joins on the same stream, which starts from offset 0 again, so "ahead" is given every range a
   * second time and skips each as a replay. The mapper of "ahead" fails on a few records, which go
   * to its dead letters.
   */
  @Test
  void countersLagAndReplaysAreVisibleThroughJmxAndGoneAfterTheStreamStops() {
    JdbcTestSupport db = new JdbcTestSupport();
    db.execute("CREATE TABLE out_behind (LIKE out)");
    try (StreamHarness h =
        new StreamHarness(
            "metrics",
            PARTITIONS,
            Map.of(
                "spark.streaming.kafka.maxRatePerPartition", "100",
                "spark.metrics.conf.*.sink.jmx.class", "org.apache.spark.metrics.sink.JmxSink",
                // The executor-side metrics (a local master's executor shares this JVM).
                "spark.plugins", ExactlyOnceExecutorMetrics.class.getName()))) {
      List<ProducerRecord<String, String>> records = new ArrayList<>();
      for (int p = 0; p < PARTITIONS; p++) {
        for (int i = 0; i < PER_PARTITION; i++) {
          String id = "r-" + p + "-" + i;
          records.add(new ProducerRecord<>(h.topic, p, id, id));
        }
      }
      h.kafka.send(records); // before the stream starts: the end offsets stay 150 per partition
      Map<TopicPartition, Long> end = h.endOffsets();
      RecordMapper<String, String, Out> mapper =
          r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset()));
      RecordMapper<String, String, Out> failsOnSome =
          r -> {
            if (bad(r.offset())) {
              throw new IllegalArgumentException("bad record " + r.value());
            }
            return List.of(new Out(r.value(), r.topic(), r.partition(), r.offset()));
          };

      // Run 1: only "ahead".
      long[] executor = new long[EXECUTOR_METRICS.size()];
      List<BatchResult> first = new CopyOnWriteArrayList<>();
      List<String> mismatches = new CopyOnWriteArrayList<>();
      Throwable failure =
          h.run(
              ssc -> {
                ExactlyOnceStream<String, String> stream =
                    ExactlyOnce.<String, String>stream(ssc, h.kafkaParams(), List.of(h.topic))
                        .foreachRDD(failsOnSome, sink("ahead", "out", db))
                        .create();
                stream.onBatch(r -> check(r, first, end, false, mismatches));
                return stream;
              },
              () -> {
                if (read("ahead", ExactlyOnceMetrics.ROWS_WRITTEN, "Count") != TOTAL - BAD) {
                  return false;
                }
                // Read while the stream still runs: the plugin's source goes with its context.
                for (int i = 0; i < EXECUTOR_METRICS.size(); i++) {
                  executor[i] = readExecutor(EXECUTOR_METRICS.get(i));
                }
                return true;
              });
      assertThat(failure).isNull();
      long rangesWritten =
          first.stream()
              .flatMap(r -> r.commits().stream())
              .filter(c -> !c.range().isEmpty())
              .count();
      // Every range was committed by one task attempt on the local executor, and counted there.
      assertThat(executor)
          .as("executor-side " + EXECUTOR_METRICS)
          .containsExactly(TOTAL - BAD, TOTAL, rangesWritten, 0, rangesWritten, rangesWritten);
      assertThat(mismatches).isEmpty();
      assertThat(db.count("out")).isEqualTo(TOTAL - BAD);
      assertThat(db.count("ahead_dead_letters")).isEqualTo(BAD);
      // The rate limit cut 50 records per partition and batch: the first batch left 100 behind.
      assertThat(first.get(0).commits())
          .extracting(c -> c.range().until() - c.range().from())
          .containsOnly(50L);

      // Gone from JMX once the streaming context stopped.
      assertThat(names("ahead")).isEmpty();

      // Run 2: "behind" joins; the stream starts at 0 and "ahead" skips what it committed.
      List<BatchResult> second = new CopyOnWriteArrayList<>();
      List<String> mismatches2 = new CopyOnWriteArrayList<>();
      long[] ahead = new long[5];
      failure =
          h.run(
              ssc -> {
                ExactlyOnceStream<String, String> stream =
                    ExactlyOnce.<String, String>stream(ssc, h.kafkaParams(), List.of(h.topic))
                        .foreachRDD(mapper, sink("behind", "out_behind", db))
                        .foreachRDD(failsOnSome, sink("ahead", "out", db))
                        .create();
                stream.onBatch(
                    r ->
                        check(r, second, end, r.pipelineId().value().equals("ahead"), mismatches2));
                return stream;
              },
              () -> {
                // "ahead" runs after "behind" in each batch: wait for it to finish that batch too.
                if (read("behind", ExactlyOnceMetrics.ROWS_WRITTEN, "Count") != TOTAL
                    || read("ahead", ExactlyOnceMetrics.LAST_COMMITTED_BATCH_TIME_MS, "Value")
                        < read(
                            "behind", ExactlyOnceMetrics.LAST_COMMITTED_BATCH_TIME_MS, "Value")) {
                  return false;
                }
                // Read while the stream still runs: its sources go when it stops.
                ahead[0] = read("ahead", ExactlyOnceMetrics.REPLAYS_SKIPPED, "Count");
                ahead[1] = read("ahead", ExactlyOnceMetrics.ROWS_WRITTEN, "Count");
                ahead[2] = read("ahead", ExactlyOnceMetrics.RECORDS_READ, "Count");
                ahead[3] = read("behind", ExactlyOnceMetrics.RECORDS_READ, "Count");
                ahead[4] = read("behind", ExactlyOnceMetrics.REPLAYS_SKIPPED, "Count");
                return true;
              });
      assertThat(failure).isNull();
      assertThat(mismatches2).isEmpty();
      List<PartitionCommit> aheadRanges =
          second.stream()
              .filter(r -> r.pipelineId().value().equals("ahead"))
              .flatMap(r -> r.commits().stream())
              .filter(c -> !c.range().isEmpty())
              .toList();
      // Every offset "ahead" had committed came back once, in ranges it skipped as replays.
      assertThat(aheadRanges)
          .extracting(PartitionCommit::outcome)
          .containsOnly(CommitOutcome.ALREADY_COMMITTED);
      assertThat(aheadRanges.stream().mapToLong(c -> c.range().until() - c.range().from()).sum())
          .isEqualTo(TOTAL);
      assertThat(ahead[0])
          .as("replaysSkipped of 'ahead'")
          .isEqualTo(aheadRanges.size())
          .isPositive();
      assertThat(ahead[1]).as("rowsWritten of 'ahead'").isZero();
      assertThat(ahead[2]).as("recordsRead of 'ahead'").isZero();
      assertThat(ahead[3]).as("recordsRead of 'behind'").isEqualTo(TOTAL);
      assertThat(ahead[4]).as("replaysSkipped of 'behind'").isZero();
      assertThat(db.count("out")).as("nothing more written by 'ahead'").isEqualTo(TOTAL - BAD);
      assertThat(db.count("ahead_dead_letters")).isEqualTo(BAD);
      assertThat(db.count("out_behind")).isEqualTo(TOTAL);
      assertThat(names("ahead")).isEmpty();
      assertThat(names("behind")).isEmpty();
    }
  }

  /**
   * Called on the driver right after the metrics counted {@code r}: compares what JMX shows with
   * what the batch did; records every difference in {@code mismatches}.
   *
   * @param skipsAll whether the pipeline had committed every offset before the run (its lag is 0)
   */
  private void check(
      BatchResult r,
      List<BatchResult> seen,
      Map<TopicPartition, Long> end,
      boolean skipsAll,
      List<String> mismatches) {
    seen.add(r);
    String p = r.pipelineId().value();
    long batches = seen.stream().filter(b -> b.pipelineId().equals(r.pipelineId())).count();
    expect(mismatches, p, ExactlyOnceMetrics.BATCHES_COMMITTED, "Count", batches);
    expect(
        mismatches, p, ExactlyOnceMetrics.LAST_COMMITTED_BATCH_TIME_MS, "Value", r.batchTimeMs());
    for (PartitionCommit c : r.commits()) {
      TopicPartition tp = c.range().topicPartition();
      long expected = skipsAll ? 0 : end.get(tp) - c.range().until();
      expect(
          mismatches, p, ExactlyOnceMetrics.lagName(tp.topic(), tp.partition()), "Value", expected);
      // Behind: the oldest record not written waited since a batch time before now (the batch
      // runs after its time), so at least a millisecond; caught up: 0.
      try {
        long waited = read(p, ExactlyOnceMetrics.lagMsName(tp.topic(), tp.partition()), "Value");
        if (expected > 0 ? waited <= 0 : waited != 0) {
          mismatches.add(p + " lagMs of " + tp + ": " + waited + " with " + expected + " behind");
        }
      } catch (RuntimeException e) {
        mismatches.add(p + " lagMs of " + tp + ": " + e.getMessage());
      }
    }
    long ranges =
        seen.stream()
            .filter(b -> b.pipelineId().equals(r.pipelineId()))
            .flatMap(b -> b.commits().stream())
            .filter(c -> !c.range().isEmpty())
            .count();
    expect(mismatches, p, ExactlyOnceMetrics.COMMIT_LATENCY_MS, "Count", ranges);
    for (String kind :
        List.of(
            ExactlyOnceMetrics.FAILURE_FENCED,
            ExactlyOnceMetrics.FAILURE_OFFSET_MISMATCH,
            ExactlyOnceMetrics.FAILURE_BACKEND_UNAVAILABLE,
            ExactlyOnceMetrics.FAILURE_CONFIGURATION,
            ExactlyOnceMetrics.FAILURE_OTHER)) {
      expect(mismatches, p, ExactlyOnceMetrics.failureName(kind), "Count", 0);
    }
    expect(mismatches, p, ExactlyOnceMetrics.FENCED, "Count", 0);
    long deadLetters =
        seen.stream()
            .filter(b -> b.pipelineId().equals(r.pipelineId()) && p.equals("ahead"))
            .flatMap(b -> b.commits().stream())
            .filter(c -> c.outcome() == CommitOutcome.COMMITTED)
            .mapToLong(
                c ->
                    java.util.stream.LongStream.range(c.range().from(), c.range().until())
                        .filter(MetricsIT::bad)
                        .count())
            .sum();
    expect(mismatches, p, ExactlyOnceMetrics.DEAD_LETTERS, "Count", deadLetters);
  }

  private void expect(
      List<String> mismatches, String pipeline, String metric, String attribute, long expected) {
    try {
      long actual = read(pipeline, metric, attribute);
      if (actual != expected) {
        mismatches.add(pipeline + " " + metric + ": JMX " + actual + ", expected " + expected);
      }
    } catch (RuntimeException e) {
      mismatches.add(pipeline + " " + metric + ": " + e.getMessage());
    }
  }

  private static JdbcSink<Out> sink(String pipeline, String table, JdbcTestSupport db) {
    return JdbcSink.<Out>transactional(pipeline)
        .connection(db.settings)
        .deadLetterTable(pipeline + "_dead_letters")
        .table(table)
        .columns("id", "topic", "kafka_partition", "src_offset")
        .values(JdbcTestSupport::values)
        .build();
  }

  /** The MBeans of {@code pipeline}'s source that Spark's JmxSink registered. */
  private Set<ObjectName> names(String pipeline) {
    try {
      String suffix = ".driver." + ExactlyOnceMetrics.sourceName(PipelineId.of(pipeline)) + ".";
      Set<ObjectName> out = new java.util.HashSet<>();
      for (ObjectName n : jmx.queryNames(new ObjectName("metrics:*"), null)) {
        String name = ObjectName.unquote(quoted(n.getKeyProperty("name")));
        if (name.contains(suffix)) {
          out.add(n);
        }
      }
      return out;
    } catch (javax.management.JMException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String quoted(String s) {
    return s.startsWith("\"") ? s : ObjectName.quote(s);
  }

  /** {@code metric/attribute} of the executor plugin's source, which Spark's JmxSink shows. */
  private long readExecutor(String metricAndAttribute) {
    String[] parts = metricAndAttribute.split("/");
    // On a local master the executor starts before the application id is known, so Spark names
    // the source without the "<app id>.<executor id>." it puts in front on a cluster.
    String suffix = "plugin." + ExactlyOnceExecutorMetrics.class.getName() + "." + parts[0];
    try {
      for (ObjectName n : jmx.queryNames(new ObjectName("metrics:*"), null)) {
        String name = ObjectName.unquote(quoted(n.getKeyProperty("name")));
        if (name.equals(suffix) || name.endsWith("." + suffix)) {
          return ((Number) jmx.getAttribute(n, parts[1])).longValue();
        }
      }
    } catch (javax.management.JMException e) {
      throw new IllegalStateException(e);
    }
    throw new IllegalStateException("no MBean named *" + suffix + " in JMX");
  }

  /** Attribute {@code attribute} of metric {@code metric} of {@code pipeline}'s source. */
  private long read(String pipeline, String metric, String attribute) {
    String suffix =
        ".driver." + ExactlyOnceMetrics.sourceName(PipelineId.of(pipeline)) + "." + metric;
    try {
      for (ObjectName n : names(pipeline)) {
        if (ObjectName.unquote(quoted(n.getKeyProperty("name"))).endsWith(suffix)) {
          return ((Number) jmx.getAttribute(n, attribute)).longValue();
        }
      }
    } catch (javax.management.JMException e) {
      throw new IllegalStateException(e);
    }
    throw new IllegalStateException("no MBean named *" + suffix + " in JMX");
  }
}
