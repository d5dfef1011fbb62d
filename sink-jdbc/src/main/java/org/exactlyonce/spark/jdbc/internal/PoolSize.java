package org.exactlyonce.spark.jdbc.internal;

import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How many connections one JVM's pool for a database may hold when the user did not say: one per
 * task slot of the executor, plus one. A transactional task holds its connection for its whole
 * partition, so with fewer connections than slots a task waits for another task's partition to
 * finish, and on a long catch-up batch that wait outlasts the pool's connection wait: the task
 * fails, Spark's retries fail the same way, the pipeline stops, and the restart meets the same
 * batch. The extra connection is for an attempt that was killed but has not yet given its
 * connection back (the driver's bookkeeping has a pool of its own, {@link Databases#driverJdbi}).
 * Connections are opened on demand, so an unused maximum costs nothing. Stateless.
 */
public final class PoolSize {
  private static final Logger LOG = LoggerFactory.getLogger(PoolSize.class);

  /** The least a default pool holds: what the sink used before it sized pools from slots. */
  static final int MINIMUM = 4;

  private static final Pattern LOCAL = Pattern.compile("local\\[(\\*|\\d+)(?:,\\s*\\d+)?\\]");
  private static final Pattern LOCAL_CLUSTER =
      Pattern.compile("local-cluster\\[\\s*\\d+\\s*,\\s*(\\d+)\\s*,\\s*\\d+\\s*\\]");

  private PoolSize() {}

  /**
   * The pool size of this JVM: {@code explicit} if the user set one (above 0), otherwise from the
   * task slots of the Spark environment of this JVM, or {@link #MINIMUM} outside Spark.
   */
  public static int forThisJvm(int explicit) {
    SparkEnv env = SparkEnv.get();
    if (env == null) {
      return explicit > 0 ? explicit : MINIMUM;
    }
    int slots = taskSlots(env.conf(), Runtime.getRuntime().availableProcessors());
    if (explicit <= 0) {
      return ofSlots(slots);
    }
    if (explicit < slots) {
      LOG.warn(
          "maxPoolSize({}) is below the {} task slots of this executor: a transactional task holds"
              + " its connection for its whole partition, so the other tasks wait for one (10 s,"
              + " then they fail and are retried), and on a long batch Spark's retries can run out"
              + " and stop the pipeline. Raise maxPoolSize to at least {}, or remove it (the"
              + " default is one connection per task slot, plus one).",
          explicit,
          slots,
          slots + 1);
    }
    return explicit;
  }

  /** The default pool size for an executor with {@code slots} task slots. */
  static int ofSlots(int slots) {
    return Math.max(MINIMUM, slots + 1);
  }

  /**
   * The tasks one executor runs at once: its cores ({@code local[N]}'s threads in local mode, the
   * cores per worker of {@code local-cluster[n, cores, mem]}, {@code spark.executor.cores}, or the
   * machine's processors where Spark gives an executor all of them) divided by {@code
   * spark.task.cpus}.
   */
  static int taskSlots(SparkConf conf, int processors) {
    String master = conf.get("spark.master", "");
    int cores;
    Matcher local = LOCAL.matcher(master.trim());
    Matcher cluster = LOCAL_CLUSTER.matcher(master.trim());
    if (master.trim().equals("local")) {
      cores = 1;
    } else if (local.matches()) {
      cores = local.group(1).equals("*") ? processors : Integer.parseInt(local.group(1));
    } else if (cluster.matches()) {
      cores = Integer.parseInt(cluster.group(1));
    } else if (conf.contains("spark.executor.cores")) {
      cores = conf.getInt("spark.executor.cores", 1);
    } else {
      // Standalone gives an executor every core of its worker; YARN and Kubernetes give one, and
      // a pool larger than needed costs nothing.
      cores = processors;
    }
    int taskCpus = Math.max(1, conf.getInt("spark.task.cpus", 1));
    return Math.max(1, cores / taskCpus);
  }
}
