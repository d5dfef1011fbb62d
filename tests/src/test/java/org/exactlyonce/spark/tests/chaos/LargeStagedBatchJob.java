package org.exactlyonce.spark.tests.chaos;

import com.sun.management.GarbageCollectionNotificationInfo;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import javax.management.NotificationEmitter;
import javax.management.NotificationListener;
import javax.management.openmbean.CompositeData;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.spark.SparkConf;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.exactlyonce.spark.ExactlyOnce;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.jdbc.JdbcBatchSink;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.exactlyonce.spark.jdbc.JdbcSink;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import scala.Tuple2;
import scala.Tuple3;

/**
 * A driver (run in its own JVM with a small heap by {@link LargeStagedBatchIT}): one batch of all
 * the topic's records, counted per key after a shuffle, each count written with a padded value
 * column, through the per-batch sink either staged (executors write) or collected (the driver
 * writes). Arguments: bootstrap servers, JDBC URL, user, topic, expected input records, mode
 * ({@code staged} or {@code collected}), bytes of the value column, result file.
 *
 * <p>On success it exits 0 and writes the result file (a properties file): {@code batches} (the
 * batches that read records), {@code records} (records they read), {@code rowsWritten}, {@code
 * peakHeapBytes} (the sum of the heap pools' peak usage since the JVM started: with the serial
 * collector the pools partition the heap, so this bounds the heap ever used from above), {@code
 * peakHeapAfterFullGcBytes} (the most heap live after a full collection, 0 if none ran), {@code
 * maxHeapBytes} and {@code firstRowThread} (the thread that turned the first result into a table
 * row: an executor's task thread when staged, the driver's streaming job thread when collected).
 */
public final class LargeStagedBatchJob {
  private static final AtomicReference<String> FIRST_ROW_THREAD = new AtomicReference<>();

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    JdbcSettings db = JdbcSettings.url(args[1]).user(args[2]);
    String topic = args[3];
    long expected = Long.parseLong(args[4]);
    String mode = args[5];
    int valueBytes = Integer.parseInt(args[6]);
    Path resultFile = Path.of(args[7]);

    SparkConf conf =
        SparkSetup.local("large-batch-" + mode, 2, 4)
            // Spark keeps 300 MiB of any heap for itself and refuses heaps under 450 MiB; this
            // driver's heap is deliberately smaller than the batch's results, so it reserves less.
            .set("spark.testing.reservedMemory", Long.toString(32L << 20));
    JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.seconds(2));
    Map<String, Object> params = new HashMap<>();
    params.put("bootstrap.servers", bootstrap);
    params.put("key.deserializer", StringDeserializer.class);
    params.put("value.deserializer", StringDeserializer.class);

    JdbcBatchSink.Builder<Tuple3<String, Long, String>> builder =
        JdbcSink.<Tuple3<String, Long, String>>perBatch("large-batch-" + mode)
            .connection(db)
            .table("per_key_" + mode)
            .columns("k", "n", "v")
            .values(
                t -> {
                  if (FIRST_ROW_THREAD.compareAndSet(null, Thread.currentThread().getName())) {
                    System.out.println(
                        "LargeStagedBatchJob: first result row mapped on thread "
                            + FIRST_ROW_THREAD.get());
                  }
                  return List.of(t._1(), t._2(), t._3());
                })
            // Upserts on the key (each key comes once: the shuffle reduced them), so the collected
            // path merges the whole batch per key on the driver before writing it. A plain upsert
            // (not accumulating): one pass over the table, which is all this test measures.
            .upsertOn("k")
            .batchSize(5000);
    JdbcBatchSink<Tuple3<String, Long, String>> sink =
        switch (mode) {
          case "staged" -> builder.staged().build();
          case "collected" -> builder.build();
          default -> throw new IllegalArgumentException("mode " + mode);
        };
    ExactlyOnceStream<String, String> stream =
        ExactlyOnce.directStream(ssc, params, List.of(topic), sink);
    // The shuffle holds only the short keys, in 16 partitions (small per task); the value column
    // is added after it, one row at a time, so the aggregation needs little memory in either mode.
    ExactlyOnce.foreachBatch(
        stream,
        rdd ->
            rdd.mapToPair(r -> new Tuple2<>(r.key(), 1L))
                .reduceByKey(Long::sum, 16)
                .map(t -> new Tuple3<>(t._1(), t._2(), pad(t._1(), valueBytes))),
        sink);
    AtomicLong batches = new AtomicLong();
    AtomicLong records = new AtomicLong();
    AtomicLong rowsWritten = new AtomicLong();
    stream.onBatch(
        b -> {
          System.out.println("LargeStagedBatchJob: " + b);
          if (b.recordsIn() > 0) {
            rowsWritten.addAndGet(b.rowsWritten());
            batches.incrementAndGet();
            records.addAndGet(b.recordsIn());
          }
        });
    AtomicLong peakAfterFullGc = watchHeapAfterFullCollections();
    ssc.start();
    while (stream.failure() == null && records.get() < expected) {
      ssc.awaitTerminationOrTimeout(1000);
    }
    long peakHeap = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP) {
        peakHeap += pool.getPeakUsage().getUsed();
      }
    }
    ssc.stop(true, true);
    String result =
        "batches="
            + batches.get()
            + "\nrecords="
            + records.get()
            + "\nrowsWritten="
            + rowsWritten.get()
            + "\npeakHeapBytes="
            + peakHeap
            + "\npeakHeapAfterFullGcBytes="
            + peakAfterFullGc.get()
            + "\nmaxHeapBytes="
            + Runtime.getRuntime().maxMemory()
            + "\nfirstRowThread="
            + FIRST_ROW_THREAD.get()
            + "\n";
    System.out.println("LargeStagedBatchJob: " + result.replace('\n', ' '));
    Files.writeString(resultFile, result);
    System.exit(stream.failure() == null ? 0 : 1);
  }

  /**
   * The most heap in use right after a full collection (what was live then), over all full
   * collections from now on; 0 if none ran.
   */
  private static AtomicLong watchHeapAfterFullCollections() {
    Set<String> heapPools =
        ManagementFactory.getMemoryPoolMXBeans().stream()
            .filter(p -> p.getType() == MemoryType.HEAP)
            .map(MemoryPoolMXBean::getName)
            .collect(Collectors.toSet());
    AtomicLong peak = new AtomicLong();
    NotificationListener listener =
        (n, handback) -> {
          if (!GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION.equals(
              n.getType())) {
            return;
          }
          GarbageCollectionNotificationInfo info =
              GarbageCollectionNotificationInfo.from((CompositeData) n.getUserData());
          if (info.getGcAction().equals("end of major GC")) {
            long after =
                info.getGcInfo().getMemoryUsageAfterGc().entrySet().stream()
                    .filter(e -> heapPools.contains(e.getKey()))
                    .mapToLong(e -> e.getValue().getUsed())
                    .sum();
            peak.accumulateAndGet(after, Math::max);
          }
        };
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      ((NotificationEmitter) gc).addNotificationListener(listener, null, null);
    }
    return peak;
  }

  /** The key repeated to {@code bytes} ASCII characters: a value column of a known size. */
  static String pad(String key, int bytes) {
    StringBuilder s = new StringBuilder(bytes + key.length() + 1);
    while (s.length() < bytes) {
      s.append(key).append('|');
    }
    s.setLength(bytes);
    return s.toString();
  }
}
