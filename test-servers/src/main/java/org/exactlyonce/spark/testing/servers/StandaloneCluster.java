package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Spark standalone cluster of separate JVMs started from Spark's own classes on this JVM's class
 * path (no download): one Master on 127.0.0.1 and N Workers, worker {@code i} on loopback host
 * {@code 127.0.0.(i+1)}, each with 1 core and 1 GB for executors.
 *
 * <p>Why several loopback hosts: Spark never runs a speculative copy of a task on a host where an
 * attempt of that task already runs, and {@code local-cluster} puts every executor on one host, so
 * speculation never launches a copy there. With workers on 127.0.0.1 and 127.0.0.2 it does.
 *
 * <p>Drivers connect with {@link SparkSetup#standalone(String, StandaloneCluster)}, which ships the
 * test class path and the Java 17 opens to the executors. Needs environment variable SPARK_HOME to
 * name a folder (its {@code jars/} subfolder is created if missing), as {@code local-cluster} does;
 * the build's Failsafe configuration sets it.
 *
 * <p>{@link #close()} kills every process (workers' executors first); a shutdown hook does the same
 * if a test never closes the cluster. Not thread-safe: one test owns a cluster.
 */
public final class StandaloneCluster implements AutoCloseable {
  private static final Pattern ALIVE_WORKERS = Pattern.compile("\"aliveworkers\"\\s*:\\s*(\\d+)");
  private static final Duration START_TIMEOUT = Duration.ofSeconds(120);

  private final int masterPort;
  private final String masterUrl;
  private final int webUiPort;
  private final List<String> workerHosts;
  private final List<ForkedJvm> jvms = new ArrayList<>();
  private final Path dir;
  private final Thread shutdownHook;

  private StandaloneCluster(int workers, Path dir) {
    this.dir = dir;
    this.masterPort = Ports.free();
    this.webUiPort = Ports.free();
    this.masterUrl = "spark://127.0.0.1:" + masterPort;
    List<String> hosts = new ArrayList<>();
    for (int i = 0; i < workers; i++) {
      hosts.add("127.0.0." + (i + 1));
    }
    this.workerHosts = List.copyOf(hosts);
    this.shutdownHook = new Thread(this::killAll, "standalone-cluster-close");
    Runtime.getRuntime().addShutdownHook(shutdownHook);
  }

  /**
   * Starts a Master and {@code workers} Workers and returns once the Master reports every worker
   * ALIVE.
   *
   * @throws IllegalStateException if a loopback host cannot be bound, or the cluster does not come
   *     up within two minutes (the message holds the end of the logs)
   */
  public static StandaloneCluster start(int workers) {
    if (workers < 1 || workers > 254) {
      throw new IllegalArgumentException("workers must be 1..254, was " + workers);
    }
    StandaloneCluster cluster = new StandaloneCluster(workers, TestServers.newDir("spark", false));
    try {
      cluster.startAll();
      return cluster;
    } catch (RuntimeException e) {
      cluster.close();
      throw e;
    }
  }

  /** The URL drivers pass to {@code setMaster}: {@code spark://127.0.0.1:<port>}. */
  public String masterUrl() {
    return masterUrl;
  }

  /** The loopback host of each worker, in order: 127.0.0.1, 127.0.0.2, ... */
  public List<String> workerHosts() {
    return workerHosts;
  }

  /** Where the processes' logs go (executor logs under {@code work-<host>/<app>/<executor>}). */
  public Path logDirectory() {
    return dir;
  }

  private void startAll() {
    Path sparkHome = SparkSetup.sparkHome();
    String classpath = System.getProperty("java.class.path");
    List<String> daemonOptions = new ArrayList<>(List.of("-Xmx256m"));
    daemonOptions.addAll(List.of(SparkSetup.JAVA17_OPTIONS.split(" ")));
    jvms.add(
        ForkedJvm.start(
            "spark-master",
            classpath,
            daemonOptions,
            "org.apache.spark.deploy.master.Master",
            List.of(
                "--host",
                "127.0.0.1",
                "--port",
                Integer.toString(masterPort),
                "--webui-port",
                Integer.toString(webUiPort)),
            environment(sparkHome, "127.0.0.1"),
            dir.resolve("master.log")));
    for (String host : workerHosts) {
      checkBindable(host);
      jvms.add(
          ForkedJvm.start(
              "spark-worker-" + host,
              classpath,
              daemonOptions,
              "org.apache.spark.deploy.worker.Worker",
              List.of(
                  "--host",
                  host,
                  "--cores",
                  "1",
                  "--memory",
                  "1g",
                  "--webui-port",
                  Integer.toString(Ports.free()),
                  "--work-dir",
                  dir.resolve("work-" + host).toString(),
                  masterUrl),
              environment(sparkHome, host),
              dir.resolve("worker-" + host + ".log")));
    }
    awaitWorkersAlive();
  }

  private static Map<String, String> environment(Path sparkHome, String host) {
    return Map.of(
        "SPARK_HOME",
        sparkHome.toString(),
        "SPARK_SCALA_VERSION",
        SparkSetup.scalaBinaryVersion(),
        "SPARK_LOCAL_IP",
        host,
        // Daemons write their logs to their stdout, which goes to the log file.
        "SPARK_NO_DAEMONIZE",
        "true");
  }

  /** Polls the Master's JSON status page until it counts every worker ALIVE. */
  private void awaitWorkersAlive() {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + webUiPort + "/json/"))
            .timeout(Duration.ofSeconds(5))
            .build();
    long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
    int alive = -1;
    while (true) {
      for (ForkedJvm jvm : jvms) {
        if (!jvm.isAlive()) {
          throw new IllegalStateException(
              jvm + " exited while the cluster started:\n" + jvm.tail());
        }
      }
      try {
        String body = http.send(request, HttpResponse.BodyHandlers.ofString()).body();
        Matcher m = ALIVE_WORKERS.matcher(body);
        alive = m.find() ? Integer.parseInt(m.group(1)) : -1;
        if (alive >= workerHosts.size()) {
          return;
        }
      } catch (IOException e) {
        // The master's web UI is not listening yet.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while the cluster started", e);
      }
      if (System.nanoTime() > deadline) {
        StringBuilder logs = new StringBuilder();
        jvms.forEach(j -> logs.append("\n--- ").append(j).append('\n').append(j.tail()));
        throw new IllegalStateException(
            "the standalone master reported "
                + alive
                + " of "
                + workerHosts.size()
                + " workers alive after "
                + START_TIMEOUT
                + logs);
      }
      Ports.sleep(200);
    }
  }

  private static void checkBindable(String host) {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(host))) {
      s.getLocalPort();
    } catch (IOException e) {
      throw new IllegalStateException(
          "cannot bind loopback address "
              + host
              + " ("
              + e
              + "): on Linux the whole 127.0.0.0/8 is loopback; elsewhere add the alias"
              + " (macOS: sudo ifconfig lo0 alias "
              + host
              + ")",
          e);
    }
  }

  private void killAll() {
    // Workers (and their executors) before the master, so that no worker restarts an executor.
    for (int i = jvms.size() - 1; i >= 0; i--) {
      jvms.get(i).killWithDescendants();
    }
  }

  /** Kills every process of the cluster, executors included. */
  @Override
  public void close() {
    killAll();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException e) {
      // The JVM is shutting down: the hook runs (harmlessly) anyway.
    }
  }

  @Override
  public String toString() {
    return "standalone cluster " + masterUrl + " workers " + workerHosts + " logs " + dir;
  }
}
