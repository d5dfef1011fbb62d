/**
 * Kafka output: {@link org.exactlyonce.spark.kafka.KafkaSink#transactional} writes each offset
 * range's outputs and its progress offset in one Kafka transaction; {@link
 * org.exactlyonce.spark.kafka.KafkaSink#idempotent} writes without transactions and marks every
 * output with its {@link org.exactlyonce.spark.kafka.SourcePosition}, which {@link
 * org.exactlyonce.spark.kafka.SourcePositionDeduplicator} uses to drop replays on the reading side.
 */
package org.exactlyonce.spark.kafka;
