package org.exactlyonce.spark.chaos;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.Stream;

/**
 * Runs a streaming job's driver JVM under a seeded schedule of faults and waits until the job
 * finishes.
 *
 * <p>The job is a command (its driver JVM) that exits 0 once it has processed all of its input and
 * {@link #faultsDone()} says the schedule is through, and non-zero when it stopped on a failure.
 * The run starts it, then, for each fault of the schedule, sleeps a drawn pause and fires the
 * fault; whenever the driver died it is started again with the same command, as a cluster manager
 * would. After the last fault it waits for an exit 0, starting the driver again after every other
 * exit. The seed, the schedule and the pauses are printed first, so a failing run can be replayed
 * with {@link Builder#seed}. The report records, per fault, whether it fired and why not ({@link
 * ChaosReport#requireEveryFaultFired}). Check the output afterwards with {@link Oracle}.
 *
 * <pre>{@code
 * ChaosReport report =
 *     ChaosRun.builder()
 *         .command(List.of(java, "-cp", classpath, "com.acme.MyJob", "--master", "local-cluster[2,1,1024]"))
 *         .faultKinds(Fault.killExecutor(), Fault.killDriver(), Fault.of("restart-postgres", c -> pg.restart()))
 *         .faults(6)
 *         .build()
 *         .run();
 * report.requireEveryFaultFired();
 * Oracle.records(inputIds, readWholeOutput()).orThrow();
 * }</pre>
 */
public final class ChaosRun {
  /**
   * The environment variable a run gives the driver JVM: the path of a file that exists once every
   * fault of the schedule has had its turn. A job must not exit 0 before {@link #faultsDone()}, so
   * that no fault is left without a job to hit (the report would show it as not fired).
   */
  public static final String FAULTS_DONE_ENV = "EXACTLYONCE_CHAOS_FAULTS_DONE";

  /** A process's exit value after SIGKILL (128 + 9), as {@link Process#exitValue} reports it. */
  private static final int SIGKILL_EXIT = 137;

  private final List<String> command;
  private final Path logs;
  private final long seed;
  private final List<Fault> first;
  private final List<Fault> kinds;
  private final int faults;
  private final Duration minPause;
  private final Duration maxPause;
  private final BooleanSupplier midWrite;
  private final Duration midWriteWait;
  private final Duration finishWithin;
  private final PrintStream out;
  private final String name;
  private final Runnable afterFaults;

  private ChaosRun(Builder b) {
    this.command = List.copyOf(b.command);
    this.logs = b.logs;
    this.seed = b.seed;
    this.first = List.copyOf(b.first);
    this.kinds = List.copyOf(b.kinds);
    this.faults = b.faults;
    this.minPause = b.minPause;
    this.maxPause = b.maxPause;
    this.midWrite = b.midWrite;
    this.midWriteWait = b.midWriteWait;
    this.finishWithin = b.finishWithin;
    this.out = b.out;
    this.name = b.name;
    this.afterFaults = b.afterFaults;
  }

  /**
   * For the job's driver: whether the chaos run that started it has fired every fault of its
   * schedule, so the job may exit 0 once its input is processed; true outside a chaos run. Until
   * then a job that has processed its input keeps running (idle), so that the remaining faults
   * still find it.
   */
  public static boolean faultsDone() {
    String path = System.getenv(FAULTS_DONE_ENV);
    return path == null || Files.exists(Path.of(path));
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The schedule this run's seed draws: the first faults, then draws from the kinds. */
  public List<Fault> schedule() {
    return draw(new Random(seed)).faults;
  }

  private record Drawn(List<Fault> faults, List<Long> pausesMs) {}

  private Drawn draw(Random random) {
    List<Fault> schedule = new ArrayList<>(first);
    while (schedule.size() < faults) {
      schedule.add(kinds.get(random.nextInt(kinds.size())));
    }
    List<Long> pauses = new ArrayList<>();
    long min = minPause.toMillis();
    long spread = maxPause.toMillis() - min;
    for (int i = 0; i < schedule.size(); i++) {
      pauses.add(min + (spread == 0 ? 0 : (long) (random.nextDouble() * spread)));
    }
    return new Drawn(schedule, pauses);
  }

  /**
   * Runs the job under the schedule until it finishes.
   *
   * @throws IllegalStateException if a fault could not fire or the job did not finish in time (the
   *     message names the seed and the logs)
   */
  public ChaosReport run() throws Exception {
    long started = System.currentTimeMillis();
    Random random = new Random(seed);
    Drawn drawn = draw(random);
    List<String> names = drawn.faults.stream().map(Fault::name).toList();
    out.printf(
        "chaos %s: seed %d, schedule %s, pauses (ms) %s%n", name, seed, names, drawn.pausesMs);
    Files.createDirectories(logs);
    Path faultsDone = logs.resolve(name + ".faults-done").toAbsolutePath();
    Files.deleteIfExists(faultsDone);
    // Logs of an earlier run of the same name would be counted (task faults) and confuse a reader.
    try (Stream<Path> old = Files.list(logs)) {
      for (Path p : old.toList()) {
        String f = p.getFileName().toString();
        if (f.startsWith(name + "-driver-") && f.endsWith(".log")) {
          Files.delete(p);
        }
      }
    }
    Context context = new Context(random, faultsDone);
    List<FaultOutcome> outcomes = new ArrayList<>();
    try {
      context.start();
      for (int i = 0; i < drawn.faults.size(); i++) {
        Fault fault = drawn.faults.get(i);
        boolean finished = !context.driver.isAlive() && context.driver.exitValue() == 0;
        if (!finished) {
          Thread.sleep(drawn.pausesMs.get(i));
          finished = !context.driver.isAlive() && context.driver.exitValue() == 0;
        }
        long at = System.currentTimeMillis() - started;
        if (finished) {
          // The job did not wait for the schedule (FAULTS_DONE_ENV): this fault has nothing to hit.
          outcomes.add(
              new FaultOutcome(
                  i + 1,
                  fault.name(),
                  at,
                  false,
                  "the job had finished (driver exit 0) before this fault's time; a job under a"
                      + " chaos run must not exit before ChaosRun.faultsDone()"));
          continue;
        }
        if (!context.driver.isAlive()) {
          context.start(); // stopped by a failure: started again; the fault still fires
        }
        try {
          fault.fire(context);
          outcomes.add(new FaultOutcome(i + 1, fault.name(), at, true, ""));
        } catch (Fault.NotFired e) {
          outcomes.add(new FaultOutcome(i + 1, fault.name(), at, false, e.getMessage()));
        } catch (Exception e) {
          throw new IllegalStateException(
              "chaos " + name + ": fault " + fault.name() + " failed (seed " + seed + "): " + e, e);
        }
      }
      // Every fault has had its turn: the job may finish now.
      afterFaults.run();
      Files.createFile(faultsDone);
      long deadline = System.nanoTime() + finishWithin.toNanos();
      while (true) {
        long left = deadline - System.nanoTime();
        if (left <= 0 || !context.driver.waitFor(left, TimeUnit.NANOSECONDS)) {
          throw new IllegalStateException(
              "chaos "
                  + name
                  + ": the job did not finish within "
                  + finishWithin
                  + " after the last fault (seed "
                  + seed
                  + "); driver logs in "
                  + logs.toAbsolutePath());
        }
        if (context.driver.exitValue() == 0) {
          break;
        }
        context.start();
      }
    } finally {
      context.killAll();
    }
    ChaosReport report =
        new ChaosReport(
            name,
            seed,
            names,
            outcomes,
            countTaskFaults(context.logFiles),
            countLines(context.logFiles, ChaosReport.SPECULATIVE_COPY_MARKER),
            context.starts,
            System.currentTimeMillis() - started,
            logs);
    out.printf("chaos %s: %s%n", name, report);
    return report;
  }

  private static Map<TaskFaults.Point, Integer> countTaskFaults(List<Path> files)
      throws IOException {
    Map<TaskFaults.Point, Integer> counts = new EnumMap<>(TaskFaults.Point.class);
    for (Path f : files) {
      if (!Files.exists(f)) {
        continue;
      }
      try (Stream<String> lines = Files.lines(f, StandardCharsets.UTF_8)) {
        lines
            // Spark logs each failed task attempt once on the driver, as "Lost task ...".
            .filter(l -> l.contains("Lost task"))
            .forEach(
                l -> {
                  for (TaskFaults.Point p : TaskFaults.Point.values()) {
                    if (l.contains(TaskFaults.marker(p))) {
                      counts.merge(p, 1, Integer::sum);
                    }
                  }
                });
      } catch (java.io.UncheckedIOException e) {
        // a log with bytes that are not UTF-8: skip its remainder
      }
    }
    return counts;
  }

  private static int countLines(List<Path> files, String marker) throws IOException {
    int count = 0;
    for (Path f : files) {
      if (!Files.exists(f)) {
        continue;
      }
      try (Stream<String> lines = Files.lines(f, StandardCharsets.UTF_8)) {
        count += (int) lines.filter(l -> l.contains(marker)).count();
      } catch (java.io.UncheckedIOException e) {
        // a log with bytes that are not UTF-8: skip its remainder
      }
    }
    return count;
  }

  /** The executor JVMs among {@code driver}'s descendants. */
  static List<ProcessHandle> executorsOf(ProcessHandle driver) {
    return driver
        .descendants()
        .filter(p -> commandLine(p).contains("CoarseGrainedExecutorBackend"))
        .toList();
  }

  private static String commandLine(ProcessHandle p) {
    try {
      // /proc gives the full command line; ProcessHandle.Info truncates it on Linux.
      return new String(
          Files.readAllBytes(Path.of("/proc", Long.toString(p.pid()), "cmdline")),
          StandardCharsets.UTF_8);
    } catch (IOException | RuntimeException e) {
      return p.info().commandLine().orElse("");
    }
  }

  private final class Context implements ChaosContext {
    private final Random random;
    private final Path faultsDone;
    private Process driver;
    // Drivers replaced by a rolling deploy: stopped by the fault, killed at the end if still up.
    private final List<Process> replaced = new ArrayList<>();
    private int starts;
    private final List<Path> logFiles = new ArrayList<>();

    Context(Random random, Path faultsDone) {
      this.random = random;
      this.faultsDone = faultsDone;
    }

    void start() throws IOException {
      starts++;
      Path log = logs.resolve(name + "-driver-" + starts + ".log");
      logFiles.add(log);
      ProcessBuilder builder =
          new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
      builder.environment().put(FAULTS_DONE_ENV, faultsDone.toString());
      driver = builder.start();
    }

    void killAll() {
      List<Process> all = new ArrayList<>(replaced);
      if (driver != null) {
        all.add(driver);
      }
      for (Process p : all) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
      }
    }

    @Override
    public Process driver() {
      return driver;
    }

    @Override
    public List<ProcessHandle> executors() {
      return executorsOf(driver.toHandle());
    }

    @Override
    public Random random() {
      return random;
    }

    @Override
    public void awaitMidWrite() throws InterruptedException {
      long deadline = System.nanoTime() + midWriteWait.toNanos();
      while (System.nanoTime() < deadline) {
        try {
          if (midWrite.getAsBoolean()) {
            return;
          }
        } catch (RuntimeException e) {
          // the probe's server may be restarting: keep probing until the deadline
        }
        Thread.sleep(10);
      }
    }

    @Override
    public void restartDriver() throws Exception {
      restartDriver(c -> {});
    }

    @Override
    public void restartDriver(Fault.Action whileDown) throws Exception {
      boolean alive = driver.isAlive();
      // Its executors die with it: the worker of a local-cluster, or the cluster manager, ends
      // them.
      int exit = driver.destroyForcibly().waitFor();
      whileDown.fire(this);
      start();
      if (!alive || exit != SIGKILL_EXIT) {
        throw new Fault.NotFired(
            "kill-driver: the driver JVM had already exited (exit " + exit + ") before the kill");
      }
    }

    @Override
    public Process startSecondDriver() throws Exception {
      Process old = driver;
      boolean alive = old.isAlive();
      replaced.add(old);
      start();
      if (!alive) {
        throw new Fault.NotFired(
            "the driver JVM had already exited (exit "
                + old.exitValue()
                + ") when the second one started: nothing overlapped");
      }
      return old;
    }
  }

  /** Configures a {@link ChaosRun}; {@link #command} and at least one fault kind are required. */
  public static final class Builder {
    private List<String> command;
    private Path logs = Path.of("target", "chaos");
    private long seed = System.nanoTime();
    private final List<Fault> first = new ArrayList<>();
    private final List<Fault> kinds = new ArrayList<>();
    private int faults = 4;
    private Duration minPause = Duration.ofMillis(1500);
    private Duration maxPause = Duration.ofMillis(3000);
    private BooleanSupplier midWrite = () -> true;
    private Duration midWriteWait = Duration.ofSeconds(5);
    private Duration finishWithin = Duration.ofMinutes(3);
    private PrintStream out = System.out;
    private String name = "run";
    private Runnable afterFaults = () -> {};

    private Builder() {}

    /**
     * Runs {@code action} once every fault of the schedule has had its turn, before the job is told
     * it may finish ({@link #faultsDone()}): for example, stop writing input and tell the job how
     * much to expect. An exception fails the run.
     */
    public Builder afterFaults(Runnable action) {
      this.afterFaults = Objects.requireNonNull(action, "action");
      return this;
    }

    /** The driver JVM's command line; it must exit 0 once the job processed all of its input. */
    public Builder command(List<String> command) {
      this.command = List.copyOf(Objects.requireNonNull(command, "command"));
      return this;
    }

    /** Names the run in its output and log files (default {@code run}). */
    public Builder name(String name) {
      this.name = Objects.requireNonNull(name, "name");
      return this;
    }

    /** Where each driver start's output goes (default {@code target/chaos}). */
    public Builder logDirectory(Path logs) {
      this.logs = Objects.requireNonNull(logs, "logs");
      return this;
    }

    /** The seed of the schedule, the pauses and every random choice (default: the clock). */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** The kinds the schedule draws from, uniformly. */
    public Builder faultKinds(Fault... kinds) {
      this.kinds.addAll(List.of(kinds));
      return this;
    }

    /** Faults that open the schedule in this order, before the drawn ones. */
    public Builder firstFaults(Fault... faults) {
      this.first.addAll(List.of(faults));
      return this;
    }

    /** How many faults the schedule holds, the first ones included (default 4). */
    public Builder faults(int faults) {
      this.faults = faults;
      return this;
    }

    /** The pause before each fault is drawn between these (default 1.5 s to 3 s). */
    public Builder pauses(Duration min, Duration max) {
      this.minPause = Objects.requireNonNull(min, "min");
      this.maxPause = Objects.requireNonNull(max, "max");
      return this;
    }

    /**
     * Tells when a write is in flight (for example: an open transaction on the output table, an
     * ongoing Kafka transaction), so that kills land between writing and committing; faults wait
     * for it at most {@code maxWait}. Default: always true.
     */
    public Builder midWrite(BooleanSupplier probe, Duration maxWait) {
      this.midWrite = Objects.requireNonNull(probe, "probe");
      this.midWriteWait = Objects.requireNonNull(maxWait, "maxWait");
      return this;
    }

    /** How long the job may take to finish after the last fault (default 3 minutes). */
    public Builder finishWithin(Duration finishWithin) {
      this.finishWithin = Objects.requireNonNull(finishWithin, "finishWithin");
      return this;
    }

    /** Where the seed, the schedule and the report are printed (default {@code System.out}). */
    public Builder out(PrintStream out) {
      this.out = Objects.requireNonNull(out, "out");
      return this;
    }

    /**
     * @throws IllegalArgumentException naming the setting to fix
     */
    public ChaosRun build() {
      if (command == null || command.isEmpty()) {
        throw new IllegalArgumentException(
            "ChaosRun: command is required: the driver JVM's command line, e.g. [java, -cp, ...,"
                + " com.acme.MyJob]");
      }
      if (kinds.isEmpty() && first.size() < faults) {
        throw new IllegalArgumentException(
            "ChaosRun: faultKinds is empty: name the faults to draw from, e.g."
                + " faultKinds(Fault.killExecutor(), Fault.killDriver())");
      }
      if (faults < first.size()) {
        throw new IllegalArgumentException(
            "ChaosRun: faults(" + faults + ") is below the " + first.size() + " firstFaults");
      }
      if (minPause.isNegative() || maxPause.compareTo(minPause) < 0) {
        throw new IllegalArgumentException(
            "ChaosRun: pauses(" + minPause + ", " + maxPause + "): need 0 <= min <= max");
      }
      return new ChaosRun(this);
    }
  }
}
