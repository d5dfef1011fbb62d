package org.exactlyonce.spark.cassandra.internal;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.RowValues;
import org.exactlyonce.spark.cassandra.AmountFunction;
import org.exactlyonce.spark.cassandra.CassandraSettings;
import org.exactlyonce.spark.cassandra.TimestampFunction;

/** The validated configuration of a Cassandra sink. Immutable and serialisable. */
public record CassandraSpec<R>(
    PipelineId pipelineId,
    CassandraSettings settings,
    CqlName offsetsTable,
    CqlName table,
    List<String> columns,
    RowValues<R> values,
    Mode mode,
    List<String> positionColumns,
    TimestampFunction<R> timestamp,
    String totalColumn,
    AmountFunction<R> amount,
    CqlName deadLetters)
    implements Serializable {

  /** How outputs are keyed and ordered. */
  public enum Mode {
    /** One row per output, keyed by (topic, partition, offset, index). */
    SOURCE_POSITION,
    /** A natural key; the source offset is the write timestamp. */
    NATURAL_KEY_OFFSET_TIMESTAMP,
    /** A natural key; the output's own timestamp (event time). */
    NATURAL_KEY_RECORD_TIMESTAMP,
    /**
     * A running total per natural key, applied once per source position by a conditional update.
     */
    RUNNING_TOTAL
  }

  /**
   * The map column where running totals remember the last offset applied per pipeline and source
   * partition.
   */
  public static final String APPLIED_COLUMN = "eos_applied";

  /**
   * The key of {@link #APPLIED_COLUMN} for {@code pipeline} and source partition {@code topic},
   * {@code partition}: {@code pipeline/topic-partition}. Unambiguous: neither pipeline ids nor
   * topic names contain '/'.
   */
  public static String appliedKey(PipelineId pipeline, String topic, int partition) {
    return pipeline.value() + "/" + legacyAppliedKey(topic, partition);
  }

  /** The key older versions wrote, without the pipeline: {@code topic-partition}. */
  public static String legacyAppliedKey(String topic, int partition) {
    return topic + "-" + partition;
  }

  /** Every column an INSERT of this sink names, in value order. */
  public List<String> insertColumns() {
    List<String> all = new ArrayList<>(columns);
    all.addAll(positionColumns);
    return all;
  }
}
