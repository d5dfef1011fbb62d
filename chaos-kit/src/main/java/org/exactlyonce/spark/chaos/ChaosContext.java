package org.exactlyonce.spark.chaos;

import java.util.List;
import java.util.Random;

/** What a {@link Fault} can see and do while a {@link ChaosRun} is under way. */
public interface ChaosContext {
  /** The driver JVM running now. */
  Process driver();

  /** The executor JVMs of the current driver (Spark's {@code CoarseGrainedExecutorBackend}). */
  List<ProcessHandle> executors();

  /** The run's random, drawn from its seed: use it for every choice, so a seed replays the run. */
  Random random();

  /**
   * Waits until the run's mid-write probe says a write is in flight, at most the configured time;
   * faults that should land between writing and committing call this first.
   */
  void awaitMidWrite() throws InterruptedException;

  /**
   * SIGKILLs the driver JVM and starts the job again with the same command.
   *
   * @throws Fault.NotFired if the driver had already exited (it is started again all the same)
   */
  void restartDriver() throws Exception;

  /**
   * SIGKILLs the driver JVM, runs {@code whileDown} (for example: write input the restarted job
   * must still find) and starts the job again with the same command.
   *
   * @throws Fault.NotFired if the driver had already exited (it is started again all the same)
   */
  void restartDriver(Fault.Action whileDown) throws Exception;

  /**
   * Starts the job again with the same command while the current driver still runs, as a rolling
   * deploy does, and makes the new driver the current one. The old driver is left running: the
   * caller stops it (or it stops by itself, fenced by the new one); the run kills it at its end if
   * it still runs.
   *
   * @return the old driver
   * @throws Fault.NotFired if the current driver had already exited (the new one is started all the
   *     same): nothing overlapped
   */
  Process startSecondDriver() throws Exception;
}
