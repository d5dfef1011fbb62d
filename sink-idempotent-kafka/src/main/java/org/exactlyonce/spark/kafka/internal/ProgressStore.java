package org.exactlyonce.spark.kafka.internal;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TransactionalIdAuthorizationException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.SourceRange;
import org.exactlyonce.spark.WriterFencedException;
import org.exactlyonce.spark.spi.CommitProtocol;
import org.exactlyonce.spark.spi.CommitUnit;
import org.exactlyonce.spark.spi.FaultPoints;
import org.exactlyonce.spark.spi.OffsetStore;
import org.exactlyonce.spark.spi.OffsetsToolCommands;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The driver's view of a Kafka sink's progress: the offsets of its dedicated consumer group.
 *
 * <p>Writer epochs are taken by compare-and-set (see {@link #takeWriterEpoch()}): the latest one is
 * the committed offset of a second group, {@link KafkaSpec#epochGroup()}, written only in
 * transactions of one per-pipeline transactional id. Each epoch is then stamped on the progress
 * offsets, where the executors' commits read it.
 *
 * <p>In transactional mode every write of an offset goes through the transactional id of its source
 * partition, so it is serialised with the executors' commits: taking a new writer epoch initialises
 * a producer for each stored partition (which fences every older producer of that id and aborts its
 * open transaction), then re-stamps the partition's offset with the new epoch in a transaction of
 * its own. A zombie task of an older driver is fenced at its next call, and when it starts over it
 * reads the newer epoch and stops ({@link CommitOutcome#FENCED}).
 *
 * <p>Without transactions, offsets are written with the admin client after a read and a check; the
 * outputs of that mode are at-least-once on the wire anyway, and the reader-side deduplication is
 * exact whatever the offsets do.
 */
public final class ProgressStore implements OffsetStore {
  private static final Logger LOG = LoggerFactory.getLogger(ProgressStore.class);
  private static final String MAX_TIMEOUT = "transaction.max.timeout.ms";

  /**
   * Fault point: on the driver, after {@link #takeWriterEpoch()} read the current epoch, before it
   * stored the next one. Tests interleave two starting drivers here.
   */
  public static final String EPOCH_READ = "kafka.epoch-read";

  /**
   * Fault point: on the driver, after stamping an epoch on a partition read its offset, before it
   * wrote it back.
   */
  public static final String STAMP_READ = "kafka.stamp-read";

  private final KafkaSpec<?> spec;
  private final Admin admin;

  public ProgressStore(KafkaSpec<?> spec) {
    this.spec = spec;
    this.admin = Admin.create(spec.adminProperties());
  }

  /**
   * The broker settings the progress group relies on, and that the group is dedicated to this sink:
   * offsets only, the output topics are {@link KafkaOutputCheck}'s.
   */
  @Override
  public void validate() {
    Collection<Node> nodes = KafkaOutputCheck.reach(admin, spec);
    if (!nodes.isEmpty()) {
      Config broker = brokerConfig(nodes.iterator().next());
      if (spec.transactional()) {
        checkTransactionTimeout(broker);
      }
      warnOnShortRetention(broker);
      checkKeepAlive(broker);
    }
    checkGroupIsDedicated();
  }

  private Config brokerConfig(Node node) {
    ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, node.idString());
    try {
      return admin
          .describeConfigs(List.of(broker))
          .all()
          .get(spec.apiTimeoutMs(), TimeUnit.MILLISECONDS)
          .get(broker);
    } catch (Exception e) {
      LOG.warn("could not read the broker's configuration ({}); not checked", cause(e));
      return null;
    }
  }

  private static long longSetting(Config config, String key) {
    var entry = config == null ? null : config.get(key);
    if (entry == null || entry.value() == null) {
      return -1; // not visible to this principal
    }
    return Long.parseLong(entry.value());
  }

  private void warnOnShortRetention(Config broker) {
    long minutes = longSetting(broker, "offsets.retention.minutes");
    if (minutes > 0 && minutes * 60_000 < spec.expectedDowntimeMs()) {
      LOG.warn(
          "pipeline '{}': the brokers keep a stopped group's offsets for {} minutes"
              + " (offsets.retention.minutes), less than the expected downtime of {} minutes: if"
              + " the pipeline stays stopped that long, its progress is recovered from the"
              + " output's source positions (see the README). Raise offsets.retention.minutes"
              + " or lower expectedDowntime(...)",
          spec.pipelineId(),
          minutes,
          spec.expectedDowntimeMs() / 60_000);
    }
  }

  private void checkKeepAlive(Config broker) {
    long minutes = longSetting(broker, "offsets.retention.minutes");
    if (minutes > 0 && spec.keepAliveMs() * 2 > minutes * 60_000) {
      throw new SinkConfigurationException(
          "pipeline '"
              + spec.pipelineId()
              + "': progressKeepAlive ("
              + spec.keepAliveMs()
              + " ms) is more than half the brokers' offsets.retention.minutes ("
              + minutes
              + " min): the offsets of partitions that receive nothing could expire between two"
              + " keep-alives, and the next start would have to recover them. Set"
              + " progressKeepAlive(...) to at most "
              + minutes * 30_000
              + " ms, or raise offsets.retention.minutes on the brokers");
    }
  }

  private void checkTransactionTimeout(Config broker) {
    long max = longSetting(broker, MAX_TIMEOUT);
    if (max < 0) {
      return; // initTransactions will tell
    }
    if (spec.transactionTimeoutMs() > max) {
      throw new SinkConfigurationException(
          "pipeline '"
              + spec.pipelineId()
              + "': transactionTimeout ("
              + spec.transactionTimeoutMs()
              + " ms, the producer's transaction.timeout.ms) exceeds the broker's "
              + MAX_TIMEOUT
              + " ("
              + max
              + " ms), so every producer would fail to start: lower transactionTimeout(...) or"
              + " raise "
              + MAX_TIMEOUT
              + " on the brokers");
    }
  }

  private void checkGroupIsDedicated() {
    String group = spec.progressGroup();
    try {
      ConsumerGroupDescription d =
          admin
              .describeConsumerGroups(List.of(group))
              .all()
              .get(spec.apiTimeoutMs(), TimeUnit.MILLISECONDS)
              .get(group);
      if (d != null && !d.members().isEmpty()) {
        throw new SinkConfigurationException(
            "pipeline '"
                + spec.pipelineId()
                + "': the progress group '"
                + group
                + "' has active members ("
                + d.members().size()
                + ", for example "
                + d.members().iterator().next().clientId()
                + "): the group must be dedicated to this sink, because the broker lets any"
                + " member overwrite its offsets. Stop those consumers, or choose another"
                + " progressGroup(...)");
      }
    } catch (SinkConfigurationException e) {
      throw e;
    } catch (ExecutionException e) {
      if (!(e.getCause() instanceof GroupIdNotFoundException)) {
        LOG.warn("could not describe progress group '{}' ({}); not checked", group, cause(e));
      }
    } catch (InterruptedException | TimeoutException e) {
      LOG.warn("could not describe progress group '{}' ({}); not checked", group, e.toString());
    }
  }

  /**
   * Takes the next writer epoch by compare-and-set, then stamps it on every stored partition.
   *
   * <p>The epoch is stored in {@link KafkaSpec#epochGroup()} and only ever written in a transaction
   * of the pipeline's one {@link KafkaSpec#epochTransactionalId() epoch transactional id}, opened
   * by a fresh producer whose {@code initTransactions} fences every other producer of that id. The
   * current epoch is read after that, and the next one committed: if another driver initialised the
   * id in between, this commit is refused ({@code ProducerFencedException}) and the whole step is
   * taken again. So a commit that succeeds was the only one since its own read: of two drivers
   * taking an epoch at once, each commits a different one, and the later commit holds the higher.
   *
   * <p>In transactional mode each stored partition is then taken over through its transactional id
   * and the id earlier versions used for it (see {@code takeOver}), so that tasks of a driver of
   * either version are fenced.
   *
   * @throws WriterFencedException if other drivers kept taking the epoch over {@value
   *     #EPOCH_ATTEMPTS} attempts
   */
  @Override
  public long takeWriterEpoch() {
    long epoch = bumpEpoch();
    // Not a stable read: an older driver's task may hold a partition's offset in an open
    // transaction, which the stamping below aborts (a stable read would wait for it).
    Map<TopicPartition, OffsetAndMetadata> stored =
        Progress.committedSoFar(admin, spec.progressGroup(), spec.apiTimeoutMs());
    restamp(stored.keySet(), epoch);
    return epoch;
  }

  private static final int EPOCH_ATTEMPTS = 10;

  private long bumpEpoch() {
    TopicPartition marker = spec.epochMarker();
    for (int attempt = 1; ; attempt++) {
      KafkaProducer<byte[], byte[]> p =
          new KafkaProducer<>(spec.producerProperties(spec.epochTransactionalId()));
      try {
        p.initTransactions();
        OffsetAndMetadata last =
            Progress.read(admin, spec.epochGroup(), List.of(marker), spec.apiTimeoutMs())
                .get(marker);
        // The partitions' epochs too: pipelines that started before the epoch group existed, and
        // an epoch group whose offset expired (offsets.retention.minutes) while the stamped
        // partitions stayed.
        long next = 1 + Math.max(Progress.epochOf(last), highestStampedEpoch());
        FaultPoints.reach(EPOCH_READ);
        p.beginTransaction();
        // The marker also carries which source partitions the pipeline knows (see recordKnown).
        p.sendOffsetsToTransaction(
            Map.of(
                marker,
                new OffsetAndMetadata(
                    next, Progress.markerMetadata(next, Progress.knownPartitions(last)))),
            new ConsumerGroupMetadata(spec.epochGroup()));
        commitContended(p);
        return next;
      } catch (ProducerFencedException | InvalidProducerEpochException e) {
        // Another driver initialised the epoch id after this one read: it may have committed the
        // very epoch this one was about to. Read again.
        if (attempt >= EPOCH_ATTEMPTS) {
          throw new WriterFencedException(
              "pipeline '"
                  + spec.pipelineId()
                  + "': could not take a writer epoch in "
                  + EPOCH_ATTEMPTS
                  + " attempts, other drivers of the pipeline kept taking it (transactional id '"
                  + spec.epochTransactionalId()
                  + "'): make sure only one driver of the pipeline is being started");
        }
        LOG.info(
            "pipeline '{}': another driver is taking a writer epoch at the same time; reading"
                + " again (attempt {})",
            spec.pipelineId(),
            attempt);
        backOff(attempt);
      } catch (TransactionalIdAuthorizationException
          | ClusterAuthorizationException
          | UnsupportedVersionException e) {
        if (spec.transactional()) {
          throw epochFailed(e);
        }
        return bumpEpochWithoutTransactions(e);
      } catch (ExactlyOnceException e) {
        throw e;
      } catch (RuntimeException e) {
        throw epochFailed(e);
      } finally {
        p.close(java.time.Duration.ZERO);
      }
    }
  }

  /**
   * For the sink without transactions on a cluster that refuses them: the next epoch by a read and
   * a write, not atomic. Two drivers starting at the same moment may then take the same epoch; the
   * outputs of that sink are at-least-once on the wire anyway and its readers drop replays.
   */
  private long bumpEpochWithoutTransactions(RuntimeException refused) {
    LOG.warn(
        "pipeline '{}': the cluster refused transactional id '{}' ({}), so writer epochs are taken"
            + " without a compare-and-set: two drivers started at the same moment may both run"
            + " unfenced. Allow the principal WRITE on that transactional id to make it atomic",
        spec.pipelineId(),
        spec.epochTransactionalId(),
        refused.toString());
    TopicPartition marker = spec.epochMarker();
    OffsetAndMetadata last = readMarker();
    long next = 1 + Math.max(Progress.epochOf(last), highestStampedEpoch());
    alter(
        spec.epochGroup(),
        Map.of(
            marker,
            new OffsetAndMetadata(
                next, Progress.markerMetadata(next, Progress.knownPartitions(last)))));
    return next;
  }

  /** The highest epoch on a committed offset of the progress group; 0 if none. */
  private long highestStampedEpoch() {
    return Progress.committedSoFar(admin, spec.progressGroup(), spec.apiTimeoutMs())
        .values()
        .stream()
        .mapToLong(Progress::epochOf)
        .max()
        .orElse(0);
  }

  private ExactlyOnceException epochFailed(RuntimeException e) {
    return new ExactlyOnceException(
        "pipeline '"
            + spec.pipelineId()
            + "': taking a writer epoch through transactional id '"
            + spec.epochTransactionalId()
            + "' and consumer group '"
            + spec.epochGroup()
            + "' failed: "
            + e
            + ". The principal needs WRITE on that transactional id and READ on that group and"
            + " on the output topic '"
            + spec.topic()
            + "'",
        e);
  }

  /** A short random pause, so that two drivers that keep fencing each other fall out of step. */
  private static void backOff(int attempt) {
    try {
      Thread.sleep(java.util.concurrent.ThreadLocalRandom.current().nextLong(10, 50L * attempt));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ExactlyOnceException("interrupted while taking a writer epoch", e);
    }
  }

  /**
   * The stored offsets, after recovering those Kafka expired. Kafka drops a partition's committed
   * offset {@code offsets.retention.minutes} after that partition's last commit, so while the
   * pipeline was stopped some or all of them may have vanished. A partition without an offset is
   * then one of three things, and only the epoch marker's record of the partitions the pipeline
   * knows ({@link #recordKnown}) and the output can tell which:
   *
   * <ul>
   *   <li><b>new</b>: numbered past the partitions the pipeline knew of its topic, or of a topic it
   *       never stored; the start position (or earliest) applies, as for a first start;
   *   <li><b>lost</b>: one the pipeline knew: its position is recovered from the output, and only
   *       if the scan of the output is complete ({@link ProgressRecovery}), otherwise the start is
   *       refused with the command that sets it;
   *   <li><b>unsure</b>: the marker records nothing (it expired too, or an earlier version wrote
   *       it): an output of the partition proves it was written (then as lost); a complete scan
   *       without one proves nothing of it was written (its earliest offset is exact); otherwise it
   *       is taken as new, with a warning.
   * </ul>
   */
  @Override
  public Map<TopicPartition, Long> storedOffsetsAtStart(
      Collection<TopicPartition> streamPartitions, long epoch) {
    refuseForeign(read(null));
    Map<TopicPartition, Long> stored = storedOffsets();
    Map<String, Integer> known = Progress.knownPartitions(readMarker());
    Set<String> storedTopics = new java.util.HashSet<>();
    stored.keySet().forEach(tp -> storedTopics.add(tp.topic()));
    List<TopicPartition> lost = new ArrayList<>();
    List<TopicPartition> unsure = new ArrayList<>();
    for (TopicPartition tp : streamPartitions) {
      if (stored.containsKey(tp)) {
        continue;
      }
      Integer count = known == null ? null : known.get(tp.topic());
      if (count != null) {
        if (tp.partition() < count) {
          lost.add(tp);
        }
      } else if (storedTopics.contains(tp.topic()) || stored.isEmpty()) {
        unsure.add(tp);
      }
    }
    if (lost.isEmpty() && unsure.isEmpty()) {
      recordKnown(stored.keySet(), epoch, false); // pipelines started by earlier versions
      return stored;
    }
    List<TopicPartition> missing = new ArrayList<>(lost);
    missing.addAll(unsure);
    if (spec.transactional()) {
      // A transaction of a lost partition left open by a dead task may still commit (or abort):
      // new producers of its ids decide it before the output is read.
      parallel(missing, this::decideLingering);
    }
    ProgressRecovery.Scan scan = ProgressRecovery.scan(spec, admin, spec.recoveryScanDepth());
    Map<TopicPartition, Long> restore = new HashMap<>();
    List<TopicPartition> unknown = new ArrayList<>();
    List<TopicPartition> earliest = new ArrayList<>();
    List<TopicPartition> guessedNew = new ArrayList<>();
    for (TopicPartition tp : missing) {
      Long found = scan.next().get(tp);
      boolean written = lost.contains(tp) || found != null;
      if (found != null && scan.complete()) {
        restore.put(tp, found);
      } else if (scan.complete() && (written || !stored.isEmpty() || !scan.next().isEmpty())) {
        // Nothing of it was ever written: reading it all again is exact. (With no offset and no
        // output of the pipeline anywhere, it is a first start: the start position applies.)
        earliest.add(tp);
      } else if (written) {
        unknown.add(tp);
      } else {
        guessedNew.add(tp);
      }
    }
    if (!guessedNew.isEmpty() && !(stored.isEmpty() && scan.next().isEmpty())) {
      LOG.warn(
          "pipeline '{}': {} have no stored offset and no output in the part of '{}' that was"
              + " read; taken as partitions added to the topic. Their offsets may also have"
              + " expired: the epoch marker that would tell is gone, and {}",
          spec.pipelineId(),
          guessedNew,
          spec.topic(),
          String.join("; ", scan.incomplete()));
    }
    if (!unknown.isEmpty()) {
      throw cannotRecover(unknown, scan, stored.isEmpty());
    }
    restore.putAll(earliestOffsets(earliest));
    if (!restore.isEmpty()) {
      LOG.warn(
          "pipeline '{}': progress group '{}' had lost the offsets of {} (expired after"
              + " offsets.retention.minutes?); recovered {} from the output's source positions",
          spec.pipelineId(),
          spec.progressGroup(),
          missing,
          restore);
      storeStartOffsets(restore, epoch);
    }
    recordKnown(stored.keySet(), epoch, false);
    return storedOffsets();
  }

  private OffsetMismatchException cannotRecover(
      List<TopicPartition> unknown, ProgressRecovery.Scan scan, boolean all) {
    StringBuilder found = new StringBuilder();
    unknown.forEach(
        tp ->
            found
                .append(found.length() == 0 ? "" : ", ")
                .append(tp)
                .append(
                    scan.next().containsKey(tp)
                        ? " (latest output found: source offset " + (scan.next().get(tp) - 1) + ")"
                        : " (no output found)"));
    return new OffsetMismatchException(
        "pipeline '"
            + spec.pipelineId()
            + "': its progress group '"
            + spec.progressGroup()
            + "' has lost the offsets of "
            + (all ? "every partition" : "partitions it had stored")
            + ": "
            + found
            + " (expired after offsets.retention.minutes, or deleted). The output topic '"
            + spec.topic()
            + "' cannot prove where they got to, because "
            + String.join("; ", scan.incomplete())
            + ". Starting them from a guess could duplicate or skip outputs. Set each one to the"
            + " offset after its last output through the library, ExactlyOnce.rewind(sink,"
            + " Map.of(new TopicPartition(topic, partition), nextOffset)) (a hand reset with"
            + " kafka-consumer-groups.sh is refused, as it cannot be told from a mistake), or scan"
            + " deeper with recoveryScanDepth(...), then start again."
            + OffsetsToolCommands.resetSentence(
                "Set them",
                spec.pipelineId(),
                null,
                spec.offsetsToolResetOptions(),
                "<topic>:<partition>=<offset after its last output>,..."),
        List.of());
  }

  /** Completes an open transaction of {@code tp}'s transactional ids, current and legacy. */
  private Void decideLingering(TopicPartition tp) {
    for (String id : List.of(spec.transactionalId(tp), spec.legacyTransactionalId(tp))) {
      KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(spec.producerProperties(id));
      try {
        p.initTransactions();
      } finally {
        closeBounded(p);
      }
    }
    return null;
  }

  private Map<TopicPartition, Long> earliestOffsets(List<TopicPartition> tps) {
    if (tps.isEmpty()) {
      return Map.of();
    }
    Map<TopicPartition, org.apache.kafka.clients.admin.OffsetSpec> q = new HashMap<>();
    tps.forEach(tp -> q.put(tp, org.apache.kafka.clients.admin.OffsetSpec.earliest()));
    try {
      Map<TopicPartition, Long> earliest = new HashMap<>();
      admin
          .listOffsets(q)
          .all()
          .get(spec.apiTimeoutMs(), TimeUnit.MILLISECONDS)
          .forEach((tp, info) -> earliest.put(tp, info.offset()));
      return earliest;
    } catch (Exception e) {
      throw new ExactlyOnceException(
          "reading the earliest offsets of " + tps + " failed: " + cause(e), e);
    }
  }

  /**
   * Records in the epoch marker, per source topic, how many partitions the pipeline knows: at least
   * one past the highest of {@code tps}. Without {@code refresh} the marker is written only when
   * that grows; with it, always (its offset expires like the others).
   *
   * <p>Written like an epoch, through the epoch transactional id: a driver whose epoch is no longer
   * the marker's is fenced, and one that takes an epoch meanwhile reads again and keeps what this
   * recorded.
   */
  void recordKnown(Collection<TopicPartition> tps, long epoch, boolean refresh) {
    TopicPartition marker = spec.epochMarker();
    for (int attempt = 1; ; attempt++) {
      KafkaProducer<byte[], byte[]> p =
          new KafkaProducer<>(spec.producerProperties(spec.epochTransactionalId()));
      try {
        p.initTransactions();
        OffsetAndMetadata last = readMarker();
        Map<String, Integer> known = merged(last, tps);
        if (Progress.epochOf(last) > epoch) {
          throw fenced(epoch, Progress.epochOf(last));
        }
        if (!refresh && last != null && known.equals(Progress.knownPartitions(last))) {
          return;
        }
        p.beginTransaction();
        p.sendOffsetsToTransaction(
            Map.of(marker, new OffsetAndMetadata(epoch, Progress.markerMetadata(epoch, known))),
            new ConsumerGroupMetadata(spec.epochGroup()));
        commitContended(p);
        return;
      } catch (ProducerFencedException | InvalidProducerEpochException e) {
        if (attempt >= EPOCH_ATTEMPTS) {
          throw epochFailed(e);
        }
        backOff(attempt);
      } catch (TransactionalIdAuthorizationException
          | ClusterAuthorizationException
          | UnsupportedVersionException e) {
        if (spec.transactional()) {
          throw epochFailed(e);
        }
        OffsetAndMetadata last = readMarker();
        if (Progress.epochOf(last) > epoch) {
          throw fenced(epoch, Progress.epochOf(last));
        }
        alter(
            spec.epochGroup(),
            Map.of(
                marker,
                new OffsetAndMetadata(epoch, Progress.markerMetadata(epoch, merged(last, tps)))));
        return;
      } catch (ExactlyOnceException e) {
        throw e;
      } catch (RuntimeException e) {
        throw epochFailed(e);
      } finally {
        p.close(java.time.Duration.ZERO);
      }
    }
  }

  private static Map<String, Integer> merged(
      OffsetAndMetadata marker, Collection<TopicPartition> tps) {
    Map<String, Integer> known = new HashMap<>();
    Map<String, Integer> recorded = Progress.knownPartitions(marker);
    if (recorded != null) {
      known.putAll(recorded);
    }
    tps.forEach(tp -> known.merge(tp.topic(), tp.partition() + 1, Math::max));
    return known;
  }

  /**
   * Writes the offsets of {@code partitions} again, unchanged, and the epoch marker: Kafka expires
   * each one {@code offsets.retention.minutes} after its own last commit, and a partition that
   * receives nothing is never committed by a batch.
   */
  @Override
  public void keepAlive(Collection<TopicPartition> partitions, long epoch) {
    recordKnown(partitions, epoch, true);
    if (spec.transactional()) {
      // Through each partition's transactional id, like every other write of its offset.
      parallel(partitions, tp -> stamp(tp, epoch, -1, true));
    } else {
      Map<TopicPartition, OffsetAndMetadata> stored = read(partitions);
      checkEpoch(stored, epoch);
      Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
      stored.forEach(
          (tp, om) -> {
            if (Progress.writtenByTheLibrary(om)) { // never make a hand-set offset look like ours
              commit.put(tp, new OffsetAndMetadata(om.offset(), Progress.metadata(epoch)));
            }
          });
      alter(commit);
    }
  }

  @Override
  public void checkBeforeEpoch(Collection<TopicPartition> streamPartitions) {
    // A stream that reads what its sink writes (a pattern matching the output topic, say) would
    // write each output again, without end.
    for (TopicPartition tp : streamPartitions) {
      String role =
          tp.topic().equals(spec.topic())
              ? "its output topic"
              : tp.topic().equals(spec.deadLetterTopic()) ? "its dead-letter topic" : null;
      if (role != null) {
        throw new SinkConfigurationException(
            "pipeline '"
                + spec.pipelineId()
                + "' reads topic '"
                + tp.topic()
                + "', which is "
                + role
                + ": every record written would be read and written again, without end. Read"
                + " other topics (check the subscription or its pattern), or write elsewhere");
      }
    }
    // Not a stable read: the running driver's tasks hold offsets in open transactions, which a
    // stable read would wait for; an offset set by a tool is committed outside any transaction.
    refuseForeign(Progress.committedSoFar(admin, spec.progressGroup(), spec.apiTimeoutMs()));
  }

  private void refuseForeign(Map<TopicPartition, OffsetAndMetadata> stored) {
    Progress.refuseSetOutsideTheLibrary(spec, stored);
  }

  @Override
  public String offsetsToolResetOptions() {
    return spec.offsetsToolResetOptions();
  }

  @Override
  public boolean canRewind() {
    return true;
  }

  /**
   * Stamps {@code offsets} with {@code epoch}, whatever is stored (also offsets set outside the
   * library, which the start refuses until rewound here), through each partition's transactional id
   * in transactional mode.
   */
  @Override
  public void rewind(Map<TopicPartition, Long> offsets, long epoch) {
    long latest = latestEpoch();
    if (latest > epoch) {
      throw fenced(epoch, latest);
    }
    recordKnown(offsets.keySet(), epoch, false);
    if (spec.transactional()) {
      parallel(offsets.keySet(), tp -> stamp(tp, epoch, offsets.get(tp), true));
    } else {
      checkEpoch(read(offsets.keySet()), epoch);
      Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
      offsets.forEach(
          (tp, o) -> commit.put(tp, new OffsetAndMetadata(o, Progress.metadata(epoch))));
      alter(commit);
    }
  }

  @Override
  public Map<TopicPartition, Long> storedOffsets() {
    Map<TopicPartition, Long> offsets = new HashMap<>();
    read(null).forEach((tp, om) -> offsets.put(tp, om.offset()));
    return offsets;
  }

  @Override
  public void storeStartOffsets(Map<TopicPartition, Long> offsets, long epoch) {
    // A driver that took its epoch before another one took a newer epoch must not store start
    // offsets stamped with its own: the newer driver may already have read them as its own.
    long latest = latestEpoch();
    if (latest > epoch) {
      throw fenced(epoch, latest);
    }
    // Recorded before the offsets, so that a partition stored is always a known one: if its
    // offset expires later, the next start recovers it or refuses, never takes it for a new one.
    recordKnown(offsets.keySet(), epoch, false);
    Map<TopicPartition, OffsetAndMetadata> stored = read(offsets.keySet());
    checkEpoch(stored, epoch);
    // A partition that an older driver stored after this one took its epoch keeps its offset but
    // takes this epoch, so that the older driver's tasks read that they are fenced.
    List<TopicPartition> toStamp =
        offsets.keySet().stream()
            .filter(
                tp ->
                    !stored.containsKey(tp)
                        || Progress.writtenByTheLibrary(stored.get(tp))
                            && Progress.epochOf(stored.get(tp)) < epoch)
            .toList();
    if (spec.transactional()) {
      // Through each partition's transactional id, like every other write of its offset.
      parallel(toStamp, tp -> stamp(tp, epoch, offsets.get(tp), false));
    } else {
      Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
      toStamp.forEach(
          tp ->
              commit.put(
                  tp,
                  new OffsetAndMetadata(
                      stored.containsKey(tp) ? stored.get(tp).offset() : offsets.get(tp),
                      Progress.metadata(epoch))));
      alter(commit);
    }
  }

  /** The latest writer epoch taken, as the epoch group records it; 0 if none. */
  private long latestEpoch() {
    return Progress.epochOf(readMarker());
  }

  /** The epoch marker: the latest writer epoch and the source partitions the pipeline knows. */
  private OffsetAndMetadata readMarker() {
    TopicPartition marker = spec.epochMarker();
    return Progress.read(admin, spec.epochGroup(), List.of(marker), spec.apiTimeoutMs())
        .get(marker);
  }

  @Override
  public List<PartitionCommit> commitRanges(long epoch, List<SourceRange> ranges) {
    return CommitProtocol.advanceRanges(new GroupUnit(ranges), epoch, ranges);
  }

  /**
   * The protocol's primitive over the progress group: the offsets are read once (their metadata
   * carries the epoch that wrote them) and advanced through each partition's transactional id
   * (transactional sinks, whose tasks commit through the same ids) or by one group commit.
   */
  private final class GroupUnit implements CommitUnit {
    private final Set<TopicPartition> tps = new java.util.HashSet<>();
    private Map<TopicPartition, OffsetAndMetadata> stored;

    GroupUnit(List<SourceRange> ranges) {
      ranges.forEach(r -> tps.add(r.topicPartition()));
    }

    /** Reads the offsets: a newer driver has stamped its epoch on at least one of them. */
    @Override
    public boolean epochIsCurrent(long epoch) {
      stored = read(tps);
      return stored.values().stream().noneMatch(om -> Progress.epochOf(om) > epoch);
    }

    @Override
    public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
      refuseForeign(stored);
      Map<TopicPartition, Long> out = new HashMap<>();
      stored.forEach((tp, om) -> out.put(tp, om.offset()));
      return out;
    }

    @Override
    public boolean advance(List<Advance> advances, long epoch) {
      Map<TopicPartition, OffsetAndMetadata> advance = new HashMap<>();
      advances.forEach(
          a ->
              advance.put(
                  a.range().topicPartition(),
                  new OffsetAndMetadata(a.range().until(), Progress.metadata(epoch))));
      if (spec.transactional()) {
        parallel(advance.keySet(), tp -> stamp(tp, epoch, advance.get(tp).offset(), true));
      } else {
        alter(advance);
      }
      return true;
    }
  }

  /** Re-stamps every partition of {@code tps} with {@code epoch}, keeping its offset. */
  private void restamp(Collection<TopicPartition> tps, long epoch) {
    if (spec.transactional()) {
      parallel(tps, tp -> takeOver(tp, epoch));
    } else {
      Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
      read(tps)
          .forEach(
              (tp, om) -> {
                if (Progress.writtenByTheLibrary(om)) { // a hand-set offset stays refused
                  commit.put(tp, new OffsetAndMetadata(om.offset(), Progress.metadata(epoch)));
                }
              });
      alter(commit);
    }
  }

  /**
   * Stamps {@code epoch} on {@code tp} through its transactional id, and fences the producers of
   * its {@link KafkaSpec#legacyTransactionalId legacy id} too: a driver of a version before issue
   * 17 may still run (a rolling upgrade) with tasks that write under that id, which this version's
   * producers do not fence.
   *
   * <p>Order: initialise the legacy id (fencing those tasks and aborting their open transaction),
   * stamp through the current id, then prove that the legacy producer still holds its id (a
   * transaction that reaches the broker, aborted). If it does, no task of the old version started
   * since, so none committed while the stamp read and wrote the offset; and any that starts later
   * reads the new epoch and stops ({@code FENCED}). If it was fenced meanwhile, the whole step is
   * taken again, and then the output is checked for a commit of the old version that the stamp may
   * have overwritten.
   */
  private Void takeOver(TopicPartition tp, long epoch) {
    String legacy = spec.legacyTransactionalId(tp);
    boolean raced = false;
    for (int attempt = 1; ; attempt++) {
      KafkaProducer<byte[], byte[]> old = new KafkaProducer<>(spec.producerProperties(legacy));
      try {
        old.initTransactions();
        stamp(tp, epoch, -1, true);
        OffsetAndMetadata stamped = read(List.of(tp)).get(tp);
        if (stamped == null) {
          return null; // nothing stored, nothing to protect
        }
        // The probe writes (and aborts) this partition's own offset: if this driver dies before
        // the abort, the next driver's takeOver aborts it first, before anything reads it stably.
        old.beginTransaction();
        old.sendOffsetsToTransaction(
            Map.of(tp, stamped), new ConsumerGroupMetadata(spec.progressGroup()));
        old.abortTransaction();
        if (raced) {
          checkNotOverwritten(tp, legacy);
        }
        return null;
      } catch (ProducerFencedException | InvalidProducerEpochException e) {
        raced = true;
        if (attempt >= EPOCH_ATTEMPTS) {
          throw new ExactlyOnceException(
              "pipeline '"
                  + spec.pipelineId()
                  + "': taking over "
                  + tp
                  + " with writer epoch "
                  + epoch
                  + ", producers of the transactional id of earlier library versions ('"
                  + legacy
                  + "') kept starting: stop every driver of this pipeline that runs a version"
                  + " before issue 17 (or of another pipeline whose id and topic join to the same"
                  + " text), then start again",
              e);
        }
        LOG.info(
            "pipeline '{}': a producer of the earlier versions' transactional id '{}' started"
                + " while {} was taken over; taking it over again",
            spec.pipelineId(),
            legacy,
            tp);
        backOff(attempt);
      } finally {
        old.close(java.time.Duration.ZERO);
      }
    }
  }

  /**
   * After a task of an earlier version started under {@code legacy} while {@code tp} was stamped:
   * its commit may have landed between the stamp's read and write, and been overwritten by the
   * older offset, while its outputs stay committed. They carry their source positions: if the
   * output holds an output of {@code tp} at or past the stored offset, the start is refused (a
   * replay from the stored offset would write them twice).
   */
  private void checkNotOverwritten(TopicPartition tp, String legacy) {
    OffsetAndMetadata om = read(List.of(tp)).get(tp);
    Long written = ProgressRecovery.scan(spec, admin, spec.recoveryScanDepth()).next().get(tp);
    if (om != null && written != null && written > om.offset()) {
      throw new OffsetMismatchException(
          "pipeline '"
              + spec.pipelineId()
              + "': while this driver took over "
              + tp
              + ", a task of a driver of an earlier library version (transactional id '"
              + legacy
              + "') committed outputs of source offsets up to "
              + (written - 1)
              + ", but the stored offset is "
              + om.offset()
              + ": its offset commit was overwritten. Starting would write those outputs again."
              + " Stop every driver of the earlier version, set the offset to "
              + written
              + " through the library (ExactlyOnce.rewind(sink, Map.of(new TopicPartition(\""
              + tp.topic()
              + "\", "
              + tp.partition()
              + "), "
              + written
              + "L))), then start again."
              + OffsetsToolCommands.resetSentence(
                  "Set it",
                  spec.pipelineId(),
                  null,
                  spec.offsetsToolResetOptions(),
                  Map.of(tp, written)),
          List.of());
    }
  }

  /**
   * With a new producer of {@code tp}'s transactional id (which fences every older one and
   * completes its open transaction), commits offset {@code offset} (-1: the stored one) stamped
   * with {@code epoch}, unless a newer epoch is stored. A start offset ({@code overwrite} false)
   * never replaces a stored offset, but an older epoch on it is replaced: the driver that stored it
   * first may be older, and its tasks must read that they are fenced.
   *
   * <p>Two drivers stamping the same partition fence each other's producer; the one fenced stamps
   * again, and whichever holds the newer epoch ends with it stamped.
   */
  private Void stamp(TopicPartition tp, long epoch, long offset, boolean overwrite) {
    for (int attempt = 1; ; attempt++) {
      KafkaProducer<byte[], byte[]> p =
          new KafkaProducer<>(spec.producerProperties(spec.transactionalId(tp)));
      try {
        p.initTransactions();
        OffsetAndMetadata om =
            Progress.read(admin, spec.progressGroup(), List.of(tp), spec.apiTimeoutMs()).get(tp);
        if (Progress.epochOf(om) > epoch) {
          throw fenced(epoch, Progress.epochOf(om));
        }
        if (om == null && offset < 0) {
          return null; // nothing stored to re-stamp
        }
        if (om != null && !Progress.writtenByTheLibrary(om) && (offset < 0 || !overwrite)) {
          // Set outside the library: the start refuses it until it is rewound on purpose;
          // stamping it here would make it look like the pipeline's own.
          return null;
        }
        if (om != null && !overwrite && Progress.epochOf(om) == epoch) {
          return null;
        }
        long o = om != null && (offset < 0 || !overwrite) ? om.offset() : offset;
        FaultPoints.reach(STAMP_READ);
        p.beginTransaction();
        p.sendOffsetsToTransaction(
            Map.of(tp, new OffsetAndMetadata(o, Progress.metadata(epoch))),
            new ConsumerGroupMetadata(spec.progressGroup()));
        commitContended(p);
        return null;
      } catch (ProducerFencedException | InvalidProducerEpochException e) {
        if (attempt >= EPOCH_ATTEMPTS) {
          throw new ExactlyOnceException(
              "pipeline '"
                  + spec.pipelineId()
                  + "': stamping writer epoch "
                  + epoch
                  + " on "
                  + tp
                  + " was fenced "
                  + attempt
                  + " times by other producers of transactional id '"
                  + spec.transactionalId(tp)
                  + "': another driver of the pipeline keeps starting; stop it, then start again",
              e);
        }
        backOff(attempt);
      } finally {
        closeBounded(p);
      }
    }
  }

  /**
   * Commits the transaction of an epoch bump, a known-partitions refresh or a stamp. When two
   * drivers (or a driver's keep-alive and a new driver's start) initialise producers of one
   * transactional id at once, a commit in flight may be answered with {@code UNKNOWN_SERVER_ERROR},
   * which the client reports as a plain {@code KafkaException} ("Unhandled error in
   * EndTxnResponse"; seen in KafkaWriterEpochIT#driversStartingTogetherNeverShareAnEpoch and in the
   * structured idle-query test). It is the same contention as a fenced producer, and is retried as
   * one: each of these re-reads what is stored before it writes, so whether that commit went
   * through or not, the next attempt decides from what is there (a bump that did go through is
   * followed by a newer one: epochs stay unique).
   */
  private static void commitContended(KafkaProducer<byte[], byte[]> p) {
    try {
      p.commitTransaction();
    } catch (ProducerFencedException | InvalidProducerEpochException e) {
      throw e;
    } catch (KafkaException e) {
      if (e.getClass() == KafkaException.class
          && String.valueOf(e.getMessage()).startsWith("Unhandled error in EndTxnResponse")) {
        ProducerFencedException contended =
            new ProducerFencedException(
                "the commit raced another producer of its transactional id: " + e.getMessage());
        contended.initCause(e);
        throw contended;
      }
      throw e;
    }
  }

  /**
   * Closes a producer within the API timeout: {@code close()} without one waits for ever while the
   * producer keeps retrying a transactional request against a broker that does not answer.
   */
  private void closeBounded(KafkaProducer<byte[], byte[]> p) {
    p.close(java.time.Duration.ofMillis(spec.apiTimeoutMs()));
  }

  private void checkEpoch(Map<TopicPartition, OffsetAndMetadata> stored, long epoch) {
    for (OffsetAndMetadata om : stored.values()) {
      if (Progress.epochOf(om) > epoch) {
        throw fenced(epoch, Progress.epochOf(om));
      }
    }
  }

  private WriterFencedException fenced(long epoch, long newer) {
    return new WriterFencedException(
        "pipeline '"
            + spec.pipelineId()
            + "': writer epoch "
            + epoch
            + " was fenced by epoch "
            + newer
            + " (another driver took over)");
  }

  private Map<TopicPartition, OffsetAndMetadata> read(Collection<TopicPartition> tps) {
    return Progress.read(admin, spec.progressGroup(), tps, spec.apiTimeoutMs());
  }

  private void alter(Map<TopicPartition, OffsetAndMetadata> offsets) {
    alter(spec.progressGroup(), offsets);
  }

  private void alter(String group, Map<TopicPartition, OffsetAndMetadata> offsets) {
    if (offsets.isEmpty()) {
      return;
    }
    try {
      admin
          .alterConsumerGroupOffsets(
              group,
              offsets,
              new AlterConsumerGroupOffsetsOptions().timeoutMs((int) spec.apiTimeoutMs()))
          .all()
          .get(spec.apiTimeoutMs(), TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      throw new ExactlyOnceException(
          "storing the offsets of group '" + group + "' failed: " + cause(e), e);
    }
  }

  private interface PerPartition {
    Void run(TopicPartition tp);
  }

  /** Runs {@code action} for every partition, a few at a time (each costs a producer start). */
  private void parallel(Collection<TopicPartition> tps, PerPartition action) {
    if (tps.isEmpty()) {
      return;
    }
    ExecutorService pool = Executors.newFixedThreadPool(Math.min(8, tps.size()));
    try {
      List<Future<Void>> futures = new ArrayList<>();
      for (TopicPartition tp : tps) {
        futures.add(pool.submit(() -> action.run(tp)));
      }
      for (Future<Void> f : futures) {
        f.get();
      }
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException re && re instanceof ExactlyOnceException) {
        throw re;
      }
      throw new ExactlyOnceException(
          "writing the progress offsets of group '"
              + spec.progressGroup()
              + "' failed: "
              + e.getCause(),
          e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ExactlyOnceException("interrupted while writing progress offsets", e);
    } finally {
      pool.shutdownNow();
    }
  }

  private static String cause(Exception e) {
    return String.valueOf(
        e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e);
  }

  @Override
  public void close() {
    admin.close(java.time.Duration.ofSeconds(5));
  }
}
