package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.jdbc.JdbcIdempotentSink;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Strategy I on PostgreSQL: upserts under deterministic keys, offsets after the batch. */
class IdempotentJdbcSinkIT {
  /** A profile update: the newest name of a user wins. */
  record Profile(String user, String name, long eventTime) implements java.io.Serializable {}

  private JdbcTestSupport db;

  @BeforeEach
  void setUp() {
    db = new JdbcTestSupport();
    db.execute(
        "CREATE TABLE profiles (user_id text PRIMARY KEY, name text NOT NULL, version bigint NOT NULL)");
  }

  @AfterEach
  void tearDown() {
    FaultPoints.clear();
  }

  private String nameOf(String user) {
    try (var c = db.connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery("SELECT name FROM profiles WHERE user_id = '" + user + "'")) {
      return rs.next() ? rs.getString(1) : null;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Writes the record at {@code offset} of partition 0 (user u1, the given name) through the sink.
   */
  private static void write(
      JdbcIdempotentSink<Profile> sink, long offset, String name, long eventTime) {
    ConsumerRecord<String, String> r = new ConsumerRecord<>("profiles", 0, offset, "u1", name);
    sink.write(
        SourceRange.of("profiles", 0, offset, offset + 1),
        offset,
        new MappedPartition<String, String, Profile>(
            List.of(r).iterator(),
            rec -> List.of(new Profile(rec.key(), rec.value(), eventTime)),
            SourceRange.of("profiles", 0, offset, offset + 1)));
  }

  private JdbcIdempotentSink.Builder<Profile> profiles() {
    return JdbcSink.<Profile>idempotent("profiles")
        .connection(db.settings)
        .table("profiles")
        .columns("user_id", "name")
        .values(p -> List.of(p.user(), p.name()))
        .upsertOn("user_id");
  }

  @Test
  void anUpsertReplayedWithOlderDataLeavesTheNewerValue() {
    JdbcIdempotentSink<Profile> sink = profiles().versionFromSourceOffset("version").build();
    validate(sink);

    write(sink, 7, "newer", 0);
    write(sink, 3, "older", 0); // a replay of an earlier range arrives late
    write(sink, 7, "newer", 0); // and the same range again

    assertThat(nameOf("u1")).isEqualTo("newer");
    assertThat(db.count("profiles")).isEqualTo(1);
  }

  @Test
  void anEventTimeVersionKeepsTheLatestEventWhateverTheOffsetOrder() {
    JdbcIdempotentSink<Profile> sink =
        profiles().versionFrom("version", Profile::eventTime).build();
    validate(sink);

    write(sink, 1, "at-2000", 2000);
    write(sink, 2, "at-1000", 1000); // later offset, older event (another partition's key)

    assertThat(nameOf("u1")).isEqualTo("at-2000");
  }

  @Test
  void aTableWithoutAUniqueIndexOnTheKeyIsRefusedBeforeTheStreamStarts() {
    db.execute("CREATE TABLE loose (user_id text, name text, version bigint)");
    JdbcIdempotentSink<Profile> sink =
        JdbcSink.<Profile>idempotent("loose")
            .connection(db.settings)
            .table("loose")
            .columns("user_id", "name")
            .values(p -> List.of(p.user(), p.name()))
            .upsertOn("user_id")
            .versionFromSourceOffset("version")
            .build();
    assertThatThrownBy(() -> validate(sink))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("no unique index on exactly [user_id]")
        .hasMessageContaining("CREATE UNIQUE INDEX ON loose (user_id)");
  }

  private static void validate(JdbcIdempotentSink<?> sink) {
    try (OffsetStore store = sink.openOffsetStore()) {
      store.validate();
    }
  }

  @Test
  void everyRecordIsWrittenOnceWhenTheDriverFailsBetweenWritingAndCommittingOffsets() {
    db.execute(
        "CREATE TABLE events (id text NOT NULL, src_topic text, src_partition int, src_offset bigint,"
            + " src_index int, UNIQUE (src_topic, src_partition, src_offset, src_index))");
    try (StreamHarness h = new StreamHarness("events", 4)) {
      JdbcIdempotentSink<String> sink =
          JdbcSink.<String>idempotent("events-to-postgres")
              .connection(db.settings)
              .table("events")
              .columns("id")
              .values(List::of)
              .keyedBySourcePosition("src_topic", "src_partition", "src_offset", "src_index")
              .build();
      List<String> ids = new ArrayList<>();
      List<String[]> kv = new ArrayList<>();
      for (int i = 0; i < 2000; i++) {
        ids.add("event-" + i);
        kv.add(new String[] {"k" + i, "event-" + i});
      }
      h.send(kv);

      AtomicBoolean fired =
          FaultPoints.failOnce(
              FaultPoints.IDEMPOTENT_BEFORE_OFFSET_COMMIT, "driver lost after the writes");
      Map<TopicPartition, Long> end = h.endOffsets();
      Throwable failure =
          h.run(
              sink,
              s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
              () -> db.stored("events-to-postgres").equals(end));
      assertThat(failure).hasMessageContaining("injected");
      long writtenBeforeRestart = db.count("events");
      assertThat(writtenBeforeRestart).as("the failed batch did write").isPositive();

      FaultPoints.clear();
      assertThat(
              h.run(
                  sink,
                  s -> ExactlyOnce.foreachRDD(s, r -> List.of(r.value()), sink),
                  () -> db.stored("events-to-postgres").equals(end)))
          .isNull();

      List<String> written = new ArrayList<>();
      try (var c = db.connect();
          ResultSet rs = c.createStatement().executeQuery("SELECT id FROM events")) {
        while (rs.next()) {
          written.add(rs.getString(1));
        }
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
      assertThat(written)
          .hasSize(2000)
          .doesNotHaveDuplicates()
          .containsExactlyInAnyOrderElementsOf(ids);
    }
  }
}
