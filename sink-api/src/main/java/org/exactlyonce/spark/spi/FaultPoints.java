package org.exactlyonce.spark.spi;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Named points in the commit protocols where tests inject failures (for example between writing
 * outputs and committing offsets). With nothing registered, {@link #reach} is one map lookup.
 * Effective in the JVM that registered the action only.
 *
 * <p>Chaos runs reach executor JVMs through system properties (set with {@code
 * spark.executor.extraJavaOptions}; the chaos kit builds them): {@value #POINTS_PROPERTY} names the
 * points, {@value #RATE_PROPERTY} the probability that a task attempt fails there (default 0.05),
 * {@value #SEED_PROPERTY} the seed, and {@value #ATTEMPTS_PROPERTY} the task attempts that may fail
 * (default 2: attempts 0 and 1, so that a retry finishes). Whether an attempt fails is a function
 * of the seed, the point and the task (its range, or its stage outside ranges, its partition and
 * attempt), so a seed replays its failures. A warning is logged when they are active; they are
 * never for production.
 */
public final class FaultPoints {
  /** In a task, before the sink is called for its range. */
  public static final String TASK_BEFORE_WRITE = "task.before-write";

  /** In a task, once half of its range has been handed to the sink (outputs half-written). */
  public static final String TASK_MID_WRITE = "task.mid-write";

  /** In a task, after every output is written, before the sink's transaction commits. */
  public static final String TASK_BEFORE_COMMIT = "task.before-commit";

  /** In a task, after the sink committed, before the task reports success to the driver. */
  public static final String TASK_AFTER_COMMIT = "task.after-commit";

  public static final String POINTS_PROPERTY = "exactlyonce.chaos.points";
  public static final String RATE_PROPERTY = "exactlyonce.chaos.rate";
  public static final String SEED_PROPERTY = "exactlyonce.chaos.seed";
  public static final String ATTEMPTS_PROPERTY = "exactlyonce.chaos.attempts";

  /** On the driver, after the executors wrote a batch's outputs, before its offsets commit. */
  public static final String IDEMPOTENT_BEFORE_OFFSET_COMMIT = "idempotent.before-offset-commit";

  /** On the driver, after a per-batch sink staged its results, before it publishes them. */
  public static final String BATCH_BEFORE_PUBLISH = "batch.before-publish";

  /** Inside a per-batch transaction, after the results were written, before the commit. */
  public static final String BATCH_BEFORE_COMMIT = "batch.before-commit";

  private static final Map<String, Runnable> ACTIONS = new ConcurrentHashMap<>();

  /** The range the current task writes, for seeded failures (see {@link #inRange}). */
  private static final ThreadLocal<String> RANGE = new ThreadLocal<>();

  static {
    String points = System.getProperty(POINTS_PROPERTY, "").trim();
    if (!points.isEmpty()) {
      double rate = Double.parseDouble(System.getProperty(RATE_PROPERTY, "0.05"));
      long seed = Long.getLong(SEED_PROPERTY, 0L);
      int attempts = Integer.getInteger(ATTEMPTS_PROPERTY, 2);
      for (String point : points.split(",")) {
        String name = point.trim();
        set(name, new SeededFailure(name, rate, seed, attempts));
      }
      org.slf4j.LoggerFactory.getLogger(FaultPoints.class)
          .warn(
              "chaos fault points active in this JVM: {} (rate {}, seed {}); tasks will fail on"
                  + " purpose. Remove -D{} outside chaos runs.",
              points,
              rate,
              seed,
              POINTS_PROPERTY);
    }
  }

  private FaultPoints() {}

  /** Fails a task attempt at a point when a hash of (seed, point, task) falls under the rate. */
  private static final class SeededFailure implements Runnable {
    private final String point;
    private final double rate;
    private final long seed;
    private final int attempts;
    private final java.util.concurrent.atomic.AtomicLong outsideTasks =
        new java.util.concurrent.atomic.AtomicLong();

    SeededFailure(String point, double rate, long seed, int attempts) {
      this.point = point;
      this.rate = rate;
      this.seed = seed;
      this.attempts = attempts;
    }

    @Override
    public void run() {
      org.apache.spark.TaskContext task = org.apache.spark.TaskContext.get();
      long h = mix(seed ^ point.hashCode());
      if (task != null) {
        if (task.attemptNumber() >= attempts) {
          return;
        }
        // The range, not the stage: stage ids start again with every driver, ranges are the
        // same on a replay, so a seed fails the same ranges at the same attempts.
        String range = RANGE.get();
        h = mix(h ^ (range != null ? range.hashCode() : task.stageId()));
        h = mix(h ^ task.partitionId());
        h = mix(h ^ task.attemptNumber());
      } else {
        h = mix(h ^ outsideTasks.incrementAndGet());
      }
      // The top 53 bits as a uniform double in [0, 1).
      if ((h >>> 11) * 0x1.0p-53 < rate) {
        throw new IllegalStateException(
            "injected chaos fault at " + point + " (" + SEED_PROPERTY + "=" + seed + ")");
      }
    }

    /** SplitMix64's finaliser: spreads every input bit over the output. */
    private static long mix(long z) {
      z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
      z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
      return z ^ (z >>> 31);
    }
  }

  /** Runs {@code action} every time {@code point} is reached, until {@link #clear()}. */
  public static void set(String point, Runnable action) {
    ACTIONS.put(point, action);
  }

  /**
   * Throws {@code IllegalStateException("injected: " + what)} the first time {@code point} is
   * reached, and nothing after that.
   *
   * @return whether it has fired
   */
  public static java.util.concurrent.atomic.AtomicBoolean failOnce(String point, String what) {
    java.util.concurrent.atomic.AtomicBoolean fired =
        new java.util.concurrent.atomic.AtomicBoolean();
    set(
        point,
        () -> {
          if (fired.compareAndSet(false, true)) {
            throw new IllegalStateException("injected: " + what);
          }
        });
    return fired;
  }

  /** Marks the current thread as writing {@code range} until {@link #leaveRange()}. */
  public static void inRange(Object range) {
    if (!ACTIONS.isEmpty()) {
      RANGE.set(String.valueOf(range));
    }
  }

  /** Ends {@link #inRange}. */
  public static void leaveRange() {
    RANGE.remove();
  }

  /** Removes every action. */
  public static void clear() {
    ACTIONS.clear();
  }

  /** Called by the protocols at {@code point}; runs the registered action, if any. */
  public static void reach(String point) {
    if (!ACTIONS.isEmpty()) {
      Runnable action = ACTIONS.get(point);
      if (action != null) {
        action.run();
      }
    }
  }
}
