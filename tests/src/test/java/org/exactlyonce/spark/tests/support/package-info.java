/**
 * Shared helpers of the integration tests (a database per test, Cassandra sessions, Kafka output
 * readers, outages, a stream harness); they prove nothing themselves.
 */
package org.exactlyonce.spark.tests.support;
