package org.exactlyonce.spark.jdbc.internal;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.jdbi.v3.core.Jdbi;

/**
 * One connection pool per distinct {@link JdbcSettings} per JVM, so that an executor reuses its
 * connections across tasks and batches instead of connecting once per partition.
 */
public final class Databases {
  private static final Map<JdbcSettings, HikariDataSource> POOLS = new ConcurrentHashMap<>();

  static {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(() -> POOLS.values().forEach(HikariDataSource::close), "jdbc-pools-close"));
  }

  private Databases() {}

  /** A Jdbi over this JVM's pool for {@code settings}. */
  public static Jdbi jdbi(JdbcSettings settings) {
    return Jdbi.create(POOLS.computeIfAbsent(settings, Databases::pool));
  }

  private static HikariDataSource pool(JdbcSettings settings) {
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl(settings.url());
    config.setDataSourceProperties(settings.toProperties());
    config.setMaximumPoolSize(settings.maxPoolSize());
    config.setMinimumIdle(0);
    config.setPoolName("exactly-once-" + settings.url());
    // Fail a task quickly when the database is down; Spark's retries then take over.
    config.setConnectionTimeout(10_000);
    config.setInitializationFailTimeout(-1);
    return new HikariDataSource(config);
  }
}
