/** The benchmark runner: exactly-once sinks against the at-least-once code users write today. */
package org.exactlyonce.spark.examples.bench;
