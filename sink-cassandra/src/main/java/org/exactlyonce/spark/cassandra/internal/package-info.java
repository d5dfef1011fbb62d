/**
 * Internal implementation of the Cassandra sink. <strong>Not supported API</strong>: anything here
 * may change or disappear in any release without notice.
 */
package org.exactlyonce.spark.cassandra.internal;
