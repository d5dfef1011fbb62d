package org.exactlyonce.spark.tests.backend;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.TestServers;
import org.junit.jupiter.api.Test;

class PostgresServerIT {

  @Test
  void answersSelectVersion() throws Exception {
    PostgresServer pg = TestServers.postgres();
    try (Connection c = DriverManager.getConnection(pg.createDatabase(), pg.user(), pg.password());
        ResultSet rs = c.createStatement().executeQuery("SELECT version()")) {
      assertThat(rs.next()).isTrue();
      assertThat(rs.getString(1)).startsWith("PostgreSQL 14");
    }
  }

  @Test
  void committedDataSurvivesKillNineAndRestartOnTheSameData() throws Exception {
    try (PostgresServer pg = PostgresServer.start(TestServers.newDir("pg-kill", false))) {
      String url = pg.jdbcUrl("postgres");
      try (Connection c = DriverManager.getConnection(url, pg.user(), "");
          Statement s = c.createStatement()) {
        s.execute("CREATE TABLE t (id int PRIMARY KEY)");
        s.execute("INSERT INTO t SELECT generate_series(1, 1000)");
      }
      long before = pg.pid();
      pg.kill();
      pg.restart();
      assertThat(pg.pid()).isNotEqualTo(before);
      try (Connection c = DriverManager.getConnection(url, pg.user(), "");
          ResultSet rs = c.createStatement().executeQuery("SELECT count(*), sum(id) FROM t")) {
        rs.next();
        assertThat(rs.getLong(1)).isEqualTo(1000);
        assertThat(rs.getLong(2)).isEqualTo(500_500);
      }
    }
  }
}
