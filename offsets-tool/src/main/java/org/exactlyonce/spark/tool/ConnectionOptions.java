package org.exactlyonce.spark.tool;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import picocli.CommandLine.Option;

/** Where the offsets are stored and where the source topics are: options shared by every verb. */
final class ConnectionOptions {
  @Option(
      names = "--jdbc-url",
      paramLabel = "URL",
      description =
          "PostgreSQL offsets store: the JDBC URL the sink connects to"
              + " (jdbc:postgresql://host/db). Without it and without --cassandra, the store is a"
              + " Kafka sink's progress group.")
  String jdbcUrl;

  @Option(
      names = "--cassandra",
      paramLabel = "HOST:PORT[,...]",
      split = ",",
      description =
          "Cassandra offsets store: contact points of the cluster the Cassandra sink writes to"
              + " (with --cassandra-dc and --keyspace).")
  List<String> cassandra;

  @Option(
      names = "--cassandra-dc",
      paramLabel = "DC",
      description = "The Cassandra sink's local data center (required with --cassandra).")
  String cassandraDc;

  @Option(
      names = "--keyspace",
      paramLabel = "KEYSPACE",
      description =
          "The keyspace of the Cassandra sink's offsets table: by default the output table's"
              + " (not needed if --offsets-table is keyspace.table).")
  String keyspace;

  @Option(names = "--user", paramLabel = "USER", description = "PostgreSQL or Cassandra user.")
  String user;

  @Option(
      names = "--password-env",
      paramLabel = "NAME",
      description =
          "Environment variable that holds the PostgreSQL or Cassandra password (never given as"
              + " an argument).")
  String passwordEnv;

  @Option(
      names = "--offsets-table",
      paramLabel = "TABLE",
      defaultValue = "eos_offsets",
      description =
          "The sink's offsets table (default: ${DEFAULT-VALUE}); for Cassandra, in --keyspace,"
              + " or keyspace.table.")
  String offsetsTable;

  @Option(
      names = "--writers-table",
      paramLabel = "TABLE",
      defaultValue = "eos_writers",
      description = "The sink's writers table (default: ${DEFAULT-VALUE}).")
  String writersTable;

  @Option(
      names = "--bootstrap-servers",
      paramLabel = "HOST:PORT[,...]",
      description =
          "The Kafka cluster the pipeline reads from (lag, reset). Also the cluster of a Kafka"
              + " sink's progress group unless --progress-bootstrap-servers is given.")
  String bootstrapServers;

  @Option(
      names = "--progress-bootstrap-servers",
      paramLabel = "HOST:PORT[,...]",
      description = "The Kafka cluster a Kafka sink writes to, where its progress group is.")
  String progressServers;

  @Option(
      names = "--progress-group",
      paramLabel = "GROUP",
      description =
          "A Kafka sink's progress group, if the sink set progressGroup(...) (default:"
              + " eos-progress-<pipeline>).")
  String progressGroup;

  @Option(
      names = "--output-topic",
      paramLabel = "TOPIC",
      description =
          "A Kafka sink's output topic: reset --execute needs it (the sink keeps its writer epoch"
              + " under partition 0 of it).")
  String outputTopic;

  @Option(
      names = "--idempotent-sink",
      description =
          "The Kafka sink was built with KafkaSink.idempotent(...) (default: transactional).")
  boolean idempotentSink;

  @Option(
      names = "--kafka-config",
      paramLabel = "FILE",
      description =
          "A properties file of Kafka client settings (security.protocol, ssl.*, sasl.*) for"
              + " every Kafka client of the tool, as kafka-consumer-groups' --command-config.")
  Path kafkaConfig;

  /** The Kafka client settings of {@code --kafka-config}. */
  Map<String, String> kafkaClientConfig() {
    Map<String, String> out = new HashMap<>();
    if (kafkaConfig == null) {
      return out;
    }
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(kafkaConfig)) {
      p.load(r);
    } catch (IOException e) {
      throw new SinkConfigurationException(
          "--kafka-config " + kafkaConfig + " cannot be read: " + e.getMessage(), e);
    }
    p.stringPropertyNames().forEach(k -> out.put(k, p.getProperty(k)));
    return out;
  }

  /**
   * These options as arguments of the tool, for the commands {@code doctor} prints: the same store
   * and source, the password by its variable's name only, the JDBC URL without its parameters.
   *
   * @param forReset whether the command is a reset, which needs a Kafka sink's output topic
   */
  String asArguments(boolean forReset) {
    StringBuilder b = new StringBuilder();
    if (bootstrapServers != null) {
      b.append(" --bootstrap-servers ").append(bootstrapServers);
    }
    if (jdbcUrl != null) {
      b.append(" --jdbc-url ").append(JdbcSettings.url(jdbcUrl).safeUrl());
      if (user != null) {
        b.append(" --user ").append(user);
      }
      if (passwordEnv != null) {
        b.append(" --password-env ").append(passwordEnv);
      }
      if (!"eos_offsets".equals(offsetsTable)) {
        b.append(" --offsets-table ").append(offsetsTable);
      }
      if (!"eos_writers".equals(writersTable)) {
        b.append(" --writers-table ").append(writersTable);
      }
    } else if (cassandra != null) {
      b.append(" --cassandra ").append(String.join(",", cassandra));
      if (cassandraDc != null) {
        b.append(" --cassandra-dc ").append(cassandraDc);
      }
      if (keyspace != null) {
        b.append(" --keyspace ").append(keyspace);
      }
      if (user != null) {
        b.append(" --user ").append(user);
      }
      if (passwordEnv != null) {
        b.append(" --password-env ").append(passwordEnv);
      }
      if (!"eos_offsets".equals(offsetsTable)) {
        b.append(" --offsets-table ").append(offsetsTable);
      }
    } else {
      if (progressServers != null) {
        b.append(" --progress-bootstrap-servers ").append(progressServers);
      }
      if (progressGroup != null) {
        b.append(" --progress-group ").append(progressGroup);
      }
      if (outputTopic != null) {
        b.append(" --output-topic ").append(outputTopic);
      } else if (forReset) {
        b.append(" --output-topic <the sink's output topic>");
      }
      if (idempotentSink) {
        b.append(" --idempotent-sink");
      }
    }
    if (kafkaConfig != null) {
      b.append(" --kafka-config ").append(kafkaConfig);
    }
    return b.toString().trim();
  }

  /**
   * Whether the store is a Kafka sink's progress group (no {@code --jdbc-url}, no {@code
   * --cassandra}).
   */
  boolean kafkaStore() {
    return jdbcUrl == null && cassandra == null;
  }

  private String password(Map<String, String> environment, String what) {
    if (passwordEnv == null) {
      return null;
    }
    String password = environment.get(passwordEnv);
    if (password == null) {
      throw new SinkConfigurationException(
          "--password-env "
              + passwordEnv
              + ": the environment variable "
              + passwordEnv
              + " is not set; export it with the "
              + what
              + " password");
    }
    return password;
  }

  /** The offsets store these options name. */
  PipelineStore openStore(Map<String, String> environment) {
    if (jdbcUrl != null && cassandra != null) {
      throw new SinkConfigurationException(
          "--jdbc-url and --cassandra name two offsets stores: pass the one the sink uses");
    }
    if (jdbcUrl != null) {
      JdbcSettings settings = JdbcSettings.url(jdbcUrl);
      if (user != null) {
        settings = settings.user(user);
      }
      String password = password(environment, "PostgreSQL");
      if (password != null) {
        settings = settings.password(password);
      }
      return new PostgresPipelineStore(settings, offsetsTable, writersTable);
    }
    if (cassandra != null) {
      if (cassandraDc == null) {
        throw new SinkConfigurationException(
            "--cassandra needs --cassandra-dc: the local data center the sink connects to (the"
                + " localDatacenter of its CassandraSettings)");
      }
      CassandraSettings settings =
          CassandraSettings.contactPoints(cassandraDc, cassandra.toArray(new String[0]));
      if (user != null) {
        settings = settings.user(user);
      }
      String password = password(environment, "Cassandra");
      if (password != null) {
        settings = settings.password(password);
      }
      return new CassandraPipelineStore(settings, keyspace, offsetsTable);
    }
    String servers = progressServers != null ? progressServers : bootstrapServers;
    if (servers == null) {
      throw new SinkConfigurationException(
          "no offsets store named: pass --jdbc-url (PostgreSQL offsets table), --cassandra,"
              + " --cassandra-dc and --keyspace (Cassandra offsets table), or"
              + " --bootstrap-servers (a Kafka sink's progress group on the cluster the pipeline"
              + " reads from; --progress-bootstrap-servers if the sink writes to another one)");
    }
    return new KafkaPipelineStore(
        servers, kafkaClientConfig(), progressGroup, outputTopic, !idempotentSink);
  }

  /** The source cluster. */
  SourceLog openSource(String verb) {
    if (bootstrapServers == null) {
      throw new SinkConfigurationException(
          verb
              + " reads the source topics' offsets: pass --bootstrap-servers of the Kafka cluster"
              + " the pipeline reads from");
    }
    return new SourceLog(bootstrapServers, new HashMap<>(kafkaClientConfig()));
  }
}
