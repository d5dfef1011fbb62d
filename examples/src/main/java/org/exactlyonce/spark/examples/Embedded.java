package org.exactlyonce.spark.examples;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.exactlyonce.spark.testing.servers.CassandraServer;
import org.exactlyonce.spark.testing.servers.PostgresServer;
import org.exactlyonce.spark.testing.servers.SparkSetup;
import org.exactlyonce.spark.testing.servers.TestServers;

/**
 * The servers the example starts itself, from Maven artifacts (the test harness): a class of its
 * own so that the cluster jar, which leaves the harness out, never loads it.
 */
final class Embedded {
  private boolean any;

  boolean any() {
    return any;
  }

  String kafka() {
    any = true;
    return TestServers.kafka().bootstrapServers();
  }

  /** {url, user} of a new database. */
  String[] postgres() {
    any = true;
    PostgresServer pg = TestServers.postgres();
    return new String[] {pg.createDatabase(), pg.user()};
  }

  /** {host:port, data center}. */
  String[] cassandra() {
    any = true;
    CassandraServer c = TestServers.cassandra();
    return new String[] {c.host() + ":" + c.nativePort(), c.localDatacenter()};
  }

  /** Runs the job of {@code pipeline} in a JVM of its own; returns its exit code. */
  int runJobInChild(AdEventsPipeline pipeline) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx1g");
    cmd.addAll(List.of(SparkSetup.JAVA17_OPTIONS.split(" ")));
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path")));
    cmd.add(AdEventsPipeline.class.getName());
    cmd.addAll(pipeline.jobArguments());
    return new ProcessBuilder(cmd).inheritIO().start().waitFor();
  }
}
