package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;

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
      // Wait for both executors to register.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (sc.sc().getExecutorIds().size() < 2 && System.nanoTime() < deadline) {
        Thread.sleep(100);
      }
      List<Long> pids = SparkSetup.executorPids();
      assertThat(pids).hasSize(2);

      List<Integer> input = IntStream.range(0, 1000).boxed().toList();
      CompletableFuture<Long> sum =
          CompletableFuture.supplyAsync(
              () ->
                  sc.parallelize(input, 8)
                      .map(
                          i -> {
                            Thread.sleep(10); // long enough for the kill to land mid-task
                            return (long) i;
                          })
                      .reduce(Long::sum));
      Thread.sleep(1500);
      assertThat(sum).isNotDone();
      ProcessHandle.of(pids.get(0)).orElseThrow().destroyForcibly();

      assertThat(sum.get(120, TimeUnit.SECONDS)).isEqualTo(999L * 1000 / 2);
      assertThat(ProcessHandle.of(pids.get(0)).map(ProcessHandle::isAlive).orElse(false)).isFalse();
    }
  }
}
