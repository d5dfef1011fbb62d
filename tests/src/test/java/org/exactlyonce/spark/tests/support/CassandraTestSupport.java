package org.exactlyonce.spark.tests.support;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.CqlSessionBuilder;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import com.datastax.oss.driver.api.core.cql.Row;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import org.exactlyonce.spark.testing.servers.CassandraServer;

/**
 * The tests' own CQL sessions (setup, DDL, reading the whole output), with timeouts for a loaded
 * 2-core machine: the driver's defaults (2 s per request, 10 s for schema agreement) were seen to
 * fail a test's setup with {@code DriverTimeoutException} while Spark executors and a restarting
 * Cassandra shared the cores. A test that waits longer than these fails on its own deadline.
 *
 * <p>Public for the contract tests' fixtures, in a package of their own.
 */
public final class CassandraTestSupport {
  /** One request, DDL included. */
  static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);

  /** Connecting, the control connection, and the driver's metadata queries. */
  static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(30);

  private CassandraTestSupport() {}

  /** A session to {@code cassandra} with generous timeouts; close it. */
  public static CqlSession session(CassandraServer cassandra) {
    return builder(cassandra).build();
  }

  /** A session as {@code user}; close it. */
  public static CqlSession session(CassandraServer cassandra, String user, String password) {
    return builder(cassandra).withAuthCredentials(user, password).build();
  }

  /** Runs one statement on a session of its own and returns every row. */
  public static List<Row> cql(CassandraServer cassandra, String statement) {
    try (CqlSession s = session(cassandra)) {
      return s.execute(statement).all();
    }
  }

  private static CqlSessionBuilder builder(CassandraServer cassandra) {
    return CqlSession.builder()
        .addContactPoint(new InetSocketAddress(cassandra.host(), cassandra.nativePort()))
        .withLocalDatacenter(cassandra.localDatacenter())
        .withConfigLoader(
            DriverConfigLoader.programmaticBuilder()
                .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, REQUEST_TIMEOUT)
                .withDuration(DefaultDriverOption.CONNECTION_CONNECT_TIMEOUT, CONNECT_TIMEOUT)
                .withDuration(DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT, CONNECT_TIMEOUT)
                .withDuration(DefaultDriverOption.CONNECTION_SET_KEYSPACE_TIMEOUT, CONNECT_TIMEOUT)
                .withDuration(DefaultDriverOption.CONTROL_CONNECTION_TIMEOUT, CONNECT_TIMEOUT)
                .withDuration(DefaultDriverOption.METADATA_SCHEMA_REQUEST_TIMEOUT, CONNECT_TIMEOUT)
                // A DDL statement returns once every node agrees on the schema, so the next
                // statement sees the new table; wait for that as long as for the request.
                .withDuration(
                    DefaultDriverOption.CONTROL_CONNECTION_AGREEMENT_TIMEOUT, REQUEST_TIMEOUT)
                // A DDL statement also waits for the driver's schema refresh, which by default
                // gathers the schema changes of one second first: a second per table a test
                // creates. The tests create their tables one at a time, so refresh at once.
                .withDuration(DefaultDriverOption.METADATA_SCHEMA_WINDOW, Duration.ZERO)
                .build());
  }
}
