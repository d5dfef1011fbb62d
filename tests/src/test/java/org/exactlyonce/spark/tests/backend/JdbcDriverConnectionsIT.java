package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.BackendUnavailableException;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.jdbc.internal.JdbcOffsetStore;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.tests.support.JdbcTestSupport;
import org.exactlyonce.spark.tests.support.Outage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import scala.Tuple2;

/**
 * The driver's connections of the idempotent and per-batch sinks (issue 18, item 8): pooled, at
 * READ COMMITTED whatever the server's default, and a database that was reachable and went away is
 * waited for (a bounded time) and then reported as unreachable, not as a configuration error.
 */
class JdbcDriverConnectionsIT {
  private static final TopicPartition P0 = new TopicPartition("clicks", 0);

  @TempDir Path dir;
  private PostgresServer own;

  @AfterEach
  void tearDown() {
    if (own != null) {
      own.close();
    }
  }

  private static JdbcBatchSink<Tuple2<String, Long>> perBatch(JdbcSettings settings) {
    return JdbcSink.<Tuple2<String, Long>>perBatch("conversions-per-campaign")
        .connection(settings)
        .table("conversions")
        .columns("campaign", "total")
        .values(t -> List.of(t._1(), t._2()))
        .upsertOn("campaign")
        .accumulating("total")
        .build();
  }

  private static void execute(String url, JdbcSettings settings, String sql) {
    try (Connection c = DriverManager.getConnection(url, settings.toProperties());
        Statement s = c.createStatement()) {
      s.execute(sql);
    } catch (Exception e) {
      throw new IllegalStateException(sql, e);
    }
  }

  /** A database on a server of this test's own (it stops it), with the output table. */
  private JdbcSettings ownDatabase() {
    own = PostgresServer.start(dir);
    String url = own.createDatabase();
    JdbcSettings settings = JdbcSettings.url(url).user(own.user()).password(own.password());
    execute(
        url,
        settings,
        "CREATE TABLE conversions (campaign text PRIMARY KEY, total bigint NOT NULL)");
    return settings;
  }

  private static String query(OffsetStore store, String sql) {
    return ((JdbcOffsetStore) store).handle().createQuery(sql).mapTo(String.class).one();
  }

  @Test
  void bookkeepingRunsAtReadCommittedOnAPooledConnectionWhateverTheServersDefault() {
    JdbcTestSupport db = new JdbcTestSupport();
    db.execute("CREATE TABLE conversions (campaign text PRIMARY KEY, total bigint NOT NULL)");
    String name = db.url.substring(db.url.lastIndexOf('/') + 1);
    db.execute("ALTER DATABASE " + name + " SET default_transaction_isolation = 'serializable'");
    JdbcBatchSink<Tuple2<String, Long>> sink = perBatch(db.settings);

    String isolation;
    String firstBackend;
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
      isolation = query(store, "SHOW transaction_isolation");
      firstBackend = query(store, "SELECT pg_backend_pid()::text");
    }
    String secondBackend;
    try (OffsetStore store = sink.openOffsetStore()) {
      secondBackend = query(store, "SELECT pg_backend_pid()::text");
    }

    assertThat(isolation)
        .as("the commit protocols rely on row locks under READ COMMITTED")
        .isEqualTo("read committed");
    assertThat(secondBackend)
        .as("the next batch's bookkeeping reuses the connection instead of opening one")
        .isEqualTo(firstBackend);
  }

  /**
   * The start keeps every sink's store open through validation, epochs and start offsets: with
   * several JDBC sinks on one database, the driver's pool must not run out (it held 4, and the
   * fifth sink's start failed as if its URL were wrong).
   */
  @Test
  void manySinksOnOneDatabaseStartTogether() {
    JdbcTestSupport db = new JdbcTestSupport();
    db.execute("CREATE TABLE conversions (campaign text PRIMARY KEY, total bigint NOT NULL)");
    List<OffsetStore> open = new java.util.ArrayList<>();
    try {
      for (int i = 0; i < 8; i++) {
        JdbcBatchSink<Tuple2<String, Long>> sink =
            JdbcSink.<Tuple2<String, Long>>perBatch("conversions-" + i)
                .connection(db.settings)
                .table("conversions")
                .columns("campaign", "total")
                .values(t -> List.of(t._1(), t._2()))
                .upsertOn("campaign")
                .accumulating("total")
                .build();
        sink.checkOutputs();
        OffsetStore store = sink.openOffsetStore();
        open.add(store);
        store.validate();
      }
      for (OffsetStore store : open) {
        assertThat(store.takeWriterEpoch()).isPositive();
      }
    } finally {
      open.forEach(OffsetStore::close);
    }
  }

  @Test
  void aDatabaseThatWentDownAfterStartIsReportedUnreachableNotAsItsConfiguration() {
    // A short wait keeps the test short; the default is a minute.
    JdbcSettings settings = ownDatabase().reconnectTimeout(Duration.ofSeconds(3));
    JdbcBatchSink<Tuple2<String, Long>> sink = perBatch(settings);
    sink.checkOutputs();
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
    }
    JdbcSettings noSuchDatabase =
        JdbcSettings.url(own.jdbcUrl("no_such_database")).user(own.user());
    assertThatThrownBy(() -> perBatch(noSuchDatabase).openOffsetStore())
        .as("a wrong URL at start stays a configuration error")
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("Check the URL");

    own.stop();

    assertThatThrownBy(() -> sink.openOffsetStore().close())
        .isInstanceOf(BackendUnavailableException.class)
        .hasMessageContaining("is unreachable")
        .hasMessageContaining("reconnectTimeout")
        .hasMessageNotContaining("Check the URL");
  }

  @Test
  void bookkeepingWaitsOutAnOutageShorterThanItsWait() throws Exception {
    JdbcBatchSink<Tuple2<String, Long>> sink = perBatch(ownDatabase());
    sink.checkOutputs();
    OffsetStore held = sink.openOffsetStore();
    long epoch;
    try {
      held.validate();
      epoch = held.takeWriterEpoch();
      held.storeStartOffsets(Map.of(P0, 0L), epoch);

      own.stop();
      // Both calls start while the server is down: a batch's commit on the connection it held
      // before the outage, and a new batch (or a progress probe) opening the store.
      CompletableFuture<List<PartitionCommit>> commit =
          CompletableFuture.supplyAsync(
              () -> held.commitRanges(epoch, List.of(SourceRange.of("clicks", 0, 0, 10))));
      CompletableFuture<Map<TopicPartition, Long>> reopened =
          CompletableFuture.supplyAsync(
              () -> {
                try (OffsetStore store = sink.openOffsetStore()) {
                  return store.storedOffsets();
                }
              });
      Outage.lasting(Duration.ofSeconds(5), own.port());
      assertThat(commit).as("a commit cannot finish while the database is down").isNotDone();
      assertThat(reopened).as("nor can opening the store").isNotDone();

      own.restart();

      assertThat(commit.get(120, TimeUnit.SECONDS))
          .extracting(PartitionCommit::outcome)
          .containsExactly(CommitOutcome.COMMITTED);
      assertThat(reopened.get(120, TimeUnit.SECONDS)).containsKey(P0);
      assertThat(held.storedOffsets()).containsEntry(P0, 10L);
    } finally {
      held.close();
    }
  }
}
