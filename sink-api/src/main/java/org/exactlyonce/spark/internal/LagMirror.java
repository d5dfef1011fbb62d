package org.exactlyonce.spark.internal;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.BatchResult;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Copies the offsets the sinks committed to a Kafka consumer group that nobody reads back, so that
 * lag tools watching consumer groups see the pipeline's progress. Per partition it commits the
 * lowest offset over the stream's outputs (the slowest output is the lag). A failed copy is logged
 * and retried with the next batch; it never fails a batch. Driver-side; thread-safe.
 */
public final class LagMirror implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(LagMirror.class);

  /** How long a batch waits for the broker to take the copy before it gives up (and goes on). */
  static final Duration WAIT = Duration.ofSeconds(10);

  /** Where the copy goes: one call per batch with the partitions whose mirrored offset moved. */
  interface Target extends AutoCloseable {
    void commit(Map<TopicPartition, Long> offsets) throws Exception;

    @Override
    void close();
  }

  private final String group;
  private final Target target;
  private final Map<PipelineId, Map<TopicPartition, Long>> committed = new ConcurrentHashMap<>();
  private final Map<TopicPartition, Long> mirrored = new HashMap<>();
  private int failures;
  private volatile boolean closed;

  LagMirror(String group, Target target) {
    this.group = group;
    this.target = target;
  }

  /**
   * A mirror to consumer group {@code group} through a Kafka Admin client with the connection and
   * security settings of {@code streamParams}; the client is created on the first copy.
   */
  public static LagMirror toGroup(String group, Map<String, Object> streamParams) {
    return new LagMirror(group, new AdminTarget(group, adminParams(group, streamParams)));
  }

  /** The Admin settings among the stream's consumer settings (bootstrap, security, DNS, ...). */
  static Map<String, Object> adminParams(String group, Map<String, Object> streamParams) {
    Map<String, Object> params = new HashMap<>();
    streamParams.forEach(
        (k, v) -> {
          if (AdminClientConfig.configNames().contains(k)
              && !AdminClientConfig.CLIENT_ID_CONFIG.equals(k)
              && v != null) {
            params.put(k, v);
          }
        });
    params.put(AdminClientConfig.CLIENT_ID_CONFIG, "exactly-once-lag-mirror-" + group);
    params.putIfAbsent(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) WAIT.toMillis());
    params.putIfAbsent(
        AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) Math.min(WAIT.toMillis(), 30_000));
    return params;
  }

  /** The consumer group the offsets are copied to. */
  public String group() {
    return group;
  }

  /**
   * Takes the ranges of a batch that passed the check and copies, per partition, the lowest
   * committed offset over {@code outputs} (partitions some output has not committed yet are left
   * out) to the group. Never throws.
   */
  public synchronized void batchCommitted(BatchResult result, Collection<PipelineId> outputs) {
    if (closed) {
      return;
    }
    Map<TopicPartition, Long> mine =
        committed.computeIfAbsent(result.pipelineId(), p -> new HashMap<>());
    for (PartitionCommit c : result.commits()) {
      if (c.outcome().isSuccess()) {
        mine.merge(c.range().topicPartition(), c.range().until(), Math::max);
      }
    }
    Map<TopicPartition, Long> moved = new LinkedHashMap<>();
    for (Map.Entry<TopicPartition, Long> e : lowestOverOutputs(outputs).entrySet()) {
      if (!e.getValue().equals(mirrored.get(e.getKey()))) {
        moved.put(e.getKey(), e.getValue());
      }
    }
    if (moved.isEmpty()) {
      return;
    }
    try {
      target.commit(moved);
      mirrored.putAll(moved);
      if (failures > 0) {
        LOG.info(
            "lag mirror to consumer group '{}' works again after {} failed attempt(s)",
            group,
            failures);
      }
      failures = 0;
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      if (closed) {
        return; // the streaming context stopped while the copy was under way
      }
      Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      if (failures++ == 0) {
        LOG.warn(
            "lag mirror: could not copy the committed offsets to consumer group '{}' ({}); the"
                + " batch is committed all the same (the sinks hold the offsets), and the next"
                + " batch tries again. Lag tools show this group behind until then.",
            group,
            cause.toString());
      } else {
        LOG.debug("lag mirror to '{}' failed again ({} in a row)", group, failures, cause);
      }
    }
  }

  private Map<TopicPartition, Long> lowestOverOutputs(Collection<PipelineId> outputs) {
    Map<TopicPartition, Long> lowest = new TreeMap<>(LagMirror::compare);
    boolean first = true;
    for (PipelineId p : outputs) {
      Map<TopicPartition, Long> of = committed.getOrDefault(p, Map.of());
      if (first) {
        lowest.putAll(of);
        first = false;
      } else {
        lowest.keySet().retainAll(of.keySet());
        lowest.replaceAll((tp, o) -> Math.min(o, of.get(tp)));
      }
    }
    return lowest;
  }

  private static int compare(TopicPartition a, TopicPartition b) {
    int byTopic = a.topic().compareTo(b.topic());
    return byTopic != 0 ? byTopic : Integer.compare(a.partition(), b.partition());
  }

  /** Closes the Admin client; later batches copy nothing. Idempotent. */
  @Override
  public void close() {
    closed = true;
    target.close();
  }

  /** The Admin client, created on the first copy so that a context never started opens none. */
  private static final class AdminTarget implements Target {
    private final String group;
    private final Map<String, Object> params;
    private Admin admin;
    private boolean closed;

    AdminTarget(String group, Map<String, Object> params) {
      this.group = group;
      this.params = params;
    }

    @Override
    public void commit(Map<TopicPartition, Long> offsets)
        throws ExecutionException, InterruptedException, TimeoutException {
      Admin a;
      synchronized (this) {
        if (closed) {
          return;
        }
        if (admin == null) {
          admin = Admin.create(params);
        }
        a = admin;
      }
      Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
      offsets.forEach((tp, o) -> commit.put(tp, new OffsetAndMetadata(o)));
      a.alterConsumerGroupOffsets(group, commit).all().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
      Admin a;
      synchronized (this) {
        closed = true;
        a = admin;
        admin = null;
      }
      if (a != null) {
        a.close(Duration.ofSeconds(5));
      }
    }
  }
}
