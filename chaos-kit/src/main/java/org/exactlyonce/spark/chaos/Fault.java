package org.exactlyonce.spark.chaos;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongSupplier;

/**
 * One kind of fault a {@link ChaosRun} can fire. The built-in ones act on the job's JVMs; anything
 * else (restarting a database on the same data, dropping its connections, partitioning a network)
 * is a named action of the user's, made with {@link #of}.
 */
public interface Fault {
  /** Shown in the schedule and counted in the report. */
  String name();

  /**
   * Fires once, and returns once it has happened.
   *
   * @throws NotFired when its target was not there to be hit (the run records it as not fired, with
   *     the reason, in {@link ChaosReport#faults()})
   * @throws Exception anything else fails the run (a fault that cannot fire proves nothing)
   */
  void fire(ChaosContext context) throws Exception;

  /**
   * Thrown by a fault whose target was gone when it fired (an executor that had already exited, a
   * driver that had already stopped): nothing was hit, and the report says so rather than counting
   * it.
   */
  final class NotFired extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** {@code why} names the target and what had become of it. */
    public NotFired(String why) {
      super(why);
    }
  }

  /**
   * What a user's fault does. Returning normally means it fired (for a server restart: it was
   * stopped and came back, so the action should wait for both); throw {@link NotFired} when its
   * target was not there.
   */
  @FunctionalInterface
  interface Action {
    void fire(ChaosContext context) throws Exception;
  }

  /** A fault named {@code name} that runs {@code action}. */
  static Fault of(String name, Action action) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(action, "action");
    return new Fault() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public void fire(ChaosContext context) throws Exception {
        action.fire(context);
      }

      @Override
      public String toString() {
        return name;
      }
    };
  }

  /**
   * SIGKILL of one executor JVM (chosen with the run's random), once a write is in flight (see
   * {@link ChaosRun.Builder#midWrite}); it fired once that JVM has exited, and did not (a {@link
   * NotFired}) if it had already exited when the signal was sent. Needs executors in their own
   * JVMs: Spark's {@code local-cluster[n, cores, memory]} master or a real cluster manager on this
   * machine. Waits up to 30 s for an executor JVM (a driver just started has none yet).
   */
  static Fault killExecutor() {
    return killExecutor(Duration.ofSeconds(30));
  }

  /** {@link #killExecutor()}, waiting at most {@code wait} for an executor JVM to appear. */
  static Fault killExecutor(Duration wait) {
    return of(
        "kill-executor",
        context -> {
          context.awaitMidWrite();
          long deadline = System.nanoTime() + wait.toNanos();
          List<ProcessHandle> executors = context.executors();
          while (executors.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(100);
            executors = context.executors();
          }
          if (executors.isEmpty()) {
            throw new IllegalStateException(
                "kill-executor: the driver has no executor JVM (CoarseGrainedExecutorBackend)"
                    + " among its descendants after "
                    + wait
                    + "; run the job with master local-cluster[2,1,1024] or drop this fault");
          }
          ProcessHandle target = executors.get(context.random().nextInt(executors.size()));
          // false: no live process with that pid and start time, so the kill hit nothing.
          if (!target.destroyForcibly()) {
            throw new NotFired(
                "kill-executor: executor JVM pid " + target.pid() + " had already exited");
          }
          try {
            target.onExit().get(wait.toMillis(), TimeUnit.MILLISECONDS);
          } catch (TimeoutException e) {
            throw new IllegalStateException(
                "kill-executor: executor JVM pid "
                    + target.pid()
                    + " still runs "
                    + wait
                    + " after SIGKILL",
                e);
          }
        });
  }

  /**
   * SIGKILL of the driver JVM once a write is in flight, then the same command again, as a cluster
   * manager restarting a failed driver would. It fired if the driver was alive and exited by that
   * signal; see {@link ChaosContext#restartDriver}.
   */
  static Fault killDriver() {
    return of(
        "kill-driver",
        context -> {
          context.awaitMidWrite();
          context.restartDriver();
        });
  }

  /**
   * A rolling deploy: once a write is in flight, a second driver with the same command starts while
   * the current one still runs, and takes the pipeline over. The old driver then has {@code within}
   * to stop by itself, fenced at its next commit by the new one's writer epoch (the commit the old
   * instance attempts after the new one started is the point of the fault); if it still runs, it is
   * asked to stop with SIGTERM, as a deployer stops the old instance. {@code takeovers} must grow
   * when a driver takes the pipeline over, for example the pipeline's writer epoch; it may throw
   * while its server is away (it is asked again). It fired if the old driver was alive when the new
   * one started; the run fails if the new driver did not take over within {@code within}, or the
   * old one did not stop within it after SIGTERM.
   */
  static Fault rollingDeploy(LongSupplier takeovers, Duration within) {
    Objects.requireNonNull(takeovers, "takeovers");
    Objects.requireNonNull(within, "within");
    return of(
        "rolling-deploy",
        context -> {
          context.awaitMidWrite();
          long before = ask(takeovers, within, "read before the deploy");
          Process old;
          try {
            old = context.startSecondDriver();
          } catch (NotFired e) {
            throw new NotFired("rolling-deploy: " + e.getMessage());
          }
          long deadline = System.nanoTime() + within.toNanos();
          while (true) {
            try {
              if (takeovers.getAsLong() > before) {
                break;
              }
            } catch (RuntimeException e) {
              // its server is restarting: ask again until the deadline
            }
            if (System.nanoTime() > deadline) {
              throw new IllegalStateException(
                  "rolling-deploy: the new driver did not take the pipeline over within "
                      + within
                      + " (still "
                      + before
                      + ")");
            }
            Thread.sleep(100);
          }
          // Fenced at its next commit, the old driver stops by itself; a deployer that waits no
          // longer would send SIGTERM now, and then no stale commit is ever attempted.
          if (!old.waitFor(within.toMillis(), TimeUnit.MILLISECONDS)) {
            old.destroy();
            if (!old.waitFor(within.toMillis(), TimeUnit.MILLISECONDS)) {
              throw new IllegalStateException(
                  "rolling-deploy: the old driver JVM pid "
                      + old.pid()
                      + " still runs "
                      + within
                      + " after SIGTERM");
            }
          }
        });
  }

  /** {@code value}, asked again while it throws (its server restarting), at most {@code within}. */
  private static long ask(LongSupplier value, Duration within, String what)
      throws InterruptedException {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      try {
        return value.getAsLong();
      } catch (RuntimeException e) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(what + ": still failing after " + within, e);
        }
        Thread.sleep(100);
      }
    }
  }
}
