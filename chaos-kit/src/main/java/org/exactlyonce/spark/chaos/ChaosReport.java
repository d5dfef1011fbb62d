package org.exactlyonce.spark.chaos;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * What a {@link ChaosRun} did.
 *
 * @param name the run's name
 * @param seed replays the schedule (and, with {@link TaskFaults}, the task failures)
 * @param schedule the faults in the order they were drawn
 * @param faults what became of each fault of the schedule, in its order: fired, or why not
 * @param taskFaults task failures injected at each point, counted in the drivers' logs (Spark's
 *     "Lost task" lines holding {@link TaskFaults#marker}); what the library's fault points really
 *     did, not what was asked
 * @param speculativeCopies speculative task copies Spark launched, counted in the drivers' logs
 *     (lines holding {@link #SPECULATIVE_COPY_MARKER}, which the job prints from a Spark listener
 *     on {@code SparkListenerTaskStart.taskInfo().speculative()}); Spark launches none when every
 *     executor shares one host, as on {@code local-cluster}. Not a fault of the schedule: a count
 *     of what Spark did, never claimed as fired
 * @param driverStarts how often the driver JVM was started, the first start included
 * @param wallMillis from the first start until the job finished
 * @param logs where each driver's output went
 */
public record ChaosReport(
    String name,
    long seed,
    List<String> schedule,
    List<FaultOutcome> faults,
    Map<TaskFaults.Point, Integer> taskFaults,
    int speculativeCopies,
    int driverStarts,
    long wallMillis,
    Path logs) {

  /** What a job prints on its driver's output, once per speculative task copy launched. */
  public static final String SPECULATIVE_COPY_MARKER = "chaos: speculative task copy launched";

  public ChaosReport {
    schedule = List.copyOf(schedule);
    faults = List.copyOf(faults);
    taskFaults = Map.copyOf(taskFaults);
  }

  /** How often each fault fired, by name, in the order of their first firing. */
  public Map<String, Integer> fired() {
    Map<String, Integer> fired = new LinkedHashMap<>();
    faults.stream()
        .filter(FaultOutcome::fired)
        .forEach(f -> fired.merge(f.fault(), 1, Integer::sum));
    return fired;
  }

  /** Faults fired in all. */
  public int firedTotal() {
    return (int) faults.stream().filter(FaultOutcome::fired).count();
  }

  /** The faults of the schedule that did not fire, each with its reason. */
  public List<FaultOutcome> notFired() {
    return faults.stream().filter(f -> !f.fired()).toList();
  }

  /**
   * Fails unless every fault of the schedule fired: a run that claims faults it did not inflict
   * proves nothing about them.
   *
   * @throws AssertionError naming each fault that did not fire, its time and why, and the seed
   */
  public ChaosReport requireEveryFaultFired() {
    List<FaultOutcome> missed = notFired();
    if (!missed.isEmpty()) {
      throw new AssertionError(
          "chaos "
              + name
              + " (seed "
              + seed
              + "): "
              + missed.size()
              + " of "
              + faults.size()
              + " scheduled faults did not fire: "
              + missed.stream().map(FaultOutcome::toString).collect(Collectors.joining("; "))
              + "; driver logs in "
              + logs.toAbsolutePath());
    }
    return this;
  }

  @Override
  public String toString() {
    return String.format(
        "seed %d, faults %s, task faults seen %s, speculative copies launched %d (counted, not a"
            + " scheduled fault), driver starts %d, wall %,d ms, logs %s",
        seed, faults, taskFaults, speculativeCopies, driverStarts, wallMillis, logs);
  }
}
