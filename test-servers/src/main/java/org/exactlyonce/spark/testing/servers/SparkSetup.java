package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.SparkConf;

/** Spark configurations for tests: in-JVM executors, or executors as separate JVMs. */
public final class SparkSetup {
  /** The opens Spark needs on Java 17 (Spark's JavaModuleOptions), for executor JVMs. */
  public static final String JAVA17_OPTIONS =
      "-XX:+IgnoreUnrecognizedVMOptions --add-opens=java.base/java.lang=ALL-UNNAMED"
          + " --add-opens=java.base/java.lang.invoke=ALL-UNNAMED"
          + " --add-opens=java.base/java.lang.reflect=ALL-UNNAMED"
          + " --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED"
          + " --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED"
          + " --add-opens=java.base/java.util.concurrent=ALL-UNNAMED"
          + " --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED"
          + " --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED"
          + " --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED"
          + " --add-opens=java.base/sun.security.action=ALL-UNNAMED"
          + " --add-opens=java.base/sun.util.calendar=ALL-UNNAMED"
          + " -Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true";

  private SparkSetup() {}

  /**
   * {@code local[threads, maxFailures]}: executors are threads of this JVM; a failed task is
   * retried up to {@code maxFailures - 1} times, as on a cluster.
   */
  public static SparkConf local(String appName, int threads, int maxFailures) {
    return common(appName).setMaster("local[" + threads + "," + maxFailures + "]");
  }

  /**
   * {@code local-cluster[executors, cores, memory]}: a master, a worker and {@code executors}
   * executor JVMs, so a test can kill an executor with SIGKILL. Needs environment variable
   * SPARK_HOME to name a folder (its {@code jars/} subfolder is created if missing) and
   * SPARK_SCALA_VERSION set to the Scala binary version ({@link #scalaBinaryVersion()}); the
   * build's Failsafe configuration sets both.
   */
  public static SparkConf localCluster(String appName, int executors, int coresEach) {
    sparkHome();
    return separateExecutors(common(appName))
        .setMaster("local-cluster[" + executors + "," + coresEach + ",1024]");
  }

  /**
   * A driver of {@code cluster}: one executor of 1 core and 512 MB per worker, each on its worker's
   * loopback host, running this JVM's class path with the Java 17 opens.
   */
  public static SparkConf standalone(String appName, StandaloneCluster cluster) {
    return separateExecutors(common(appName))
        .setMaster(cluster.masterUrl())
        .set("spark.executor.cores", "1")
        .set("spark.cores.max", Integer.toString(cluster.workerHosts().size()));
  }

  private static SparkConf separateExecutors(SparkConf conf) {
    return conf.set("spark.executor.memory", "512m")
        .set("spark.executor.extraClassPath", System.getProperty("java.class.path"))
        .set("spark.executor.extraJavaOptions", JAVA17_OPTIONS)
        .set("spark.task.maxFailures", "4");
  }

  /**
   * The Scala binary version of the Scala library on this JVM's class path ({@code "2.12"} or
   * {@code "2.13"}, after the Spark line the build is on), which Spark's launcher needs as
   * SPARK_SCALA_VERSION to start executor and worker JVMs.
   */
  public static String scalaBinaryVersion() {
    String[] parts = scala.util.Properties.versionNumberString().split("\\.");
    return parts[0] + "." + parts[1];
  }

  /** SPARK_HOME as separate executor JVMs need it: any folder with a {@code jars/} subfolder. */
  static Path sparkHome() {
    String home = System.getenv("SPARK_HOME");
    if (home == null) {
      throw new IllegalStateException(
          "Spark executors in separate JVMs need environment variable SPARK_HOME"
              + " (any folder; jars/ is created)");
    }
    try {
      return Files.createDirectories(Path.of(home, "jars")).getParent();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static SparkConf common(String appName) {
    return new SparkConf()
        .setAppName(appName)
        .set("spark.ui.enabled", "false")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
        .set("spark.sql.shuffle.partitions", "4")
        .set("spark.streaming.stopGracefullyOnShutdown", "false")
        .set("spark.streaming.kafka.consumer.poll.ms", "10000");
  }

  /** The pids of the executor JVMs this JVM started (through its worker), read from /proc. */
  public static List<Long> executorPids() {
    return ProcessHandle.current()
        .descendants()
        .filter(p -> commandLine(p.pid()).contains("CoarseGrainedExecutorBackend"))
        .map(ProcessHandle::pid)
        .toList();
  }

  private static String commandLine(long pid) {
    try {
      return new String(
          Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")),
          StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }
}
