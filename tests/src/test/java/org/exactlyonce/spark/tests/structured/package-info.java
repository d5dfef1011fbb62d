/** The Structured Streaming adapter against real Kafka, PostgreSQL and Spark. */
package org.exactlyonce.spark.tests.structured;
