package org.exactlyonce.spark.tests.contract;

import java.util.List;
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
   * Registers the output operation of {@code sink} on {@code stream} with {@code mapper}, for a
   * sink fed by a record mapper.
   */
  default void wire(
      ExactlyOnceStream<String, String> stream,
      ExactlyOnceSink sink,
      org.exactlyonce.spark.RecordMapper<String, String, String> mapper) {
    throw new UnsupportedOperationException(name() + " is not fed by a record mapper");
  }

  /**
   * Moves {@code pipeline}'s stored offset of {@code tp} to {@code offset} the way an operator
   * would by hand (or a restore of an old backup would), outside the library.
   */
  void moveOffsetByHand(String pipeline, org.apache.kafka.common.TopicPartition tp, long offset);

  /**
   * A sink of {@code pipeline} like {@link #sink}, but whose backend is at {@code address} ({@code
   * host:port} where nothing listens), with {@code secret} as the password wherever this backend's
   * settings take credentials.
   */
  ExactlyOnceSink unreachableSink(String pipeline, String address, String secret);

  /**
   * A sink of {@code pipeline} like {@link #sink}, its offsets in the same place, but whose output
   * (table or topic) does not exist, as if its name were mistyped.
   */
  ExactlyOnceSink sinkWithMissingOutput(String pipeline);

  /** Where this sink keeps its offsets in tables of its backend; null if not in tables. */
  default OffsetTables offsetTables() {
    return null;
  }

  /** The offsets tables of a sink that creates them. */
  interface OffsetTables {
    /** The name of an offsets table that does not exist yet, as the sink's builder takes it. */
    String missingTable();

    /** Every table that a sink with offsets table {@code offsetsTable} creates for its offsets. */
    List<String> createdWith(String offsetsTable);

    /**
     * A sink of {@code pipeline} like {@link SinkUnderTest#sink}, offsets in {@code offsetsTable}.
     */
    ExactlyOnceSink sink(String pipeline, String offsetsTable);

    /** An existing table that is not an offsets table, for a sink to be pointed at by mistake. */
    String tableOfAnotherShape();

    /** The columns of {@code table} as the backend describes them, empty if it does not exist. */
    Map<String, String> columns(String table);
  }

  /** Where this sink routes records the mapper fails on; null if it cannot. */
  default DeadLetters deadLetters() {
    return null;
  }

  /** The dead letters of a sink that routes bad records to them. */
  interface DeadLetters {
    /** A sink of {@code pipeline} like {@link SinkUnderTest#sink}, with dead letters. */
    ExactlyOnceSink sink(String pipeline);

    /**
     * The source position ({@code topic-partition@offset}) of every dead letter of {@code
     * pipeline}, once per dead letter a reader sees.
     */
    List<String> positions(String pipeline);
  }

  /** Every id in the whole output, with how many times it counts there. */
  Map<String, Long> counts();

  @Override
  default void close() {}
}
