package org.exactlyonce.spark.chaos;

import java.util.Locale;
import java.util.Objects;

/**
 * What became of one fault of a {@link ChaosRun}'s schedule.
 *
 * @param index its place in the schedule, from 1
 * @param fault its {@link Fault#name() name}
 * @param atMillis when the run tried to fire it, in milliseconds since the driver's first start
 * @param fired whether it happened: a kill reached a live process that exited because of it, a
 *     user's action ran to its end
 * @param detail what happened, or why it did not fire
 */
public record FaultOutcome(int index, String fault, long atMillis, boolean fired, String detail) {
  public FaultOutcome {
    Objects.requireNonNull(fault, "fault");
    Objects.requireNonNull(detail, "detail");
  }

  @Override
  public String toString() {
    return String.format(
        Locale.ROOT,
        "#%d %s at %.1f s: %s%s",
        index,
        fault,
        atMillis / 1000.0,
        fired ? "fired" : "did not fire: ",
        fired ? (detail.isEmpty() ? "" : " (" + detail + ")") : detail);
  }
}
