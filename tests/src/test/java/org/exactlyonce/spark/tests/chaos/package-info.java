/**
 * Tests that every record is still written exactly once when faults hit a stream under load: killed
 * executors and drivers, restarted servers, speculative task copies and batches too large for the
 * driver's heap.
 */
package org.exactlyonce.spark.tests.chaos;
