/** Internals of the Kafka sinks; not a public API, may change without notice. */
package org.exactlyonce.spark.kafka.internal;
