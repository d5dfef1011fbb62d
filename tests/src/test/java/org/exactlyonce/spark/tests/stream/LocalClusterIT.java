package org.exactlyonce.spark.tests.stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.apache.spark.api.java.JavaSparkContext;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.junit.jupiter.api.Test;

/** Executors as separate JVMs: one killed with SIGKILL mid-job, the job still completes. */
class LocalClusterIT {

  @Test
  void jobSurvivesSigkillOfOneExecutor() throws Exception {
    try (JavaSparkContext sc =
        new JavaSparkContext(SparkSetup.localCluster("kill-executor", 2, 1))) {
      await("both executors registered")
          .atMost(Duration.ofSeconds(120))
          .until(() -> sc.sc().getExecutorIds().size() >= 2);
      List<Long> pids = SparkSetup.executorPids();
      assertThat(pids).hasSize(2);

      List<Integer> input = IntStream.range(0, 1000).boxed().toList();
      CompletableFuture<Long> sum =
          CompletableFuture.supplyAsync(
              () ->
                  sc.parallelize(input, 8)
                      .map(
                          i -> {
                            // Paces the job, not a wait: about 1.2 s per task, so that the kill
                            // below lands while tasks run.
                            Thread.sleep(10);
                            return (long) i;
                          })
                      .reduce(Long::sum));
      await("tasks running on the executors")
          .atMost(Duration.ofSeconds(120))
          .until(() -> runningTasks(sc) > 0);
      assertThat(sum).isNotDone();
      ProcessHandle.of(pids.get(0)).orElseThrow().destroyForcibly();

      assertThat(sum.get(120, TimeUnit.SECONDS)).isEqualTo(999L * 1000 / 2);
      assertThat(ProcessHandle.of(pids.get(0)).map(ProcessHandle::isAlive).orElse(false)).isFalse();
    }
  }

  private static int runningTasks(JavaSparkContext sc) {
    int running = 0;
    for (int stage : sc.statusTracker().getActiveStageIds()) {
      var info = sc.statusTracker().getStageInfo(stage);
      running += info == null ? 0 : info.numActiveTasks();
    }
    return running;
  }
}
