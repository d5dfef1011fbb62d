/**
 * Real servers for tests and examples, started from Maven artifacts with no Docker: PostgreSQL
 * (embedded binaries), Kafka in KRaft mode and Cassandra 5 (each in a forked JVM), and Spark
 * configurations whose executors are separate JVMs. Every server can be stopped, killed with
 * SIGKILL and restarted on the same data, which the chaos tests need. {@link
 * org.exactlyonce.spark.testing.servers.TestServers} shares one of each per JVM.
 */
package org.exactlyonce.spark.testing.servers;
