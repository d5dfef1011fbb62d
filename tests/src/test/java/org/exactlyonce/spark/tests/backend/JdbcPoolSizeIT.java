package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.apache.kafka.common.TopicPartition;
import org.apache.spark.api.java.JavaSparkContext;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.JdbcTestSupport.Out;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The executor's connection pool against its task slots (issue 18, item 6): every task of an
 * executor holds its connection for its whole partition at once. With the old fixed pool of 4, the
 * fifth and sixth tasks of a {@code local[6]} executor waited 10 s for a connection and failed.
 */
class JdbcPoolSizeIT {
  private static final String TOPIC = "clicks";
  private static final int SLOTS = 6;

  /** Reached by every task before its commit; in local mode the tasks run in this JVM. */
  private static final CountDownLatch ALL_OPEN = new CountDownLatch(SLOTS);

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
  }

  @Test
  void everyTaskSlotGetsAConnectionWhileAllHoldTheirTransactionsOpen() {
    JdbcTestSupport db = new JdbcTestSupport();
    JdbcSink<Out> sink =
        JdbcSink.<Out>transactional("pool")
            .connection(db.settings) // no maxPoolSize: sized from the task slots
            .table("out")
            .columns("id", "topic", "kafka_partition", "src_offset")
            .values(JdbcTestSupport::values)
            .build();
    long epoch;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      epoch = store.takeWriterEpoch();
      Map<TopicPartition, Long> start = new HashMap<>();
      IntStream.range(0, SLOTS).forEach(p -> start.put(new TopicPartition(TOPIC, p), 0L));
      store.storeStartOffsets(start, epoch);
    }
    FaultPoints.set(
        FaultPoints.TASK_BEFORE_COMMIT,
        () -> {
          ALL_OPEN.countDown();
          try {
            // Longer than the pool's 10 s connection wait, so that a task without a connection
            // fails before the others give up.
            if (!ALL_OPEN.await(60, TimeUnit.SECONDS)) {
              throw new IllegalStateException("not every task got a connection");
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
          }
        });
    try (JavaSparkContext sc = new JavaSparkContext(SparkSetup.local("pool", SLOTS, 1))) {
      List<PartitionCommit> commits =
          sc.parallelize(IntStream.range(0, SLOTS).boxed().toList(), SLOTS)
              .map(
                  p ->
                      sink.commit(
                          epoch,
                          SourceRange.of(TOPIC, p, 0, 10),
                          JdbcTestSupport.outputs(TOPIC, p, 0, 10)))
              .collect();

      assertThat(commits)
          .extracting(PartitionCommit::outcome)
          .containsOnly(CommitOutcome.COMMITTED);
    }
    assertThat(db.count()).isEqualTo(SLOTS * 10L);
  }
}
