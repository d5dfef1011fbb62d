package org.exactlyonce.spark.kafka.internal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.spi.OffsetsToolCommands;

/**
 * The sink's progress: the committed offsets of its dedicated consumer group, each with the writer
 * epoch that committed it in the offset's metadata ({@code eos:epoch=N}).
 */
public final class Progress {
  private static final String EPOCH_PREFIX = "eos:epoch=";

  private Progress() {}

  /** The metadata that records writer {@code epoch}. */
  public static String metadata(long epoch) {
    return EPOCH_PREFIX + epoch;
  }

  /**
   * Whether the library wrote {@code offset}: every write of a progress offset carries an epoch in
   * its metadata, and {@code kafka-consumer-groups --reset-offsets} (or any other tool) replaces
   * it.
   */
  public static boolean writtenByTheLibrary(OffsetAndMetadata offset) {
    return offset.metadata() != null && offset.metadata().startsWith(EPOCH_PREFIX);
  }

  /**
   * Refuses progress offsets set outside the library: moved back they would write the records in
   * between a second time, moved forward they would skip them.
   *
   * @throws OffsetMismatchException naming pipeline, partitions, offsets and the fix, if any of
   *     {@code stored} was
   */
  public static void refuseSetOutsideTheLibrary(
      KafkaSpec<?> spec, Map<TopicPartition, OffsetAndMetadata> stored) {
    String pipeline = spec.pipelineId().value();
    String group = spec.progressGroup();
    Map<TopicPartition, Long> asFound = new HashMap<>();
    List<TopicPartition> partitions = new ArrayList<>(stored.keySet());
    partitions.sort(
        java.util.Comparator.comparing(TopicPartition::topic)
            .thenComparingInt(TopicPartition::partition));
    List<String> foreign = new ArrayList<>();
    for (TopicPartition tp : partitions) {
      OffsetAndMetadata om = stored.get(tp);
      if (om != null && !writtenByTheLibrary(om)) {
        asFound.put(tp, om.offset());
        foreign.add(
            tp
                + ": stored offset "
                + om.offset()
                + " was set outside the library (metadata '"
                + om.metadata()
                + "' where the library writes "
                + EPOCH_PREFIX
                + "<writer epoch>)");
      }
    }
    if (!foreign.isEmpty()) {
      throw new OffsetMismatchException(
          "pipeline '"
              + pipeline
              + "': progress group '"
              + group
              + "': "
              + String.join("; ", foreign)
              + ", for example by kafka-consumer-groups --reset-offsets. Moved back, the records"
              + " in between would be written a second time; moved forward, they would be"
              + " skipped. Nothing was written. To process from there on purpose, rewind through"
              + " the library: ExactlyOnce.rewind(sink, offsets) with those offsets; otherwise"
              + " put the offsets back where the pipeline left them."
              + OffsetsToolCommands.resetSentence(
                  "To process from there on purpose",
                  spec.pipelineId(),
                  null,
                  spec.offsetsToolResetOptions(),
                  asFound),
          List.of());
    }
  }

  private static final String KNOWN = ";known=";

  /**
   * The metadata of the epoch marker: writer {@code epoch} and, per source topic, how many of its
   * partitions the pipeline has stored offsets for ({@code eos:epoch=N;known=topic:4,other:8}).
   * Topic names hold only {@code [A-Za-z0-9._-]}, so the separators are unambiguous.
   */
  public static String markerMetadata(long epoch, Map<String, Integer> known) {
    if (known == null || known.isEmpty()) {
      return metadata(epoch);
    }
    StringBuilder b = new StringBuilder(metadata(epoch)).append(KNOWN);
    new java.util.TreeMap<>(known)
        .forEach(
            (t, n) ->
                b.append(b.charAt(b.length() - 1) == '=' ? "" : ",")
                    .append(t)
                    .append(':')
                    .append(n));
    return b.toString();
  }

  /**
   * The partition counts recorded in an epoch marker's metadata; null if it records none (a marker
   * written by an earlier version, or no marker).
   */
  public static Map<String, Integer> knownPartitions(OffsetAndMetadata marker) {
    if (marker == null || marker.metadata() == null) {
      return null;
    }
    int at = marker.metadata().indexOf(KNOWN);
    if (at < 0) {
      return null;
    }
    Map<String, Integer> known = new HashMap<>();
    for (String entry : marker.metadata().substring(at + KNOWN.length()).split(",")) {
      int colon = entry.lastIndexOf(':');
      if (colon > 0) {
        try {
          known.put(entry.substring(0, colon), Integer.parseInt(entry.substring(colon + 1)));
        } catch (NumberFormatException e) {
          return null; // not ours: trust nothing in it
        }
      }
    }
    return known;
  }

  /**
   * The writer epoch recorded in {@code offset}'s metadata; 0 if none (or no offset). Whatever
   * follows the number after a {@code ;} is other information (see {@link #markerMetadata}).
   */
  public static long epochOf(OffsetAndMetadata offset) {
    if (offset == null
        || offset.metadata() == null
        || !offset.metadata().startsWith(EPOCH_PREFIX)) {
      return 0;
    }
    String rest = offset.metadata().substring(EPOCH_PREFIX.length());
    int end = rest.indexOf(';');
    try {
      return Long.parseLong(end < 0 ? rest : rest.substring(0, end));
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /**
   * The committed offsets of {@code group} for {@code partitions} (all it has if null), reading
   * only stable offsets: an offset written by a transaction that is still open is waited for, never
   * returned. Partitions without an offset are absent.
   *
   * <p>Why the partitions are always named: with {@code requireStable}, the 3.4 admin client
   * silently leaves out a partition whose offset is held by an open transaction (seen against a 4.1
   * broker), which would read as "no offset". Named partitions come back with a null for "no
   * offset", so a missing one means "not stable yet", and the read is repeated.
   */
  public static Map<TopicPartition, OffsetAndMetadata> read(
      Admin admin, String group, Collection<TopicPartition> partitions, long timeoutMs) {
    Collection<TopicPartition> named =
        partitions != null ? partitions : fetch(admin, group, null, false, timeoutMs).keySet();
    if (named.isEmpty()) {
      return Map.of();
    }
    Map<TopicPartition, OffsetAndMetadata> stable =
        readIfStable(admin, group, named, timeoutMs, timeoutMs);
    if (stable == null) {
      throw new ExactlyOnceException(
          "the progress offsets of "
              + named
              + " in consumer group '"
              + group
              + "' stayed held by an open transaction for "
              + timeoutMs
              + " ms: a producer of this sink died or hangs inside a transaction; the broker"
              + " aborts it after its transaction timeout, and the task is retried");
    }
    return stable;
  }

  /**
   * Like {@link #read}, but returns null instead of failing when an open transaction still holds
   * one of the offsets after {@code waitMs}: the caller can end that transaction (a new producer of
   * its transactional id aborts it) rather than wait for the broker's transaction timeout. Each
   * read of the group may take {@code timeoutMs}.
   */
  public static Map<TopicPartition, OffsetAndMetadata> readIfStable(
      Admin admin,
      String group,
      Collection<TopicPartition> partitions,
      long waitMs,
      long timeoutMs) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(waitMs);
    while (true) {
      Map<TopicPartition, OffsetAndMetadata> all = fetch(admin, group, partitions, true, timeoutMs);
      if (all.keySet().containsAll(partitions)) {
        Map<TopicPartition, OffsetAndMetadata> present = new HashMap<>();
        all.forEach(
            (tp, om) -> {
              if (om != null) {
                present.put(tp, om);
              }
            });
        return present;
      }
      if (System.nanoTime() > deadline) {
        return null;
      }
      sleep(50);
    }
  }

  /**
   * The offsets {@code group} has committed, without waiting for open transactions: the offsets of
   * open transactions are not included. For finding the partitions and the highest writer epoch.
   */
  public static Map<TopicPartition, OffsetAndMetadata> committedSoFar(
      Admin admin, String group, long timeoutMs) {
    return fetch(admin, group, null, false, timeoutMs);
  }

  private static Map<TopicPartition, OffsetAndMetadata> fetch(
      Admin admin,
      String group,
      Collection<TopicPartition> partitions,
      boolean stable,
      long timeoutMs) {
    ListConsumerGroupOffsetsSpec spec = new ListConsumerGroupOffsetsSpec();
    if (partitions != null) {
      spec.topicPartitions(List.copyOf(partitions));
    }
    try {
      Map<TopicPartition, OffsetAndMetadata> all =
          admin
              .listConsumerGroupOffsets(
                  Map.of(group, spec),
                  new ListConsumerGroupOffsetsOptions()
                      .requireStable(stable)
                      .timeoutMs((int) timeoutMs))
              .partitionsToOffsetAndMetadata(group)
              .get(timeoutMs, TimeUnit.MILLISECONDS);
      if (partitions == null) {
        all = new HashMap<>(all);
        all.values().removeIf(java.util.Objects::isNull);
      }
      return all;
    } catch (ExecutionException e) {
      throw new ExactlyOnceException(
          "reading the progress offsets of consumer group '" + group + "' failed: " + e.getCause(),
          e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ExactlyOnceException("interrupted while reading progress offsets", e);
    } catch (java.util.concurrent.TimeoutException e) {
      throw new ExactlyOnceException(
          "reading the progress offsets of consumer group '"
              + group
              + "' timed out after "
              + timeoutMs
              + " ms",
          e);
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ExactlyOnceException("interrupted while reading progress offsets", e);
    }
  }
}
