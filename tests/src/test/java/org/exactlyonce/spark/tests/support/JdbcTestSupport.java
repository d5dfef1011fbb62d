package org.exactlyonce.spark.tests.support;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.internal.MappedPartition;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.spi.PartitionOutputs;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;

/** A fresh database per test, plus readers of the whole output. */
public final class JdbcTestSupport {
  /** One output row: the input's id and the source position it came from. */
  public record Out(String id, String topic, int partition, long offset) implements Serializable {}

  public final String url;
  public final JdbcSettings settings;

  public JdbcTestSupport() {
    PostgresServer pg = TestServers.postgres();
    this.url = pg.createDatabase();
    this.settings = JdbcSettings.url(url).user(pg.user()).password(pg.password());
    // No unique key on purpose: a duplicate write must show up as a second row.
    execute(
        "CREATE TABLE out (id text NOT NULL, topic text NOT NULL, kafka_partition int NOT NULL,"
            + " src_offset bigint NOT NULL)");
  }

  public void execute(String sql) {
    try (Connection c = connect();
        Statement s = c.createStatement()) {
      s.execute(sql);
    } catch (SQLException e) {
      throw new IllegalStateException(sql, e);
    }
  }

  public Connection connect() throws SQLException {
    return DriverManager.getConnection(url, settings.toProperties());
  }

  /** Every id in the output table, duplicates included. */
  public List<String> allIds() {
    return allIds("out");
  }

  /** Every id in {@code table}, duplicates included. */
  public List<String> allIds(String table) {
    List<String> ids = new ArrayList<>();
    try (Connection c = connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT id FROM " + table)) {
      while (rs.next()) {
        ids.add(rs.getString(1));
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return ids;
  }

  public long count() {
    return allIds().size();
  }

  /** Rows of {@code table}. */
  public long count(String table) {
    try (Connection c = connect();
        ResultSet rs = c.createStatement().executeQuery("SELECT count(*) FROM " + table)) {
      rs.next();
      return rs.getLong(1);
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The stored offsets of {@code pipeline}. */
  public Map<TopicPartition, Long> stored(String pipeline) {
    Map<TopicPartition, Long> out = new HashMap<>();
    try (Connection c = connect();
        ResultSet rs =
            c.createStatement()
                .executeQuery(
                    "SELECT topic, kafka_partition, until_offset FROM eos_offsets WHERE pipeline_id = '"
                        + pipeline
                        + "'")) {
      while (rs.next()) {
        out.put(new TopicPartition(rs.getString(1), rs.getInt(2)), rs.getLong(3));
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
    return out;
  }

  /** Records {@code "id-<offset>"} at offsets [from, until) of topic-partition. */
  public static List<ConsumerRecord<String, String>> records(
      String topic, int partition, long from, long until) {
    List<ConsumerRecord<String, String>> out = new ArrayList<>();
    for (long o = from; o < until; o++) {
      out.add(
          new ConsumerRecord<>(topic, partition, o, "k" + o, topic + "-" + partition + "-" + o));
    }
    return out;
  }

  /** The outputs of range [from, until), mapped as the job would. */
  public static PartitionOutputs<Out> outputs(String topic, int partition, long from, long until) {
    return new MappedPartition<String, String, Out>(
        records(topic, partition, from, until).iterator(),
        r -> List.of(new Out(r.value(), r.topic(), r.partition(), r.offset())),
        SourceRange.of(topic, partition, from, until));
  }

  public static List<?> values(Out o) {
    return List.of(o.id(), o.topic(), o.partition(), o.offset());
  }
}
