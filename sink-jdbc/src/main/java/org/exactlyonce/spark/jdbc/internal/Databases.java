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
 *
 * <p>The driver's bookkeeping has a small pool of its own ({@link #driverJdbi}): it holds a
 * connection across a batch (a per-batch sink's transaction, an idempotent batch's offsets), and in
 * local mode must not take one of the connections sized for the task slots.
 */
public final class Databases {
  private static final Logger LOG = LoggerFactory.getLogger(Databases.class);
  private static final Map<JdbcSettings, HikariDataSource> POOLS = new ConcurrentHashMap<>();
  private static final Map<JdbcSettings, Jdbi> JDBIS = new ConcurrentHashMap<>();
  private static final Map<JdbcSettings, HikariDataSource> DRIVER_POOLS = new ConcurrentHashMap<>();
  private static final Map<JdbcSettings, Jdbi> DRIVER_JDBIS = new ConcurrentHashMap<>();

  /**
   * The most driver connections per database. The start keeps every sink's offset store open
   * through validation, epochs and start offsets, so a stream with several sinks on one database
   * holds one connection per sink at once (4 made the fifth sink's start fail); idle connections
   * close again (minimum idle 0).
   */
  private static final int DRIVER_POOL_SIZE = 32;

  static {
    // The executor pools only. The driver pools are left to the JVM's exit: shutdown hooks run in
    // parallel, and with spark.streaming.stopGracefullyOnShutdown the last batch's commit runs
    // during shutdown and must still find its pool open.
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

  /**
   * A Jdbi over this JVM's driver-side pool for {@code settings}, created with one connection: so a
   * database that cannot be reached fails here, and once the pool exists the database was reachable
   * from this JVM (a later connection failure is an outage, not a wrong URL).
   *
   * @throws RuntimeException (Hikari's {@code PoolInitializationException}, the driver's error as
   *     its cause) if the first connection fails; nothing is kept then, so the next call tries
   *     again
   */
  public static Jdbi driverJdbi(JdbcSettings settings) {
    return DRIVER_JDBIS.computeIfAbsent(
        settings, s -> Jdbi.create(DRIVER_POOLS.computeIfAbsent(s, Databases::driverPool)));
  }

  private static HikariDataSource driverPool(JdbcSettings settings) {
    HikariConfig config = config(settings, "exactly-once-driver-");
    config.setMaximumPoolSize(DRIVER_POOL_SIZE);
    // Short: JdbcOffsetStore waits for a database that went away in a loop of its own, bounded by
    // reconnectTimeout, and a wrong URL must not take long to report.
    config.setConnectionTimeout(2_000);
    // Open the first connection now and fail if it cannot be opened (see driverJdbi).
    config.setInitializationFailTimeout(1);
    return new HikariDataSource(config);
  }

  static HikariConfig config(JdbcSettings settings, String poolName) {
    HikariConfig config = new HikariConfig();
    // Not setJdbcUrl: Hikari's URL data source sets DriverManager's JVM-wide login timeout.
    config.setDataSource(new UrlDataSource(settings));
    config.setMinimumIdle(0);
    // An idle connection closes after a minute, not Hikari's ten: a batch every few seconds keeps
    // its connections, and a JVM that writes to many databases (or stopped writing to one) does
    // not hold the server's connection slots for nothing.
    config.setIdleTimeout(60_000);
    // The commit protocols rely on row locks under READ COMMITTED, whatever the server's default
    // (default_transaction_isolation); set once per connection, not per transaction. Under
    // REPEATABLE READ or SERIALIZABLE, two drivers' bookkeeping fails with serialization errors.
    config.setTransactionIsolation("TRANSACTION_READ_COMMITTED");
    config.setPoolName(poolName + settings.safeUrl());
    return config;
  }

  private static HikariDataSource pool(JdbcSettings settings) {
    HikariConfig config = config(settings, "exactly-once-");
    int size = PoolSize.forThisJvm(settings.maxPoolSize());
    config.setMaximumPoolSize(size);
    LOG.info(
        "connection pool for {}: at most {} connections ({})",
        settings.safeUrl(),
        size,
        settings.maxPoolSize() > 0
            ? "maxPoolSize"
            : "one per task slot of this executor, plus one");
    // With a connection per task slot no task waits for another's connection, so this wait only
    // bounds reaching the database: fail a task quickly when it is down, and let Spark's retries
    // take over. It is not meant to outlast another task's partition; an explicit maxPoolSize below
    // the task slots gives that up (a warning says so).
    config.setConnectionTimeout(10_000);
    config.setInitializationFailTimeout(-1);
    return new HikariDataSource(config);
  }
}
