/**
 * The service-provider interface: what a backend implements, and the helpers every backend shares.
 * Users do not call it; they build a sink with a backend's builder (for example {@code
 * JdbcSink.transactional(...)}) and hand it to {@link org.exactlyonce.spark.ExactlyOnce}.
 *
 * <p>A backend implements one of {@link org.exactlyonce.spark.spi.TransactionalSink} (strategy T),
 * {@link org.exactlyonce.spark.spi.IdempotentSink} (strategy I) or {@link
 * org.exactlyonce.spark.spi.BatchSink} (strategy T-batch), plus the driver's {@link
 * org.exactlyonce.spark.spi.OffsetStore}; it checks its outputs before the start in {@link
 * org.exactlyonce.spark.spi.ExactlyOnceSink#checkOutputs()}, apart from its offsets. It commits
 * through {@link org.exactlyonce.spark.spi.CommitProtocol}, the protocol written once (epoch check,
 * lock and read the stored offsets, decide, compare-and-set advance, write), supplying only the
 * primitive, a {@link org.exactlyonce.spark.spi.CommitUnit} over its own transaction or conditional
 * write, and its write path: it never decides a range itself (an ArchUnit rule checks it). It marks
 * the protocol's points with {@link org.exactlyonce.spark.spi.FaultPoints} so that the chaos kit
 * can fail tasks there, keeps credentials out of messages with {@link
 * org.exactlyonce.spark.spi.Secrets}, and checks column values with {@link
 * org.exactlyonce.spark.spi.Rows}.
 *
 * <p>This package is a supported, versioned API for backend authors; {@code
 * org.exactlyonce.spark.internal} is not, and no module but the core imports it (an ArchUnit rule
 * in the tests checks that).
 */
package org.exactlyonce.spark.spi;
