package org.exactlyonce.spark.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.OffsetsToolCommands;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How a stream starts, in the only safe order, written once for every backend. Each step returns
 * the type that offers the next one, so the steps cannot be taken out of order:
 *
 * <ol>
 *   <li>{@link #validate}: every sink checks its outputs, then its offset store (tables, settings),
 *       before anything changes. A deployment that fails a check must not have fenced the running
 *       one.
 *   <li>{@link Validated#takeEpochs}: every sink takes a new writer epoch; from now on an older
 *       driver's commits are {@code FENCED}.
 *   <li>{@link EpochsTaken#resolve}: with Kafka's end offsets read <em>after</em> the epochs (an
 *       older driver could commit until then), read the stored offsets, check them against Kafka,
 *       and store start offsets for partitions without one before the first batch. The start
 *       position applies only to topics a pipeline never stored (its first start); a partition of a
 *       topic it already stored, but without an offset, was added to the topic later and starts at
 *       its earliest offset.
 * </ol>
 */
public final class StartSequence {
  private static final Logger LOG = LoggerFactory.getLogger(StartSequence.class);

  private StartSequence() {}

  /**
   * Step 1: runs every sink's {@link ExactlyOnceSink#checkOutputs() output check}, then opens every
   * sink's offset store and validates it; closes them all if one fails.
   *
   * @throws org.exactlyonce.spark.SinkConfigurationException from the first sink that fails
   */
  public static Validated validate(List<? extends ExactlyOnceSink> sinks) {
    for (ExactlyOnceSink sink : sinks) {
      LOG.info("{}", configurationLine(sink));
    }
    for (ExactlyOnceSink sink : sinks) {
      sink.checkOutputs();
    }
    Map<PipelineId, OffsetStore> stores = new LinkedHashMap<>();
    try {
      for (ExactlyOnceSink sink : sinks) {
        OffsetStore store = sink.openOffsetStore();
        stores.put(sink.pipelineId(), store);
        store.validate();
      }
      return new Validated(stores);
    } catch (RuntimeException e) {
      closeAll(stores, e);
      throw e;
    }
  }

  /**
   * The INFO line a starting stream logs per sink, before anything is opened (so a start that fails
   * shows what it tried): its {@link ExactlyOnceSink#describe() effective configuration}.
   */
  public static String configurationLine(ExactlyOnceSink sink) {
    return "pipeline '" + sink.pipelineId() + "': sink configuration " + sink.describe();
  }

  private static void closeAll(Map<PipelineId, OffsetStore> stores, RuntimeException cause) {
    for (OffsetStore s : stores.values()) {
      try {
        s.close();
      } catch (RuntimeException e) {
        cause.addSuppressed(e);
      }
    }
  }

  /** Every sink validated; nothing changed yet. */
  public static final class Validated implements AutoCloseable {
    private final Map<PipelineId, OffsetStore> stores;

    private Validated(Map<PipelineId, OffsetStore> stores) {
      this.stores = stores;
    }

    /**
     * Step 2: checks every sink's stored offsets against Kafka (still held by Kafka, not past a
     * partition's end, not below their high-water mark) while nothing is fenced yet, then takes a
     * new writer epoch for every sink. A deployment pointed at the wrong cluster, or at offsets
     * moved back by hand, or that a sink cannot run ({@link OffsetStore#checkBeforeEpoch}), stops
     * here without having fenced the running one. Stored offsets are read before Kafka's (both only
     * move forward while a driver runs), so a commit of the running driver in between cannot make
     * them look past the end.
     */
    public EpochsTaken takeEpochs(StartOffsets kafka) {
      Map<PipelineId, Map<TopicPartition, Long>> stored = new LinkedHashMap<>();
      Map<PipelineId, Map<TopicPartition, Long>> marks = new LinkedHashMap<>();
      // The marks before the offsets: the running driver may commit between the two reads (a
      // rolling deploy), and a commit raises a partition's offset and its mark together. Read in
      // this order, the offsets can only be at or past the marks unless they were moved back
      // outside the library; read the other way, a commit in between looked like offsets moved
      // back, and the new deployment refused to start.
      stores.forEach(
          (id, store) -> {
            marks.put(id, store.highWaterMarks());
            stored.put(id, store.storedOffsets());
          });
      kafka.refresh();
      stored.forEach(
          (id, s) -> {
            String tool = stores.get(id).offsetsToolResetOptions();
            kafka.checkStored(id, s, tool);
            checkHighWater(id, s, marks.get(id), kafka.servers(), tool);
          });
      stores.values().forEach(store -> store.checkBeforeEpoch(kafka.partitions()));
      return takeEpochs();
    }

    /** Takes a new writer epoch for every sink, fencing older drivers. */
    EpochsTaken takeEpochs() {
      Map<PipelineId, Long> epochs = new LinkedHashMap<>();
      stores.forEach((id, store) -> epochs.put(id, store.takeWriterEpoch()));
      return new EpochsTaken(stores, epochs);
    }

    @Override
    public void close() {
      closeAll(stores, new RuntimeException("closing offset stores"));
    }
  }

  /** Every sink holds a new writer epoch. */
  public static final class EpochsTaken {
    private final Map<PipelineId, OffsetStore> stores;
    private final Map<PipelineId, Long> epochs;

    private EpochsTaken(Map<PipelineId, OffsetStore> stores, Map<PipelineId, Long> epochs) {
      this.stores = stores;
      this.epochs = Map.copyOf(epochs);
    }

    /**
     * Step 3: reads Kafka's offsets afresh, then each sink's stored offsets; stores start offsets
     * for partitions without one.
     *
     * @throws org.exactlyonce.spark.OffsetMismatchException if a stored offset is no longer in
     *     Kafka or lies past its end
     */
    public Started resolve(StartOffsets kafka, StartPosition start) {
      kafka.refresh();
      Map<PipelineId, Map<TopicPartition, Long>> storedBySink = new LinkedHashMap<>();
      Map<TopicPartition, Long> from = new HashMap<>();
      stores.forEach(
          (id, store) -> {
            long epoch = epochs.get(id);
            Map<TopicPartition, Long> stored =
                new HashMap<>(store.storedOffsetsAtStart(kafka.partitions(), epoch));
            String tool = store.offsetsToolResetOptions();
            kafka.checkStored(id, stored, tool);
            checkHighWater(id, stored, store.highWaterMarks(), kafka.servers(), tool);
            Set<String> storedTopics =
                stored.keySet().stream().map(TopicPartition::topic).collect(Collectors.toSet());
            // The start position is for where a pipeline first starts, and for topics it is told
            // to read anew (added to a subscribe list). A partition added to a topic it reads, or a
            // topic its pattern has come to match since (created while it was down, or matched by
            // a wider pattern), is read from its first record, as the source reads one it finds
            // while running; unless an explicit start position names that partition of a pattern.
            boolean discovered = kafka.discoversTopics() && !stored.isEmpty();
            List<TopicPartition> firstStart = new ArrayList<>();
            List<TopicPartition> added = new ArrayList<>();
            for (TopicPartition tp : kafka.partitions()) {
              if (stored.containsKey(tp)) {
                continue;
              }
              boolean named =
                  start.kind() == StartPosition.Kind.EXPLICIT && start.offsets().containsKey(tp);
              if (storedTopics.contains(tp.topic()) || (discovered && !named)) {
                added.add(tp);
              } else {
                firstStart.add(tp);
              }
            }
            Map<TopicPartition, Long> resolved = new HashMap<>(kafka.resolve(start, firstStart));
            resolved.putAll(kafka.resolve(StartPosition.earliest(), added));
            if (!resolved.isEmpty()) {
              store.storeStartOffsets(resolved, epoch);
              stored.putAll(resolved);
            }
            if (!firstStart.isEmpty()) {
              LOG.info("pipeline '{}': first start of {} at {}", id, firstStart, start);
            }
            if (!added.isEmpty()) {
              LOG.info(
                  "pipeline '{}': partitions {} are new to it since it first started (added to"
                      + " topics it reads, or of topics its pattern has come to match); they start"
                      + " at their earliest offset, whatever the start position",
                  id,
                  added);
            }
            for (TopicPartition tp : kafka.partitions()) {
              from.merge(tp, stored.get(tp), Math::min);
            }
            storedBySink.put(id, Map.copyOf(stored));
            LOG.info("pipeline '{}': writer epoch {}, starting at {}", id, epoch, stored);
          });
      return new Started(epochs, storedBySink, from);
    }
  }

  /**
   * Refuses stored offsets below their high-water mark: moved back outside the library. Starting
   * there would write the records in between a second time. (A restore of the whole offsets table
   * from a backup restores the marks too; detecting that needs a mark kept elsewhere.)
   *
   * @throws OffsetMismatchException naming pipeline, partition and both offsets
   */
  static void checkHighWater(
      PipelineId id,
      Map<TopicPartition, Long> stored,
      Map<TopicPartition, Long> highWater,
      Object servers,
      String toolResetOptions) {
    List<String> rewound = new ArrayList<>();
    Map<TopicPartition, Long> back =
        new java.util.TreeMap<>(
            java.util.Comparator.comparing(TopicPartition::topic)
                .thenComparingInt(TopicPartition::partition));
    Map<TopicPartition, Long> again = new HashMap<>();
    stored.forEach(
        (tp, s) -> {
          Long hw = highWater.get(tp);
          if (hw != null && s < hw) {
            back.put(tp, hw);
            again.put(tp, s);
            rewound.add(tp + ": stored offset " + s + " is below its high-water mark " + hw);
          }
        });
    if (!rewound.isEmpty()) {
      throw new OffsetMismatchException(
          "pipeline '"
              + id
              + "' cannot start: "
              + String.join("; ", rewound)
              + ". The offsets were moved back outside the library (by hand, or by restoring"
              + " the offset column alone): starting would write those records a second time."
              + " Nothing was written."
              + " To re-process them on purpose, rewind through the library:"
              + " ExactlyOnce.rewind(sink, offsets), which moves the high-water mark too."
              + OffsetsToolCommands.resetSentence("Or rewind", id, servers, toolResetOptions, again)
              + " Otherwise put the stored offsets back to "
              + back
              + "."
              + OffsetsToolCommands.resetSentence("Put back", id, servers, toolResetOptions, back),
          List.of());
    }
  }

  /**
   * The outcome of a start.
   *
   * @param epochs the writer epoch of each sink
   * @param stored the offsets each sink has stored now (every partition of the stream)
   * @param from per partition, the lowest stored offset over the sinks: where the stream starts
   */
  public record Started(
      Map<PipelineId, Long> epochs,
      Map<PipelineId, Map<TopicPartition, Long>> stored,
      Map<TopicPartition, Long> from) {
    public Started {
      epochs = Map.copyOf(epochs);
      stored = Map.copyOf(stored);
      from = Map.copyOf(from);
    }
  }
}
