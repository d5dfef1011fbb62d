/**
 * Tests that each sink, run against its own real server (PostgreSQL, Kafka, Cassandra), writes
 * every offset range once and keeps that promise through the server's outages, limits and settings.
 */
package org.exactlyonce.spark.tests.backend;
