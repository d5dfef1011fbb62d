package org.exactlyonce.spark.jdbc;

import java.io.Serializable;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.TreeMap;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.spi.Secrets;

/**
 * How to connect to the database: URL, user, password and driver properties (for example {@code
 * sslmode}, passed to the driver unchanged). Serialisable, so it travels to executors; a password
 * read from an environment variable is read where the connection is opened, so it never travels.
 * The password never appears in {@link #toString()}. Immutable: every method returns a copy.
 */
public final class JdbcSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  private final String url;
  private final String user;
  private final String password;
  private final String passwordEnv;
  private final TreeMap<String, String> properties;
  private final int maxPoolSize;
  private final Duration reconnectTimeout;

  /** The default of {@link #reconnectTimeout(Duration)}. */
  public static final Duration DEFAULT_RECONNECT_TIMEOUT = Duration.ofSeconds(60);

  private JdbcSettings(
      String url,
      String user,
      String password,
      String passwordEnv,
      TreeMap<String, String> properties,
      int maxPoolSize,
      Duration reconnectTimeout) {
    this.url = url;
    this.user = user;
    this.password = password;
    this.passwordEnv = passwordEnv;
    this.properties = properties;
    this.maxPoolSize = maxPoolSize;
    this.reconnectTimeout = reconnectTimeout;
  }

  /**
   * Settings for the JDBC {@code url}, for example {@code jdbc:postgresql://db:5432/ads}.
   *
   * @throws SinkConfigurationException if the URL is not a {@code jdbc:postgresql:} URL
   */
  public static JdbcSettings url(String url) {
    if (url == null || !url.startsWith("jdbc:postgresql:")) {
      throw new SinkConfigurationException(
          "JDBC url '"
              + (url == null ? null : withoutSecrets(url))
              + "' is not supported: use a PostgreSQL URL such as"
              + " jdbc:postgresql://host:5432/database");
    }
    return new JdbcSettings(url, null, null, null, new TreeMap<>(), 0, DEFAULT_RECONNECT_TIMEOUT);
  }

  /** These settings with another URL, checked like {@link #url(String)}. */
  JdbcSettings withUrl(String newUrl) {
    url(newUrl);
    return new JdbcSettings(
        newUrl, user, password, passwordEnv, properties, maxPoolSize, reconnectTimeout);
  }

  /** Connects as {@code user}. */
  public JdbcSettings user(String user) {
    return new JdbcSettings(
        url, user, password, passwordEnv, properties, maxPoolSize, reconnectTimeout);
  }

  /**
   * Uses {@code password}. Prefer {@link #passwordFromEnv(String)}: this one travels with tasks.
   */
  public JdbcSettings password(String password) {
    return new JdbcSettings(url, user, password, null, properties, maxPoolSize, reconnectTimeout);
  }

  /**
   * Reads the password from environment variable {@code name} wherever a connection is opened
   * (driver and executors), so it never travels with tasks.
   */
  public JdbcSettings passwordFromEnv(String name) {
    return new JdbcSettings(url, user, null, name, properties, maxPoolSize, reconnectTimeout);
  }

  /** Sets a driver property, for example {@code property("sslmode", "verify-full")}. */
  public JdbcSettings property(String key, String value) {
    TreeMap<String, String> p = new TreeMap<>(properties);
    p.put(key, value);
    return new JdbcSettings(url, user, password, passwordEnv, p, maxPoolSize, reconnectTimeout);
  }

  /**
   * The most connections one executor JVM keeps to this database. By default one per task slot of
   * the executor plus one, and at least 4: the executor's cores ({@code spark.executor.cores}, or
   * the threads of a {@code local[N]} master) divided by {@code spark.task.cpus}. A transactional
   * task holds its connection for its whole partition, so fewer connections than task slots make
   * tasks wait for each other's partitions, and fail after the pool's 10 s wait; a size set here is
   * used as given (with a warning when it is below the task slots).
   *
   * @throws SinkConfigurationException if {@code size} is below 1
   */
  public JdbcSettings maxPoolSize(int size) {
    if (size < 1) {
      throw new SinkConfigurationException("maxPoolSize must be at least 1, got " + size);
    }
    return new JdbcSettings(url, user, password, passwordEnv, properties, size, reconnectTimeout);
  }

  /**
   * How long the driver's bookkeeping (stored offsets, offset commits, a per-batch sink's
   * transaction) waits for a database that was reachable in this JVM and stopped answering (a
   * restart, a fail-over, a network blip): it reconnects with growing pauses until then, and
   * afterwards fails the batch with a {@link org.exactlyonce.spark.BackendUnavailableException}.
   * Default {@link #DEFAULT_RECONNECT_TIMEOUT}. A database that cannot be reached when the job
   * starts is a configuration error at once. Executors do not wait this long: their tasks fail and
   * Spark retries them.
   *
   * @throws SinkConfigurationException if {@code timeout} is null, zero or negative
   */
  public JdbcSettings reconnectTimeout(Duration timeout) {
    if (timeout == null || timeout.isZero() || timeout.isNegative()) {
      throw new SinkConfigurationException(
          "reconnectTimeout must be a positive duration (how long the driver waits for a database"
              + " that went away, default "
              + DEFAULT_RECONNECT_TIMEOUT
              + "), got "
              + timeout);
    }
    return new JdbcSettings(url, user, password, passwordEnv, properties, maxPoolSize, timeout);
  }

  /** See {@link #reconnectTimeout(Duration)}. */
  public Duration reconnectTimeout() {
    return reconnectTimeout;
  }

  /** The URL as given, parameters included: for connecting only, never for a log or message. */
  public String url() {
    return url;
  }

  /**
   * The URL without its parameters (query string) and without any user-info ({@code user:pw@}),
   * both of which may carry a password: what logs, messages, pool names and JMX show.
   */
  public String safeUrl() {
    return withoutSecrets(url);
  }

  private static String withoutSecrets(String url) {
    int query = url.indexOf('?');
    String s = query < 0 ? url : url.substring(0, query);
    int semicolon =
        s.indexOf(';'); // other drivers' parameter syntax (jdbc:sqlserver://h;password=)
    if (semicolon >= 0) {
      s = s.substring(0, semicolon);
    }
    int authority = s.indexOf("//");
    if (authority >= 0) {
      int end = s.indexOf('/', authority + 2);
      int at = s.lastIndexOf('@', end < 0 ? s.length() : end);
      if (at > authority) {
        s = s.substring(0, authority + 2) + s.substring(at + 1);
      }
    }
    return s;
  }

  public String user() {
    return user;
  }

  /** The environment variable the password is read from, or null if none was named. */
  public String passwordEnv() {
    return passwordEnv;
  }

  /** The pool size set with {@link #maxPoolSize(int)}, or 0 when it follows the task slots. */
  public int maxPoolSize() {
    return maxPoolSize;
  }

  /** The driver properties, password included (resolved now). */
  public Properties toProperties() {
    Properties p = new Properties();
    properties.forEach(p::setProperty);
    // Rewrites batched INSERTs into multi-row statements: several times faster, same semantics.
    p.putIfAbsent("reWriteBatchedInserts", "true");
    if (user != null) {
      p.setProperty("user", user);
    }
    String pw = resolvePassword();
    if (pw != null) {
      p.setProperty("password", pw);
    }
    return p;
  }

  private String resolvePassword() {
    return passwordEnv == null ? password : Secrets.fromEnv(passwordEnv, "the database password");
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof JdbcSettings)) {
      return false;
    }
    JdbcSettings s = (JdbcSettings) o;
    return url.equals(s.url)
        && Objects.equals(user, s.user)
        && Objects.equals(password, s.password)
        && Objects.equals(passwordEnv, s.passwordEnv)
        && properties.equals(s.properties)
        && maxPoolSize == s.maxPoolSize
        && reconnectTimeout.equals(s.reconnectTimeout);
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        url, user, password, passwordEnv, properties, maxPoolSize, reconnectTimeout);
  }

  /** The settings with the password masked. */
  @Override
  public String toString() {
    Map<String, String> shown = new TreeMap<>(properties);
    shown.replaceAll((k, v) -> k.toLowerCase().contains("password") ? "****" : v);
    return "JdbcSettings{url="
        + safeUrl()
        + (safeUrl().equals(url) ? "" : " (URL parameters not shown)")
        + ", user="
        + user
        + ", password="
        + (passwordEnv != null ? "from env " + passwordEnv : password != null ? "****" : "none")
        + ", properties="
        + shown
        + ", maxPoolSize="
        + (maxPoolSize > 0 ? String.valueOf(maxPoolSize) : "per task slot")
        + ", reconnectTimeout="
        + reconnectTimeout
        + "}";
  }
}
