package org.exactlyonce.spark.examples.bench;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedThread;
import jdk.jfr.consumer.RecordingFile;

/**
 * Where a profiled run's batches spent their time, from JFR: for each part of the work (Spark's
 * tasks, the driver's output job, the driver's batch generation), the milliseconds per batch spent
 * running Java code (sampled), in blocking socket I/O (the PostgreSQL driver), parked (waiting for
 * a future, a latch, a pool: the Kafka and Cassandra clients' requests) and in monitor waits or
 * sleeps, each attributed to the code that asked for it. Not counted: a thread in the Kafka
 * consumer's own selector (Spark's read of the input), which JFR does not time per thread.
 *
 * <p>Why not execution samples alone: most of the price of exactly-once at small batches is waiting
 * (a commit's round trip and fsync, a transaction marker), which a CPU profile does not show. Only
 * events inside a counted batch (from its batch time to the end of its jobs, the first batch
 * excluded) are counted, and a thread is counted only while it runs the batch's work (a task, the
 * output job, batch generation), so idle pool threads add nothing.
 */
final class Profiles {
  private Profiles() {}

  static final Duration SAMPLE_PERIOD = Duration.ofMillis(2);

  /** A recording with every source of the account enabled at its finest useful setting. */
  static Recording recording(Path file) throws Exception {
    Recording r = new Recording(jdk.jfr.Configuration.getConfiguration("profile"));
    r.enable("jdk.ExecutionSample").withPeriod(SAMPLE_PERIOD).withStackTrace();
    // Not jdk.NativeMethodSample: JFR samples one thread in native code per period, among all of
    // them (the clients' idle I/O threads too), so it says nothing of one thread's time. Blocking
    // socket I/O (the PostgreSQL driver) has events of its own.
    r.enable("jdk.SocketRead").withThreshold(Duration.ZERO).withStackTrace();
    r.enable("jdk.SocketWrite").withThreshold(Duration.ZERO).withStackTrace();
    for (String timed :
        List.of(
            "jdk.ThreadPark", "jdk.JavaMonitorWait", "jdk.JavaMonitorEnter", "jdk.ThreadSleep")) {
      r.enable(timed).withThreshold(Duration.ZERO).withStackTrace();
    }
    r.setToDisk(true);
    r.setDestination(file);
    return r;
  }

  /** A part of a batch's work, recognised by a frame on the thread's stack. */
  private enum Part {
    TASKS("Spark tasks (executor)", "org.apache.spark.executor.Executor$TaskRunner.run"),
    OUTPUT_JOB(
        "driver output job", "org.apache.spark.streaming.scheduler.JobScheduler$JobHandler.run"),
    GENERATION(
        "driver batch generation",
        "org.apache.spark.streaming.scheduler.JobGenerator.generateJobs");

    final String label;
    final String frame;

    Part(String label, String frame) {
      this.label = label;
      this.frame = frame;
    }
  }

  private static final List<String> STATES = List.of("java", "socket", "parked", "waiting");

  /**
   * The account of the events of {@code jfr} that fall in {@code windows} ({@code [from, to]} in
   * epoch milliseconds, one per counted batch).
   */
  static String account(Path jfr, List<long[]> windows, String sparkTimes) throws Exception {
    double sampleMs = SAMPLE_PERIOD.toNanos() / 1e6;
    Map<Part, Map<String, Double>> byState = new HashMap<>();
    Map<Part, Map<String, Double>> byCaller = new HashMap<>();
    Map<String, Double> otherThreads = new HashMap<>();
    double gcPauses = 0;
    for (RecordedEvent e : RecordingFile.readAllEvents(jfr)) {
      String type = e.getEventType().getName();
      if (type.equals("jdk.GarbageCollection")) {
        if (window(windows, e.getStartTime()) != null) {
          gcPauses += e.getDuration("sumOfPauses").toNanos() / 1e6;
        }
        continue;
      }
      String state;
      double ms;
      RecordedThread thread;
      switch (type) {
        case "jdk.ExecutionSample" -> {
          state = "java";
          ms = sampleMs;
          thread = e.getThread("sampledThread");
        }
        case "jdk.SocketRead", "jdk.SocketWrite" -> {
          state = "socket";
          ms = e.getDuration().toNanos() / 1e6;
          thread = e.getThread();
        }
        case "jdk.ThreadPark" -> {
          state = "parked";
          ms = e.getDuration().toNanos() / 1e6;
          thread = e.getThread();
        }
        case "jdk.JavaMonitorWait", "jdk.JavaMonitorEnter", "jdk.ThreadSleep" -> {
          state = "waiting";
          ms = e.getDuration().toNanos() / 1e6;
          thread = e.getThread();
        }
        default -> {
          continue;
        }
      }
      if (thread == null || e.getStackTrace() == null) {
        continue;
      }
      long[] w = window(windows, e.getStartTime());
      if (w == null) {
        continue;
      }
      // A wait that outlasts its batch counts only up to the batch's end.
      ms = Math.min(ms, Math.max(0, w[1] - e.getStartTime().toEpochMilli()));
      List<RecordedFrame> frames = e.getStackTrace().getFrames();
      Part part = e.getStackTrace().isTruncated() ? partOf(thread) : part(frames);
      if (part == null && state.equals("java")) {
        // What else ran Java code meanwhile: Spark's scheduler, the clients' I/O threads, an
        // in-process server.
        otherThreads.merge(
            String.valueOf(thread.getJavaName())
                .replaceAll("[-#\\s]*\\d+$", "")
                .replaceAll("\\d+", "N"),
            ms,
            Double::sum);
      }
      if (part == null || ms <= 0) {
        continue;
      }
      byState.computeIfAbsent(part, k -> new HashMap<>()).merge(state, ms, Double::sum);
      byCaller
          .computeIfAbsent(part, k -> new HashMap<>())
          .merge(state + "  " + caller(frames), ms, Double::sum);
    }
    int n = windows.size();
    StringBuilder out = new StringBuilder();
    out.append(
        String.format(
            "    ms per batch, %d counted batches; GC pauses %s%n    Spark: %s%n",
            n, fmt(gcPauses / n), sparkTimes));
    out.append(
        String.format(
            "    JFR, summed over threads (Java code sampled every %s ms):%n", fmt(sampleMs)));
    for (Part part : Part.values()) {
      Map<String, Double> s = byState.getOrDefault(part, Map.of());
      double total = s.values().stream().mapToDouble(Double::doubleValue).sum();
      if (total / n < 0.5) {
        continue;
      }
      StringBuilder states = new StringBuilder();
      for (String st : STATES) {
        states.append(String.format("  %s %s", st, fmt(s.getOrDefault(st, 0.0) / n)));
      }
      out.append(String.format("    %s: %s ms  =%s%n", part.label, fmt(total / n), states));
      byCaller.getOrDefault(part, Map.of()).entrySet().stream()
          .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
          .limit(8)
          .filter(c -> c.getValue() / n >= 0.5)
          .forEach(
              c -> out.append(String.format("      %7s  %s%n", fmt(c.getValue() / n), c.getKey())));
    }
    double other = otherThreads.values().stream().mapToDouble(Double::doubleValue).sum();
    out.append(String.format("    other threads running Java code: %s ms%n", fmt(other / n)));
    otherThreads.entrySet().stream()
        .sorted(Map.Entry.<String, Double>comparingByValue().reversed())
        .limit(5)
        .filter(c -> c.getValue() / n >= 0.5)
        .forEach(
            c -> out.append(String.format("      %7s  %s%n", fmt(c.getValue() / n), c.getKey())));
    return out.toString();
  }

  private static long[] window(List<long[]> windows, Instant t) {
    return window(windows, t.toEpochMilli());
  }

  /** The window ({@code [from, to]}, epoch ms) holding {@code ms}, or null. */
  static long[] window(List<long[]> windows, long ms) {
    for (long[] w : windows) {
      if (ms >= w[0] && ms <= w[1]) {
        return w;
      }
    }
    return null;
  }

  /** For a stack too deep to hold its bottom frames: a deep stack is never an idle thread's. */
  private static Part partOf(RecordedThread thread) {
    String name = String.valueOf(thread.getJavaName());
    if (name.startsWith("Executor task launch")) {
      return Part.TASKS;
    }
    if (name.startsWith("streaming-job-executor")) {
      return Part.OUTPUT_JOB;
    }
    return name.startsWith("JobGenerator") ? Part.GENERATION : null;
  }

  private static Part part(List<RecordedFrame> frames) {
    for (int i = frames.size() - 1; i >= 0; i--) {
      String n = name(frames.get(i));
      for (Part p : Part.values()) {
        if (n.equals(p.frame)) {
          return p;
        }
      }
    }
    return null;
  }

  /**
   * Who asked for the time: the nearest frame of the library, the benchmark or Spark, and the call
   * it made into a client, a driver or the JDK.
   */
  static String caller(List<RecordedFrame> frames) {
    for (int i = 0; i < frames.size(); i++) {
      String n = name(frames.get(i));
      if (n.startsWith("org.exactlyonce.") || n.startsWith("org.apache.spark.")) {
        String anchor = shortName(n);
        if (i == 0) {
          return anchor;
        }
        return anchor + " > " + shortName(name(frames.get(i - 1)));
      }
    }
    return frames.isEmpty() ? "?" : shortName(name(frames.get(0)));
  }

  private static String shortName(String n) {
    int method = n.lastIndexOf('.');
    String type = n.substring(0, method);
    String m = n.substring(method + 1).replaceAll("\\$[0-9a-f]{6,}\\$\\d+$", "");
    String simple = type.substring(type.lastIndexOf('.') + 1).replaceAll("\\$\\$Lambda.*", "");
    return simple + "." + m;
  }

  private static String name(RecordedFrame f) {
    return f.getMethod().getType().getName() + "." + f.getMethod().getName();
  }

  private static String fmt(double v) {
    return v >= 10 ? String.format("%,.0f", v) : String.format("%.1f", v);
  }
}
