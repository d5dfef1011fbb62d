/**
 * Exactly-once output for Spark Streaming jobs that read Kafka through the direct stream.
 *
 * <p>Start here: {@link org.exactlyonce.spark.ExactlyOnce} creates the direct stream from the
 * offsets a sink has stored and wraps {@code foreachRDD} so that each Kafka offset range is written
 * exactly once. Backends live in their own modules ({@code sink-jdbc}, ...).
 */
package org.exactlyonce.spark;
