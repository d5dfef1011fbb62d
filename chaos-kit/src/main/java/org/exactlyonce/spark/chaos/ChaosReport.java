package org.exactlyonce.spark.chaos;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What a {@link ChaosRun} did.
 *
 * @param seed replays the schedule (and, with {@link TaskFaults}, the task failures)
 * @param schedule the faults in the order they were drawn
 * @param fired how often each fault fired (a schedule cut short by the job finishing fires fewer)
 * @param taskFaults task failures injected at each point, counted in the drivers' logs
 * @param speculativeCopies speculative task copies Spark launched, counted in the drivers' logs
 *     (lines holding {@link #SPECULATIVE_COPY_MARKER}, which the job prints from a Spark listener
 *     on {@code SparkListenerTaskStart.taskInfo().speculative()}); Spark launches none when every
 *     executor shares one host, as on {@code local-cluster}
 * @param driverStarts how often the driver JVM was started, the first start included
 * @param wallMillis from the first start until the job finished
 * @param logs where each driver's output went
 */
public record ChaosReport(
    long seed,
    List<String> schedule,
    Map<String, Integer> fired,
    Map<TaskFaults.Point, Integer> taskFaults,
    int speculativeCopies,
    int driverStarts,
    long wallMillis,
    Path logs) {

  /** What a job prints on its driver's output, once per speculative task copy launched. */
  public static final String SPECULATIVE_COPY_MARKER = "chaos: speculative task copy launched";

  public ChaosReport {
    schedule = List.copyOf(schedule);
    fired = Map.copyOf(fired);
    taskFaults = Map.copyOf(taskFaults);
  }

  /** Faults fired in all. */
  public int firedTotal() {
    return fired.values().stream().mapToInt(Integer::intValue).sum();
  }

  @Override
  public String toString() {
    return String.format(
        "seed %d, faults fired %s, task faults %s, speculative copies %d, driver starts %d,"
            + " wall %,d ms, logs %s",
        seed, fired, taskFaults, speculativeCopies, driverStarts, wallMillis, logs);
  }
}
