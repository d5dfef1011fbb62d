package org.exactlyonce.spark.jdbc.internal;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection pool, and one {@link Jdbi} over it, per distinct {@link JdbcSettings} per JVM, so
 * that an executor reuses its connections across tasks and batches instead of connecting once per
 * partition. The {@code Jdbi} is kept as well because it holds the cache of parsed SQL: a new one
 * per commit parsed every statement again (ANTLR), most of the CPU of a range's bookkeeping.
 */
public final class Databases {
  private static final Logger LOG = LoggerFactory.getLogger(Databases.class);
  private static final Map<JdbcSettings, HikariDataSource> POOLS = new ConcurrentHashMap<>();
  private static final Map<JdbcSettings, Jdbi> JDBIS = new ConcurrentHashMap<>();

  static {
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(() -> POOLS.values().forEach(HikariDataSource::close), "jdbc-pools-close"));
  }

  private Databases() {}

  /** A Jdbi over this JVM's pool for {@code settings}. */
  public static Jdbi jdbi(JdbcSettings settings) {
    return JDBIS.computeIfAbsent(
        settings, s -> Jdbi.create(POOLS.computeIfAbsent(s, Databases::pool)));
  }

  private static HikariDataSource pool(JdbcSettings settings) {
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl(settings.url());
    config.setDataSourceProperties(settings.toProperties());
    int size = PoolSize.forThisJvm(settings.maxPoolSize());
    config.setMaximumPoolSize(size);
    LOG.info(
        "connection pool for {}: at most {} connections ({})",
        settings.url(),
        size,
        settings.maxPoolSize() > 0
            ? "maxPoolSize"
            : "one per task slot of this executor, plus one");
    config.setMinimumIdle(0);
    // The commit protocols rely on row locks under READ COMMITTED, whatever the server's default
    // (default_transaction_isolation); set once per connection, not per transaction.
    config.setTransactionIsolation("TRANSACTION_READ_COMMITTED");
    config.setPoolName("exactly-once-" + settings.url());
    // With a connection per task slot no task waits for another's connection, so this wait only
    // bounds reaching the database: fail a task quickly when it is down, and let Spark's retries
    // take over. It is not meant to outlast another task's partition; an explicit maxPoolSize below
    // the task slots gives that up (a warning says so).
    config.setConnectionTimeout(10_000);
    config.setInitializationFailTimeout(-1);
    return new HikariDataSource(config);
  }
}
