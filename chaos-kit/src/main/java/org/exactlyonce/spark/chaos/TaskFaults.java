package org.exactlyonce.spark.chaos;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * Task failures at chosen points of the commit protocol, inside executor JVMs: the library's fault
 * points read these system properties when a JVM loads them. Add {@link #javaOptions()} to the
 * job's {@code spark.executor.extraJavaOptions} (and to the driver's command line for driver-side
 * points). Whether a task attempt fails at a point is a function of the seed, the point, and the
 * task's stage, partition and attempt, so a seed replays the same failures; only the first {@code
 * attempts} attempts of a task can fail, so Spark's retries finish the batch. A rate of 1 fails
 * every one of those attempts, by design rather than by chance ({@link #firstAttemptAt}).
 *
 * @param points where tasks fail
 * @param rate probability that a task attempt fails at each point, above 0 and at most 1
 * @param seed the seed
 * @param attempts attempts 0 to {@code attempts - 1} of a task may fail
 */
public record TaskFaults(List<Point> points, double rate, long seed, int attempts) {

  /** Points of the commit protocol where a task can be made to fail. */
  public enum Point {
    /** Before the sink is called for the task's range: nothing written yet. */
    BEFORE_WRITE("task.before-write"),
    /** Once half of the range has been handed to the sink: outputs half-written. */
    MID_WRITE("task.mid-write"),
    /** Every output written, before the sink's transaction commits. */
    BEFORE_COMMIT("task.before-commit"),
    /** The sink committed; the task has not yet reported success to the driver. */
    AFTER_COMMIT("task.after-commit");

    private final String id;

    Point(String id) {
      this.id = id;
    }

    /** The name the library's fault points use. */
    public String id() {
      return id;
    }
  }

  public TaskFaults {
    points = List.copyOf(Objects.requireNonNull(points, "points"));
    if (points.isEmpty()) {
      throw new IllegalArgumentException("TaskFaults: name at least one point");
    }
    if (!(rate > 0 && rate <= 1)) {
      throw new IllegalArgumentException(
          "TaskFaults rate "
              + rate
              + ": must be between 0 and 1 (0 excluded; 1 fails every attempt below attempts),"
              + " e.g. 0.05");
    }
    if (attempts < 1) {
      throw new IllegalArgumentException(
          "TaskFaults attempts "
              + attempts
              + ": must be at least 1, and below spark.task.maxFailures");
    }
  }

  /** Every point, at {@code rate}, attempts 0 and 1. */
  public static TaskFaults everywhere(double rate, long seed) {
    return new TaskFaults(List.of(Point.values()), rate, seed, 2);
  }

  /**
   * Fails attempt 0 of every task that reaches {@code point}, and never a retry: a fault that fires
   * every time, not by luck. For a negative control (a writer that must be seen to duplicate when a
   * task fails between its write and its commit) or a test of one point of the protocol.
   */
  public static TaskFaults firstAttemptAt(Point point) {
    return new TaskFaults(List.of(point), 1.0, 0, 1);
  }

  /** The JVM options that switch these faults on, space-separated. */
  public String javaOptions() {
    List<String> ids = new ArrayList<>();
    points.forEach(p -> ids.add(p.id()));
    return String.format(
        Locale.ROOT,
        "-Dexactlyonce.chaos.points=%s -Dexactlyonce.chaos.rate=%s -Dexactlyonce.chaos.seed=%d"
            + " -Dexactlyonce.chaos.attempts=%d",
        String.join(",", ids),
        Double.toString(rate),
        seed,
        attempts);
  }

  /** The message of an injected failure at {@code point}, as it appears in Spark's logs. */
  public static String marker(Point point) {
    return "injected chaos fault at " + point.id();
  }
}
