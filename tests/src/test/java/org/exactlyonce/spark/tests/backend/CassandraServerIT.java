package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.exactlyonce.spark.tests.support.CassandraTestSupport;
import org.junit.jupiter.api.Test;

class CassandraServerIT {

  private static CqlSession connect(CassandraServer c) {
    return CassandraTestSupport.session(c);
  }

  @Test
  void acknowledgedWritesSurviveKillNineAndRestart() {
    CassandraServer cassandra = TestServers.cassandra();
    try (CqlSession s = connect(cassandra)) {
      assertThat(s.execute("SELECT release_version FROM system.local").one().getString(0))
          .startsWith("5.0");
      s.execute(
          "CREATE KEYSPACE IF NOT EXISTS smoke WITH replication ="
              + " {'class': 'SimpleStrategy', 'replication_factor': 1}");
      s.execute("CREATE TABLE IF NOT EXISTS smoke.t (id int PRIMARY KEY, v text)");
      PreparedStatement insert = s.prepare("INSERT INTO smoke.t (id, v) VALUES (?, ?)");
      for (int i = 0; i < 500; i++) {
        s.execute(insert.bind(i, "v" + i));
      }
    }
    cassandra.kill();
    cassandra.restart();
    try (CqlSession s = connect(cassandra)) {
      long n = 0;
      for (var row : s.execute("SELECT id, v FROM smoke.t")) {
        assertThat(row.getString("v")).isEqualTo("v" + row.getInt("id"));
        n++;
      }
      assertThat(n).as("acknowledged rows after kill -9").isEqualTo(500);
    }
  }
}
