/**
 * Internal implementation. <strong>Not supported API</strong>: anything here may change or
 * disappear in any release without notice. Use {@link org.exactlyonce.spark.ExactlyOnce} and the
 * backend builders instead.
 */
package org.exactlyonce.spark.internal;
