/**
 * The {@code exactly-once-offsets} command: {@code show}, {@code lag}, {@code reset} and {@code
 * doctor} of a pipeline's stored offsets in the PostgreSQL offsets table or a Kafka sink's progress
 * group. Built on the sinks' public API only; {@link org.exactlyonce.spark.tool.OffsetsTool} is its
 * entry point.
 */
package org.exactlyonce.spark.tool;
