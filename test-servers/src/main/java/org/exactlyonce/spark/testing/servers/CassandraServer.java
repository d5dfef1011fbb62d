package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Cassandra 5.0 node in a child JVM, from the jars of {@code
 * org.apache.cassandra:cassandra-all}. It runs with {@code commitlog_sync: batch}: an acknowledged
 * write survives kill -9 (with the default periodic sync, a kill -9 was seen to lose about 200
 * acknowledged writes, which a chaos test would blame on the sink). Stop, kill and restart keep the
 * data directory.
 */
public final class CassandraServer implements AutoCloseable {
  private static final String CLASSPATH_RESOURCE =
      "/org/exactlyonce/spark/testing/servers/cassandra-server.classpath";

  /** The JPMS block of Cassandra's conf/jvm17-server.options, which is not inside its jar. */
  private static final List<String> JVM17_OPTIONS =
      List.of(
          "--add-exports",
          "java.base/jdk.internal.misc=ALL-UNNAMED",
          "--add-exports",
          "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
          "--add-exports",
          "java.rmi/sun.rmi.registry=ALL-UNNAMED",
          "--add-exports",
          "java.rmi/sun.rmi.server=ALL-UNNAMED",
          "--add-exports",
          "java.sql/java.sql=ALL-UNNAMED",
          "--add-exports",
          "java.base/java.lang.ref=ALL-UNNAMED",
          "--add-exports",
          "jdk.unsupported/sun.misc=ALL-UNNAMED",
          "--add-exports",
          "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
          "--add-exports",
          "jdk.attach/sun.tools.attach=ALL-UNNAMED",
          "--add-opens",
          "java.base/java.lang.module=ALL-UNNAMED",
          "--add-opens",
          "java.base/jdk.internal.loader=ALL-UNNAMED",
          "--add-opens",
          "java.base/jdk.internal.ref=ALL-UNNAMED",
          "--add-opens",
          "java.base/jdk.internal.reflect=ALL-UNNAMED",
          "--add-opens",
          "java.base/jdk.internal.math=ALL-UNNAMED",
          "--add-opens",
          "java.base/jdk.internal.module=ALL-UNNAMED",
          "--add-opens",
          "java.base/jdk.internal.util.jar=ALL-UNNAMED",
          "--add-opens",
          "jdk.management/com.sun.management.internal=ALL-UNNAMED",
          "--add-opens",
          "java.base/sun.nio.ch=ALL-UNNAMED",
          "--add-opens",
          "java.base/java.io=ALL-UNNAMED",
          "--add-opens",
          "java.base/java.lang.reflect=ALL-UNNAMED",
          "--add-opens",
          "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
          "--add-opens",
          "java.base/java.lang=ALL-UNNAMED",
          "--add-opens",
          "java.base/java.util=ALL-UNNAMED",
          "-Dio.netty.tryReflectionSetAccessible=true",
          "-Dio.netty.allocator.useCacheForAllThreads=true",
          "-Dio.netty.allocator.maxOrder=11");

  private final Path dir;
  private final String host;
  private final int nativePort;
  private final int storagePort;
  private final String datacenter;
  private ForkedJvm jvm;

  /** The superuser of a node started with {@link #startRequiringPasswords}, and its password. */
  public static final String SUPERUSER = "cassandra";

  public static final String SUPERUSER_PASSWORD = "cassandra";

  private CassandraServer(Path dir, String host, int nativePort, String datacenter) {
    this.dir = dir;
    this.host = host;
    this.nativePort = nativePort;
    this.storagePort = dir == null ? -1 : Ports.free();
    this.datacenter = datacenter;
  }

  /**
   * A node that runs elsewhere (a Testcontainers container, a local install): it cannot be stopped,
   * killed or restarted from here.
   */
  public static CassandraServer external(String host, int nativePort, String datacenter) {
    return new CassandraServer(null, host, nativePort, datacenter);
  }

  /**
   * Writes a one-node configuration under {@code dir} and starts the node. Its data lives in {@code
   * dataDir} (a tmpfs such as /dev/shm keeps batch commit-log sync fast).
   */
  public static CassandraServer start(Path dir, TlsMaterial tls) {
    CassandraServer server = new CassandraServer(dir, "127.0.0.1", Ports.free(), "datacenter1");
    server.configure(tls, "AllowAllAuthenticator");
    server.startProcess();
    return server;
  }

  /**
   * A second node that authenticates every client ({@code PasswordAuthenticator}); its default
   * superuser is {@value #SUPERUSER} / {@value #SUPERUSER_PASSWORD}, ready as soon as the CQL port
   * is.
   */
  public static CassandraServer startRequiringPasswords(Path dir, TlsMaterial tls) {
    CassandraServer server = new CassandraServer(dir, "127.0.0.1", Ports.free(), "datacenter1");
    server.configure(tls, "PasswordAuthenticator");
    server.startProcess();
    return server;
  }

  /** The host of the CQL port. */
  public String host() {
    return host;
  }

  /** The CQL port. */
  public int nativePort() {
    return nativePort;
  }

  /** The local data center of the node, for driver configuration. */
  public String localDatacenter() {
    return datacenter;
  }

  private void requireEmbedded() {
    if (dir == null) {
      throw new UnsupportedOperationException(
          "the external Cassandra at "
              + host
              + ":"
              + nativePort
              + " cannot be stopped, killed or restarted from here: fault-injection tests need the"
              + " embedded node (unset EOS_TEST_CASSANDRA_HOST)");
    }
  }

  public long pid() {
    requireEmbedded();
    return jvm.pid();
  }

  private void configure(TlsMaterial tls, String authenticator) {
    try {
      Files.createDirectories(dir.resolve("logs"));
      String d = dir.toAbsolutePath().toString();
      String yaml =
          String.join(
              "\n",
              "cluster_name: exactly-once-test",
              "num_tokens: 1",
              "initial_token: 0",
              "partitioner: org.apache.cassandra.dht.Murmur3Partitioner",
              "authenticator: " + authenticator,
              "authorizer: AllowAllAuthorizer",
              "data_file_directories: [" + d + "/data]",
              "commitlog_directory: " + d + "/commitlog",
              "saved_caches_directory: " + d + "/saved_caches",
              "hints_directory: " + d + "/hints",
              "cdc_raw_directory: " + d + "/cdc_raw",
              "# Every acknowledged write is in the commit log on disk: survives kill -9.",
              "commitlog_sync: batch",
              "commitlog_segment_size: 8MiB",
              "seed_provider:",
              "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
              "    parameters:",
              "      - seeds: \"127.0.0.1:" + storagePort + "\"",
              "listen_address: 127.0.0.1",
              "rpc_address: 127.0.0.1",
              "storage_port: " + storagePort,
              "native_transport_port: " + nativePort,
              "start_native_transport: true",
              "endpoint_snitch: SimpleSnitch",
              "memtable_heap_space: 64MiB",
              "memtable_offheap_space: 64MiB",
              "key_cache_size: 0MiB",
              "row_cache_size: 0MiB",
              "counter_cache_size: 0MiB",
              "auto_snapshot: false",
              "concurrent_reads: 8",
              "concurrent_writes: 8",
              "concurrent_counter_writes: 8",
              "# TLS on the CQL port, optional: clients may connect with or without it.",
              "client_encryption_options:",
              "  enabled: true",
              "  optional: true",
              "  keystore: " + tls.keyStore().toAbsolutePath(),
              "  keystore_password: " + TlsMaterial.STORE_PASSWORD,
              "  store_type: PKCS12",
              "");
      Files.writeString(dir.resolve("cassandra.yaml"), yaml);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void startProcess() {
    List<String> opts = new ArrayList<>();
    opts.addAll(
        List.of(
            "-Xms512m",
            "-Xmx512m",
            "-Xss256k",
            "-XX:+UseG1GC",
            "-Djava.net.preferIPv4Stack=true",
            "-Djdk.attach.allowAttachSelf=true"));
    opts.addAll(JVM17_OPTIONS);
    String d = dir.toAbsolutePath().toString();
    opts.addAll(
        List.of(
            "-Dcassandra.config=file://" + d + "/cassandra.yaml",
            "-Dcassandra.storagedir=" + d,
            "-Dcassandra.logdir=" + d + "/logs",
            "-Dcassandra-foreground=yes",
            // One node: nothing to gossip with, so do not wait for gossip to settle.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=100",
            // With PasswordAuthenticator: create the default superuser at once, not after 10 s.
            "-Dcassandra.superuser_setup_delay_ms=0"));
    jvm =
        ForkedJvm.start(
            "cassandra",
            ServerClasspath.read(CLASSPATH_RESOURCE),
            opts,
            "org.apache.cassandra.service.CassandraDaemon",
            List.of(),
            dir.resolve("logs").resolve("stdout.log"));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!Ports.accepts(nativePort)) {
      if (!jvm.isAlive()) {
        throw new IllegalStateException("Cassandra exited at start:\n" + jvm.tail());
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("Cassandra did not open its CQL port:\n" + jvm.tail());
      }
      Ports.sleep(200);
    }
  }

  /** Graceful stop (SIGTERM). */
  public void stop() {
    if (jvm != null && jvm.isAlive()) {
      jvm.stop(30);
      Ports.awaitClosed(nativePort, Duration.ofSeconds(30));
    }
  }

  /** SIGKILL: nothing is flushed; the commit log is replayed at restart. */
  public void kill() {
    requireEmbedded();
    if (jvm != null) {
      jvm.kill();
      Ports.awaitClosed(nativePort, Duration.ofSeconds(30));
    }
  }

  /** Starts the node again on the same data and ports. */
  public void restart() {
    requireEmbedded();
    stop();
    startProcess();
  }

  @Override
  public void close() {
    if (jvm != null) {
      jvm.kill();
    }
  }

  @Override
  public String toString() {
    return "CassandraServer(" + host + ":" + nativePort + ", " + jvm + ")";
  }
}
