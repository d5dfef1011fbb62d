/**
 * Exactly-once output to Apache Cassandra by idempotent writes (strategy I). Start with {@link
 * org.exactlyonce.spark.cassandra.CassandraSink#idempotent(String)}.
 */
package org.exactlyonce.spark.cassandra;
