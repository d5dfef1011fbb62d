/**
 * A small chaos kit for a user's own streaming job: {@link org.exactlyonce.spark.chaos.ChaosRun}
 * starts the job's driver JVM, fires a seeded schedule of {@link org.exactlyonce.spark.chaos.Fault
 * faults} (executor or driver JVM killed with SIGKILL, servers restarted, connections dropped, any
 * action of the user's), starts the driver again whenever it died, records whether each fault
 * really hit something ({@link org.exactlyonce.spark.chaos.FaultOutcome}), and waits until the job
 * finishes; {@link org.exactlyonce.spark.chaos.TaskFaults} makes tasks fail at chosen points of the
 * commit protocol inside executor JVMs; {@link org.exactlyonce.spark.chaos.Oracle} compares the
 * whole output with the input. JDK only: it starts processes and reads /proc, it does not link
 * against Spark.
 */
package org.exactlyonce.spark.chaos;
