package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Running totals on hot keys from several source partitions at once (issue 18, item 7): two
 * partitions whose records touch the same keys in opposite orders must both commit. Locking rows in
 * first-seen order let each transaction hold the key the other one needs next, and PostgreSQL
 * aborted one of them with a deadlock (40P01).
 */
class HotKeyLockOrderIT {
  private static final String TOPIC = "clicks";

  private JdbcTestSupport db;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    db.execute("CREATE TABLE totals (campaign text PRIMARY KEY, clicks bigint NOT NULL)");
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
  }

  /** A click on a campaign: the record's value. */
  record Click(String campaign) implements java.io.Serializable {}

  private static PartitionOutputs<Click> outputs(int partition, List<String> campaigns) {
    List<ConsumerRecord<String, String>> records = new ArrayList<>();
    for (int o = 0; o < campaigns.size(); o++) {
      records.add(new ConsumerRecord<>(TOPIC, partition, o, "k" + o, campaigns.get(o)));
    }
    return new MappedPartition<String, String, Click>(
        records.iterator(),
        r -> List.of(new Click(r.value())),
        SourceRange.of(TOPIC, partition, 0, campaigns.size()));
  }

  /**
   * Both transactions are held open halfway through their range (the mid-write fault point) until
   * the other one got there too: with rows written as they come, partition 0 then holds {@code a}
   * and waits for {@code b}, partition 1 holds {@code b} and waits for {@code a}. Written in key
   * order, one waits for the other on {@code a} and both commit.
   */
  @Test
  void partitionsUpdatingTheSameKeysInOppositeOrdersBothCommit() throws Exception {
    JdbcSink<Click> sink =
        JdbcSink.<Click>transactional("totals")
            .connection(db.settings)
            .table("totals")
            .columns("campaign", "clicks")
            .values(c -> List.of(c.campaign(), 1L))
            .upsertOn("campaign")
            .accumulating("clicks")
            .batchSize(1) // one statement per row, so the lock order is the write order
            .build();
    long epoch;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      epoch = store.takeWriterEpoch();
      store.storeStartOffsets(
          Map.of(new TopicPartition(TOPIC, 0), 0L, new TopicPartition(TOPIC, 1), 0L), epoch);
    }
    CountDownLatch bothHalfway = new CountDownLatch(2);
    FaultPoints.set(
        FaultPoints.TASK_MID_WRITE,
        () -> {
          bothHalfway.countDown();
          try {
            if (!bothHalfway.await(60, TimeUnit.SECONDS)) {
              throw new IllegalStateException("the other partition never got halfway");
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
          }
        });
    List<String> forward = List.of("a", "b", "c", "d");
    List<String> backward = List.of("d", "c", "b", "a");
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      Future<PartitionCommit> p0 =
          pool.submit(
              () -> sink.commit(epoch, SourceRange.of(TOPIC, 0, 0, 4), outputs(0, forward)));
      Future<PartitionCommit> p1 =
          pool.submit(
              () -> sink.commit(epoch, SourceRange.of(TOPIC, 1, 0, 4), outputs(1, backward)));

      assertThat(p0.get(120, TimeUnit.SECONDS).outcome()).isEqualTo(CommitOutcome.COMMITTED);
      assertThat(p1.get(120, TimeUnit.SECONDS).outcome()).isEqualTo(CommitOutcome.COMMITTED);
    } finally {
      pool.shutdownNow();
    }
    assertThat(totals()).isEqualTo(Map.of("a", 2L, "b", 2L, "c", 2L, "d", 2L));
    assertThat(db.stored("totals"))
        .containsEntry(new TopicPartition(TOPIC, 0), 4L)
        .containsEntry(new TopicPartition(TOPIC, 1), 4L);
  }

  private Map<String, Long> totals() throws Exception {
    Map<String, Long> out = new TreeMap<>();
    try (Connection c = db.connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT campaign, clicks FROM totals")) {
      while (rs.next()) {
        out.put(rs.getString(1), rs.getLong(2));
      }
    }
    return out;
  }
}
