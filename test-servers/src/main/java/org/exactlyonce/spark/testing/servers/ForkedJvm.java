package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A server running in a child JVM, its output in a log file. */
final class ForkedJvm {
  private final String name;
  private final Process process;
  private final Path log;

  private ForkedJvm(String name, Process process, Path log) {
    this.name = name;
    this.process = process;
    this.log = log;
  }

  /** Starts {@code mainClass} with {@code classpath}, JVM options and arguments. */
  static ForkedJvm start(
      String name,
      String classpath,
      List<String> jvmOptions,
      String mainClass,
      List<String> args,
      Path log) {
    return start(name, classpath, jvmOptions, mainClass, args, Map.of(), log);
  }

  /** Like {@link #start(String, String, List, String, List, Path)}, with environment variables. */
  static ForkedJvm start(
      String name,
      String classpath,
      List<String> jvmOptions,
      String mainClass,
      List<String> args,
      Map<String, String> environment,
      Path log) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvmOptions);
    cmd.add("-cp");
    cmd.add(classpath);
    cmd.add(mainClass);
    cmd.addAll(args);
    try {
      Files.createDirectories(log.getParent());
      ProcessBuilder builder =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
      builder.environment().putAll(environment);
      Process p = builder.start();
      return new ForkedJvm(name, p, log);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + name, e);
    }
  }

  /** Runs a tool to completion, failing with its output if it exits non-zero. */
  static void run(
      String name,
      String classpath,
      List<String> jvmOptions,
      String mainClass,
      List<String> args,
      Path log) {
    ForkedJvm jvm = start(name, classpath, jvmOptions, mainClass, args, log);
    try {
      if (!jvm.process.waitFor(120, TimeUnit.SECONDS)) {
        jvm.kill();
        throw new IllegalStateException(name + " did not finish in 120 s:\n" + jvm.tail());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    if (jvm.process.exitValue() != 0) {
      throw new IllegalStateException(
          name + " exited with " + jvm.process.exitValue() + ":\n" + jvm.tail());
    }
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** SIGKILL: the server gets no chance to flush or clean up. */
  void kill() {
    process.destroyForcibly();
    waitFor(30);
  }

  /**
   * SIGKILL to the JVM's descendants first (for a Spark worker: the executor JVMs it started, which
   * would otherwise outlive it), then to the JVM itself.
   */
  void killWithDescendants() {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    kill();
  }

  /** SIGTERM, then SIGKILL if it has not exited in {@code seconds}. */
  void stop(int seconds) {
    process.destroy();
    if (!waitFor(seconds)) {
      kill();
    }
  }

  private boolean waitFor(int seconds) {
    try {
      return process.waitFor(seconds, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** The last lines of the log, for error messages. */
  String tail() {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    } catch (IOException | RuntimeException e) {
      return "(no log at " + log + ")";
    }
  }

  @Override
  public String toString() {
    return name + "(pid " + process.pid() + ", log " + log + ")";
  }
}
