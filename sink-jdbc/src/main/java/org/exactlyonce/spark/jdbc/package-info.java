/**
 * Exactly-once sinks for PostgreSQL through Jdbi3. Start with {@link
 * org.exactlyonce.spark.jdbc.JdbcSink#transactional(String)}.
 */
package org.exactlyonce.spark.jdbc;
