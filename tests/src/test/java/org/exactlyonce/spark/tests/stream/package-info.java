/**
 * Tests that the Spark stream reads Kafka and chooses its offset ranges correctly, survives lost
 * executors and bad input, and reports its lag and metrics, on a local Spark with real servers.
 */
package org.exactlyonce.spark.tests.stream;
