/**
 * The interfaces a backend implements. Users do not call them; they build a sink with a backend's
 * builder (for example {@code JdbcSink.transactional(...)}) and hand it to {@link
 * org.exactlyonce.spark.ExactlyOnce}.
 */
package org.exactlyonce.spark.spi;
