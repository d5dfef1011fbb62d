package org.exactlyonce.spark.tests.contract;

import java.util.Map;
import org.exactlyonce.spark.ExactlyOnceStream;
import org.exactlyonce.spark.spi.ExactlyOnceSink;

/**
 * One backend and strategy, as the contract suite sees it: a sink writing to an output of its own,
 * the output operation that feeds it, and a reader of its whole output. Every input record's value
 * is a unique id, and the sink writes one output per record carrying that id (or adds 1 to the id's
 * total), so "exactly once" is "every input id counts 1, and nothing else is there".
 */
interface SinkUnderTest extends AutoCloseable {

  /** The matrix column, for example "JDBC transactional". */
  String name();

  /** A sink of pipeline {@code pipeline} writing to this fixture's output. */
  ExactlyOnceSink sink(String pipeline);

  /** Registers the output operation of {@code sink} on {@code stream}, mapping value to id. */
  void wire(ExactlyOnceStream<String, String> stream, ExactlyOnceSink sink);

  /**
   * Moves {@code pipeline}'s stored offset of {@code tp} to {@code offset} the way an operator
   * would by hand (or a restore of an old backup would), outside the library.
   */
  void moveOffsetByHand(String pipeline, org.apache.kafka.common.TopicPartition tp, long offset);

  /** Every id in the whole output, with how many times it counts there. */
  Map<String, Long> counts();

  @Override
  default void close() {}
}
