package org.exactlyonce.spark.chaos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The run's mechanics, with a shell command standing in for a driver JVM. */
class ChaosRunTest {
  @TempDir Path logs;

  private ChaosRun.Builder run(String script) {
    return ChaosRun.builder()
        .command(List.of("sh", "-c", script))
        .logDirectory(logs)
        .out(new PrintStream(new ByteArrayOutputStream()))
        .pauses(Duration.ofMillis(50), Duration.ofMillis(100))
        .finishWithin(Duration.ofSeconds(20));
  }

  @Test
  void theSameSeedDrawsTheSameSchedule() {
    Fault a = Fault.of("a", c -> {});
    Fault b = Fault.of("b", c -> {});
    Fault c = Fault.of("c", x -> {});
    ChaosRun one = run("true").seed(42).firstFaults(a).faultKinds(a, b, c).faults(12).build();
    ChaosRun two = run("true").seed(42).firstFaults(a).faultKinds(a, b, c).faults(12).build();
    ChaosRun other = run("true").seed(43).firstFaults(a).faultKinds(a, b, c).faults(12).build();
    List<String> schedule = one.schedule().stream().map(Fault::name).toList();
    assertThat(schedule).hasSize(12).startsWith("a");
    assertThat(two.schedule().stream().map(Fault::name).toList()).isEqualTo(schedule);
    assertThat(other.schedule().stream().map(Fault::name).toList()).isNotEqualTo(schedule);
  }

  @Test
  void aKilledDriverIsStartedAgainUntilTheJobFinishes() throws Exception {
    ChaosReport report =
        run("sleep 2; exit 0").seed(1).faultKinds(Fault.killDriver()).faults(2).build().run();
    assertThat(report.fired()).isEqualTo(Map.of("kill-driver", 2));
    assertThat(report.driverStarts()).isEqualTo(3);
    assertThat(report.seed()).isEqualTo(1);
  }

  /** A driver that keeps running, idle, until the run says every fault has had its turn. */
  private static final String UNTIL_FAULTS_DONE =
      "while [ ! -f \"$" + ChaosRun.FAULTS_DONE_ENV + "\" ]; do sleep 0.05; done; exit 0";

  @Test
  void everyFaultFiresWhenTheJobWaitsForTheSchedule() throws Exception {
    ChaosReport report =
        run(UNTIL_FAULTS_DONE).seed(2).faultKinds(Fault.killDriver()).faults(3).build().run();
    assertThat(report.requireEveryFaultFired().fired()).isEqualTo(Map.of("kill-driver", 3));
    assertThat(report.faults()).extracting(FaultOutcome::index).containsExactly(1, 2, 3);
    assertThat(report.driverStarts()).isEqualTo(4);
  }

  @Test
  void aJobThatFinishesBeforeItsFaultsFailsTheCheckNamingEachFaultAndWhy() throws Exception {
    ChaosReport report =
        run("exit 0")
            .seed(3)
            .faultKinds(Fault.killDriver())
            .faults(2)
            .pauses(Duration.ofMillis(500), Duration.ofMillis(500))
            .build()
            .run();
    assertThat(report.firedTotal()).isZero();
    assertThat(report.notFired()).hasSize(2);
    assertThatThrownBy(report::requireEveryFaultFired)
        .isInstanceOf(AssertionError.class)
        .hasMessageContaining("chaos run (seed 3): 2 of 2 scheduled faults did not fire")
        .hasMessageContaining("#1 kill-driver at ")
        .hasMessageContaining("#2 kill-driver at ")
        .hasMessageContaining("the job had finished (driver exit 0) before this fault's time");
  }

  @Test
  void aFaultWhoseTargetIsGoneIsReportedAsNotFiredWithItsReason() throws Exception {
    Fault gone =
        Fault.of(
            "restart-server",
            c -> {
              throw new Fault.NotFired("restart-server: the server was already down");
            });
    ChaosReport report =
        run(UNTIL_FAULTS_DONE)
            .firstFaults(Fault.killDriver(), gone)
            .faults(2)
            .faultKinds(gone)
            .build()
            .run();
    assertThat(report.fired()).isEqualTo(Map.of("kill-driver", 1));
    assertThat(report.notFired())
        .singleElement()
        .satisfies(
            f -> {
              assertThat(f.index()).isEqualTo(2);
              assertThat(f.detail()).isEqualTo("restart-server: the server was already down");
            });
    assertThatThrownBy(report::requireEveryFaultFired)
        .hasMessageContaining("#2 restart-server at ")
        .hasMessageContaining("did not fire: restart-server: the server was already down");
  }

  @Test
  void killingAnExecutorFiresOnceItsJvmHasExited() throws Exception {
    // A child whose command line names Spark's executor backend stands in for an executor JVM.
    ChaosReport report =
        run("bash -c 'exec -a CoarseGrainedExecutorBackend sleep 60' & " + UNTIL_FAULTS_DONE)
            .faultKinds(Fault.killExecutor(Duration.ofSeconds(10)))
            .faults(1)
            .build()
            .run();
    assertThat(report.requireEveryFaultFired().fired()).isEqualTo(Map.of("kill-executor", 1));
  }

  @Test
  void aDriverThatStopsOnAFailureIsStartedAgain() throws Exception {
    // The first start fails (no marker file yet), the second finishes.
    Path marker = logs.resolve("started-once");
    ChaosReport report =
        run("if [ -f " + marker + " ]; then exit 0; fi; touch " + marker + "; exit 1")
            .faultKinds(Fault.of("nothing", c -> {}))
            .faults(1)
            .build()
            .run();
    assertThat(report.driverStarts()).isEqualTo(2);
  }

  @Test
  void aFaultThatCannotFireFailsTheRunNamingTheSeed() {
    ChaosRun chaos =
        run("sleep 5")
            .seed(7)
            .faultKinds(
                Fault.of(
                    "broken",
                    c -> {
                      throw new IllegalStateException("no server to restart");
                    }))
            .faults(1)
            .build();
    assertThatThrownBy(chaos::run)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("fault broken failed (seed 7)")
        .hasMessageContaining("no server to restart");
  }

  @Test
  void killingAnExecutorWithoutExecutorJvmsSaysHowToGetThem() {
    ChaosRun chaos =
        run("sleep 5").faultKinds(Fault.killExecutor(Duration.ofMillis(200))).faults(1).build();
    assertThatThrownBy(chaos::run).hasMessageContaining("local-cluster[2,1,1024]");
  }

  @Test
  void aJobThatDoesNotFinishFailsNamingTheLogs() {
    ChaosRun chaos =
        run("sleep 30")
            .faultKinds(Fault.of("nothing", c -> {}))
            .faults(1)
            .finishWithin(Duration.ofMillis(300))
            .build();
    assertThatThrownBy(chaos::run)
        .hasMessageContaining("did not finish within PT0.3S")
        .hasMessageContaining(logs.toAbsolutePath().toString());
  }

  @Test
  void injectedTaskFailuresAreCountedFromTheDriverLogs() throws Exception {
    String lost =
        "WARN TaskSetManager: Lost task 1.0 in stage 3.0 (TID 7): java.lang.IllegalStateException: "
            + TaskFaults.marker(TaskFaults.Point.MID_WRITE)
            + " (exactlyonce.chaos.seed=5)";
    ChaosReport report =
        run("echo '" + lost + "'; echo '" + lost + "'; echo 'INFO unrelated'; exit 0")
            .faultKinds(Fault.of("nothing", c -> {}))
            .faults(1)
            .pauses(Duration.ZERO, Duration.ZERO)
            .build()
            .run();
    assertThat(report.taskFaults()).isEqualTo(Map.of(TaskFaults.Point.MID_WRITE, 2));
  }

  @Test
  void settingsAreValidatedWhenBuilt() {
    assertThatThrownBy(() -> ChaosRun.builder().faultKinds(Fault.killDriver()).build())
        .hasMessageContaining("command is required");
    assertThatThrownBy(() -> ChaosRun.builder().command(List.of("true")).build())
        .hasMessageContaining("faultKinds is empty");
    assertThatThrownBy(
            () ->
                ChaosRun.builder()
                    .command(List.of("true"))
                    .faultKinds(Fault.killDriver())
                    .pauses(Duration.ofSeconds(2), Duration.ofSeconds(1))
                    .build())
        .hasMessageContaining("need 0 <= min <= max");
  }

  @Test
  void taskFaultsBecomeTheSystemPropertiesTheLibraryReads() {
    TaskFaults faults =
        new TaskFaults(
            List.of(TaskFaults.Point.BEFORE_WRITE, TaskFaults.Point.AFTER_COMMIT), 0.1, 9, 2);
    assertThat(faults.javaOptions())
        .isEqualTo(
            "-Dexactlyonce.chaos.points=task.before-write,task.after-commit"
                + " -Dexactlyonce.chaos.rate=0.1 -Dexactlyonce.chaos.seed=9"
                + " -Dexactlyonce.chaos.attempts=2");
    assertThatThrownBy(() -> TaskFaults.everywhere(1.5, 1)).hasMessageContaining("between 0 and 1");
    assertThatThrownBy(() -> new TaskFaults(List.of(), 0.1, 1, 2))
        .hasMessageContaining("at least one point");
  }

  @Test
  void aFirstAttemptFaultFailsEveryFirstAttemptAndNoRetry() {
    // Rate 1: the library's seeded draw, a double in [0, 1), is always below it.
    assertThat(TaskFaults.firstAttemptAt(TaskFaults.Point.BEFORE_COMMIT).javaOptions())
        .isEqualTo(
            "-Dexactlyonce.chaos.points=task.before-commit"
                + " -Dexactlyonce.chaos.rate=1.0 -Dexactlyonce.chaos.seed=0"
                + " -Dexactlyonce.chaos.attempts=1");
    assertThatThrownBy(() -> TaskFaults.everywhere(0, 1)).hasMessageContaining("between 0 and 1");
  }

  @Test
  void aRollingDeployStartsASecondDriverBesideTheFirstAndStopsTheOldOneOnceTheNewTookOver()
      throws Exception {
    Path starts = logs.resolve("starts");
    // Each driver appends a line when it starts (its "epoch"), then waits for the schedule; the
    // old one never stops by itself, so the fault sends it SIGTERM after its 2 s.
    String script = "echo x >> '" + starts + "'; " + UNTIL_FAULTS_DONE;
    ChaosReport report =
        run(script)
            .seed(5)
            .firstFaults(Fault.rollingDeploy(() -> lines(starts), Duration.ofSeconds(2)))
            .faults(1)
            .build()
            .run();
    assertThat(report.requireEveryFaultFired().fired()).isEqualTo(Map.of("rolling-deploy", 1));
    assertThat(report.driverStarts()).isEqualTo(2);
    assertThat(lines(starts)).isEqualTo(2);
  }

  @Test
  void aRollingDeployWhoseNewDriverNeverTakesOverFailsTheRun() {
    ChaosRun run =
        run(UNTIL_FAULTS_DONE)
            .seed(6)
            .firstFaults(Fault.rollingDeploy(() -> 0, Duration.ofMillis(500)))
            .faults(1)
            .build();
    assertThatThrownBy(run::run)
        .hasMessageContaining("rolling-deploy")
        .hasRootCauseMessage(
            "rolling-deploy: the new driver did not take the pipeline over within PT0.5S (still"
                + " 0)");
  }

  private static long lines(Path file) {
    try {
      return java.nio.file.Files.exists(file) ? java.nio.file.Files.readAllLines(file).size() : 0;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
