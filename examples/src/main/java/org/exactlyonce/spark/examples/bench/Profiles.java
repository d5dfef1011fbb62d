package org.exactlyonce.spark.examples.bench;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordingFile;

/**
 * Where a profiled run spent its time: JFR's execution samples of the threads that run the output
 * (Spark's task threads, and on the driver the streaming job thread and the job generator, which
 * computes each batch's offsets), by the method on top of the stack (self) and by every method of
 * the library, Jdbi and the backends' clients on the stack (total).
 */
final class Profiles {
  private Profiles() {}

  static final List<String> OWN =
      List.of(
          "org.exactlyonce.",
          "org.jdbi.",
          "org.postgresql.",
          "com.datastax.",
          "org.apache.kafka.clients.producer.",
          "org.apache.kafka.clients.admin.");

  static String hotFrames(Path jfr) throws Exception {
    Map<String, Integer> self = new HashMap<>();
    Map<String, Integer> total = new HashMap<>();
    int samples = 0;
    for (RecordedEvent e : RecordingFile.readAllEvents(jfr)) {
      if (!e.getEventType().getName().equals("jdk.ExecutionSample") || e.getStackTrace() == null) {
        continue;
      }
      String thread =
          e.getThread("sampledThread") == null
              ? ""
              : String.valueOf(e.getThread("sampledThread").getJavaName());
      if (!thread.startsWith("Executor task launch")
          && !thread.startsWith("streaming-job-executor")
          && !thread.startsWith("JobGenerator")) {
        continue;
      }
      samples++;
      List<RecordedFrame> frames = e.getStackTrace().getFrames();
      if (!frames.isEmpty()) {
        self.merge(name(frames.get(0)), 1, Integer::sum);
      }
      Set<String> seen = new HashSet<>();
      for (RecordedFrame f : frames) {
        String n = name(f);
        if (OWN.stream().anyMatch(n::startsWith) && seen.add(n)) {
          total.merge(n, 1, Integer::sum);
        }
      }
    }
    StringBuilder out = new StringBuilder();
    out.append(String.format("    %,d samples of the output threads%n", samples));
    append(out, "self", self, samples, 8);
    append(out, "total (library, Jdbi, clients)", total, samples, 10);
    return out.toString();
  }

  private static void append(
      StringBuilder out, String title, Map<String, Integer> counts, int samples, int n) {
    out.append("    ").append(title).append(":\n");
    counts.entrySet().stream()
        .sorted(Map.Entry.<String, Integer>comparingByValue().reversed())
        .limit(n)
        .forEach(
            e ->
                out.append(
                    String.format(
                        "      %5.1f %%  %s%n",
                        100.0 * e.getValue() / Math.max(1, samples), e.getKey())));
  }

  private static String name(RecordedFrame f) {
    return f.getMethod().getType().getName() + "." + f.getMethod().getName();
  }
}
