/**
 * Internal implementation of the JDBC sinks. <strong>Not supported API</strong>: anything here may
 * change or disappear in any release without notice.
 */
package org.exactlyonce.spark.jdbc.internal;
