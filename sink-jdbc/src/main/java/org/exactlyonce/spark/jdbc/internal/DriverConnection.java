package org.exactlyonce.spark.jdbc.internal;

import java.io.EOFException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Set;
import org.exactlyonce.spark.BackendUnavailableException;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.HandleCallback;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One driver-side connection from {@link Databases#driverJdbi}, at READ COMMITTED, that outlasts a
 * short outage: an operation that fails because the connection was lost (SQLState class 08, a
 * server shutting down or starting up, a refused or reset socket) is run again on a new connection,
 * with growing pauses, for at most {@link JdbcSettings#reconnectTimeout()}; then it fails with a
 * {@link BackendUnavailableException}. Only operations that may run twice go through {@link #call}:
 * the offset commits are compare-and-sets, so one whose COMMIT was lost with the connection finds
 * its ranges {@code ALREADY_COMMITTED} the second time. Not thread-safe, like the store.
 */
final class DriverConnection implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(DriverConnection.class);

  /** Server shutting down ({@code admin_shutdown}, {@code crash_shutdown}) or starting up. */
  private static final Set<String> LOST_STATES = Set.of("57P01", "57P02", "57P03");

  private static final long FIRST_PAUSE_MILLIS = 100;
  private static final long LONGEST_PAUSE_MILLIS = 5_000;

  private final JdbcSettings settings;
  private final Jdbi jdbi;
  private Handle handle;

  /**
   * Opens a connection. A database that was never reached from this JVM, or that refuses these
   * settings, is a configuration error; one that was reached and went away is waited for.
   *
   * @throws SinkConfigurationException if the database cannot be reached with these settings
   * @throws BackendUnavailableException if it was reachable and stays away past the wait
   */
  DriverConnection(JdbcSettings settings) {
    this.settings = settings;
    try {
      this.jdbi = Databases.driverJdbi(settings);
    } catch (RuntimeException e) {
      throw cannotConnect(e);
    }
    Handle opened;
    try {
      opened = jdbi.open();
    } catch (RuntimeException e) {
      if (!isConnectionLost(e)) {
        throw cannotConnect(e);
      }
      opened = reopen(deadlineFrom(e), e);
    }
    this.handle = opened;
  }

  private SinkConfigurationException cannotConnect(RuntimeException e) {
    return new SinkConfigurationException(
        "cannot connect to the database with "
            + settings
            + ": "
            + JdbcOffsetStore.rootMessage(e)
            + ". Check the URL, user, password and that the server is up",
        e);
  }

  /** The open connection; see {@link #call} for work that must survive an outage. */
  Handle handle() {
    return handle;
  }

  /**
   * Runs {@code work} on the connection; if the connection is lost, runs it again on a new one
   * until {@link JdbcSettings#reconnectTimeout()} has passed since the first loss. {@code work}
   * must be safe to run again after a failure whose outcome is unknown (a lost COMMIT).
   *
   * @throws BackendUnavailableException if the database stays unreachable past the wait
   */
  <T, X extends Exception> T call(HandleCallback<T, X> work) throws X {
    long deadline = 0;
    while (true) {
      try {
        return work.withHandle(handle);
      } catch (RuntimeException e) {
        if (!isConnectionLost(e)) {
          throw e;
        }
        if (deadline == 0) {
          deadline = deadlineFrom(e);
        }
        closeQuietly();
        handle = reopen(deadline, e);
      }
    }
  }

  private long deadlineFrom(Throwable first) {
    LOG.warn(
        "lost the connection to {} ({}); reconnecting for up to {}",
        settings.safeUrl(),
        JdbcOffsetStore.rootMessage(first),
        settings.reconnectTimeout());
    return System.nanoTime() + settings.reconnectTimeout().toNanos();
  }

  private Handle reopen(long deadline, RuntimeException first) {
    RuntimeException last = first;
    long pause = FIRST_PAUSE_MILLIS;
    while (true) {
      long left = Duration.ofNanos(deadline - System.nanoTime()).toMillis();
      if (left <= 0) {
        throw unreachable(last);
      }
      try {
        Thread.sleep(Math.min(pause, left));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        ExactlyOnceException stopped =
            new ExactlyOnceException(
                "interrupted while waiting for the database at " + settings.safeUrl(), e);
        stopped.addSuppressed(last);
        throw stopped;
      }
      pause = Math.min(pause * 2, LONGEST_PAUSE_MILLIS);
      try {
        Handle h = jdbi.open();
        LOG.info("reconnected to {}", settings.safeUrl());
        return h;
      } catch (RuntimeException e) {
        if (!isConnectionLost(e)) {
          throw e;
        }
        last = e;
      }
    }
  }

  private BackendUnavailableException unreachable(RuntimeException last) {
    return new BackendUnavailableException(
        "the database at "
            + settings.safeUrl()
            + " is unreachable: it answered before, but no connection succeeded for "
            + settings.reconnectTimeout()
            + " ("
            + JdbcOffsetStore.rootMessage(last)
            + "). The batch fails and nothing past the stored offsets is committed; restart the"
            + " job once the database is back (it resumes from the stored offsets), or raise"
            + " JdbcSettings.reconnectTimeout(...) to ride out longer outages",
        last);
  }

  /** Whether {@code e} says the connection to the server was lost or could not be opened. */
  static boolean isConnectionLost(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
      if (t instanceof SQLException sql && sql.getSQLState() != null) {
        String state = sql.getSQLState();
        if (state.startsWith("08") || LOST_STATES.contains(state)) {
          return true;
        }
      }
      if (t instanceof ConnectException
          || t instanceof NoRouteToHostException
          || t instanceof SocketTimeoutException
          || t instanceof SocketException
          || t instanceof EOFException) {
        return true;
      }
    }
    return false;
  }

  private void closeQuietly() {
    try {
      handle.close();
    } catch (RuntimeException e) {
      // The connection is gone: its rollback or close fails, and the pool evicts it.
    }
  }

  @Override
  public void close() {
    if (!handle.isClosed()) {
      handle.close();
    }
  }
}
