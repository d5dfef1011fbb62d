package org.exactlyonce.spark.jdbc.internal;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.util.Properties;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.exactlyonce.spark.jdbc.JdbcSettings;

/**
 * Connections to a JDBC URL, with the login timeout kept here rather than in {@link DriverManager}.
 *
 * <p>Why not Hikari's own {@code jdbcUrl}: its URL data source passes the pool's login timeout to
 * {@link DriverManager#setLoginTimeout}, a setting of the whole JVM that every other JDBC
 * connection of the application opened through {@code DriverManager} then uses. The library must
 * not change settings that outlive its own stream. Here the timeout becomes the connection's own
 * {@code loginTimeout} property (PostgreSQL's driver reads it), unless the user's settings name
 * one.
 */
final class UrlDataSource implements DataSource {
  private final String url;
  private final String safeUrl;
  private final Properties properties;
  private volatile int loginTimeoutSeconds;
  private volatile PrintWriter logWriter;

  UrlDataSource(JdbcSettings settings) {
    this.url = settings.url();
    this.safeUrl = settings.safeUrl();
    this.properties = settings.toProperties();
  }

  @Override
  public Connection getConnection() throws SQLException {
    Properties p = new Properties();
    p.putAll(properties);
    if (loginTimeoutSeconds > 0) {
      p.putIfAbsent("loginTimeout", Integer.toString(loginTimeoutSeconds));
    }
    // Looked up per connection, as DriverManager.getConnection does: a driver registered later
    // (a jar added to the executor's class path) is found.
    Driver driver = DriverManager.getDriver(url);
    Connection c = driver.connect(url, p);
    if (c == null) {
      throw new SQLException("no JDBC driver accepts the URL " + safeUrl, "08001");
    }
    return c;
  }

  @Override
  public Connection getConnection(String user, String password) throws SQLException {
    throw new SQLFeatureNotSupportedException(
        "the user and password come from JdbcSettings, not from the pool");
  }

  @Override
  public int getLoginTimeout() {
    return loginTimeoutSeconds;
  }

  @Override
  public void setLoginTimeout(int seconds) {
    this.loginTimeoutSeconds = seconds;
  }

  @Override
  public PrintWriter getLogWriter() {
    return logWriter;
  }

  @Override
  public void setLogWriter(PrintWriter out) {
    this.logWriter = out;
  }

  @Override
  public Logger getParentLogger() throws SQLFeatureNotSupportedException {
    throw new SQLFeatureNotSupportedException("no java.util.logging parent logger");
  }

  @Override
  public <T> T unwrap(Class<T> type) throws SQLException {
    if (type.isInstance(this)) {
      return type.cast(this);
    }
    throw new SQLException("not a wrapper of " + type.getName());
  }

  @Override
  public boolean isWrapperFor(Class<?> type) {
    return type.isInstance(this);
  }
}
