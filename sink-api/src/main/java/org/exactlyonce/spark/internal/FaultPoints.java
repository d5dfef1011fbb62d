package org.exactlyonce.spark.internal;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Named points in the commit protocols where tests inject failures (for example between writing
 * outputs and committing offsets). With nothing registered, {@link #reach} is one map lookup.
 * Effective in the JVM that registered the action only.
 */
public final class FaultPoints {
  /** On the driver, after the executors wrote a batch's outputs, before its offsets commit. */
  public static final String IDEMPOTENT_BEFORE_OFFSET_COMMIT = "idempotent.before-offset-commit";

  /** On the driver, after a per-batch sink staged its results, before it publishes them. */
  public static final String BATCH_BEFORE_PUBLISH = "batch.before-publish";

  /** Inside a per-batch transaction, after the results were written, before the commit. */
  public static final String BATCH_BEFORE_COMMIT = "batch.before-commit";

  private static final Map<String, Runnable> ACTIONS = new ConcurrentHashMap<>();

  private FaultPoints() {}

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
