package org.exactlyonce.spark.structured;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;
import org.apache.spark.api.java.function.VoidFunction2;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.DataStreamWriter;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.Trigger;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.RecordMapper;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.StartPosition;
import org.exactlyonce.spark.internal.PipelineGuard;
import org.exactlyonce.spark.internal.SparkVersionCheck;
import org.exactlyonce.spark.internal.StartOffsets;
import org.exactlyonce.spark.internal.StartSequence;
import org.exactlyonce.spark.internal.StreamMetrics;
import org.exactlyonce.spark.spi.BatchSink;
import org.exactlyonce.spark.spi.ExactlyOnceSink;
import org.exactlyonce.spark.spi.IdempotentSink;
import org.exactlyonce.spark.spi.OutputColumn;
import org.exactlyonce.spark.spi.TransactionalSink;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Exactly-once {@code foreachBatch} for Structured Streaming over Spark's Kafka source: the
 * library's sinks, offset stores and writer fencing, for a query instead of a DStream.
 *
 * <pre>{@code
 * var totals = JdbcSink.<Row>perBatch("clicks-per-campaign")
 *     .connection(JdbcSettings.url(url).user("app").passwordFromEnv("PGPASSWORD"))
 *     .table("campaign_clicks").columns("campaign", "clicks")
 *     .values(r -> List.of(r.getString(0), r.getLong(1)))
 *     .upsertOn("campaign").accumulating("clicks")
 *     .build();
 * StreamingQuery query =
 *     ExactlyOnceForeachBatch.perBatch(totals)
 *         .kafka(spark, Map.of("kafka.bootstrap.servers", servers, "subscribe", "clicks"))
 *         .batch(df -> df.groupBy(col("value").cast("string").as("campaign")).count())
 *         .start();
 * }</pre>
 *
 * <p>The sink's store owns progress, as on the DStream path: {@link Builder#start()} takes a new
 * writer epoch (fencing an older query of the same pipeline id), stores start offsets for
 * partitions without one, and starts the query at the stored offsets. No Spark checkpoint is
 * needed; with one ({@link Builder#checkpointLocation}), batches Spark replays from a checkpoint
 * behind the sink are skipped or trimmed, and a batch that starts where a checkpoint ahead of the
 * sink left a partition stops the query before the batch writes (the records in between were never
 * written).
 *
 * <p>Each batch's Kafka ranges are read from the batch itself (the input partitions Spark's Kafka
 * source planned), never from the rows, so filters, transaction markers and partitions added while
 * the query runs are all accounted for.
 *
 * <p>Sinks whose stored offsets expire unless written again (the Kafka sinks' progress groups) are
 * kept alive by a driver thread between batches, also while the query has nothing to read; a
 * keep-alive that finds a newer query on the pipeline stops this one.
 *
 * <p>Preview: per-batch (strategy T-batch), transactional (T and K) and idempotent (I) sinks.
 */
public final class ExactlyOnceForeachBatch {
  private static final Logger LOG = LoggerFactory.getLogger(ExactlyOnceForeachBatch.class);

  private ExactlyOnceForeachBatch() {}

  /**
   * A query that writes each micro-batch's results to {@code sink} together with every Kafka range
   * of the batch, in one step (strategy T-batch): results of any shape, shuffles and aggregations
   * included.
   */
  public static PerBatchBuilder perBatch(BatchSink<Row> sink) {
    return new PerBatchBuilder(Objects.requireNonNull(sink, "sink"));
  }

  /**
   * A query that writes each Kafka record's outputs to {@code sink}, each range of a batch with its
   * outputs in one transaction on its executor (strategy T): the same sinks and record mappers as
   * {@link org.exactlyonce.spark.ExactlyOnce#foreachRDD} on a DStream. A replayed range finds its
   * offset stored and writes nothing; a partly committed one writes only the rest.
   */
  public static <R> RecordsBuilder<R> transactional(TransactionalSink<R> sink) {
    TransactionalSink<R> s = Objects.requireNonNull(sink, "sink");
    return new RecordsBuilder<>(
        s, (mapper, epoch, cp, guard) -> RecordsForeach.transactional(s, mapper, epoch, cp, guard));
  }

  /** A per-batch query's settings. */
  public static final class PerBatchBuilder extends Builder<PerBatchBuilder> {
    private final BatchSink<Row> sink;
    private Function<Dataset<Row>, Dataset<Row>> compute;
    private List<OutputColumn> columnsByName = List.of();

    private PerBatchBuilder(BatchSink<Row> sink) {
      super(sink);
      this.sink = sink;
    }

    /**
     * The batch function: turns a micro-batch of Kafka rows ({@code key}, {@code value}, {@code
     * topic}, {@code partition}, {@code offset}, ...; only the rows the sink has not committed)
     * into the rows the sink writes. Runs on the driver once per batch and may shuffle.
     */
    public PerBatchBuilder batch(Function<Dataset<Row>, Dataset<Row>> compute) {
      this.compute = Objects.requireNonNull(compute, "compute");
      return this;
    }

    @Override
    void checkReady() {
      if (compute == null) {
        throw new SinkConfigurationException(
            "no batch function: call batch(df -> ...) before start(), returning the rows to"
                + " write");
      }
    }

    /**
     * Checks the batch function's output schema against the columns a sink with values {@link
     * SparkRows#byName()} fills: applies the function once to the streaming source, which only
     * analyses it (nothing is read or computed; driver-side code in the function runs once more). A
     * function that cannot be applied to a streaming Dataset (it calls an action such as {@code
     * count()}) is checked at every batch only, the first of which runs after the start sequence.
     */
    @Override
    void checkOutput(Dataset<Row> streamingSource) {
      columnsByName = sink.columnsByName();
      if (columnsByName.isEmpty()) {
        return;
      }
      Dataset<Row> out;
      try {
        out = compute.apply(streamingSource);
      } catch (Exception e) {
        // Not only RuntimeException: Spark 3.5's AnalysisException is checked, thrown undeclared.
        LOG.warn(
            "pipeline '{}': the batch function cannot be applied to the streaming source before"
                + " the query starts ({}), so its rows are checked against the sink's columns at"
                + " each batch, the first after this query's writer epoch is taken",
            sink.pipelineId(),
            e.toString());
        return;
      }
      if (out != null) {
        OutputSchema.check(sink.pipelineId(), columnsByName, out.schema());
      }
    }

    @Override
    VoidFunction2<Dataset<Row>, Long> function(long epoch, PipelineGuard guard) {
      return new PerBatchForeach(sink, compute, epoch, checkpointLocation(), columnsByName, guard);
    }
  }

  /**
   * A query that writes each Kafka record's outputs to {@code sink} as upserts under a
   * deterministic key, then advances the batch's stored offsets on the driver (strategy I): the
   * same sinks and record mappers as {@link org.exactlyonce.spark.ExactlyOnce#foreachRDD} on a
   * DStream. A replayed range writes the same rows under the same keys again.
   */
  public static <R> RecordsBuilder<R> idempotent(IdempotentSink<R> sink) {
    IdempotentSink<R> s = Objects.requireNonNull(sink, "sink");
    return new RecordsBuilder<>(
        s, (mapper, epoch, cp, guard) -> RecordsForeach.idempotent(s, mapper, epoch, cp, guard));
  }

  /** The settings of a query that maps each record to outputs (strategies T and I). */
  public static final class RecordsBuilder<R> extends Builder<RecordsBuilder<R>> {
    /** The strategy's batch function, for a mapper and a writer epoch. */
    private interface Strategy<R> {
      RecordsForeach create(
          RecordMapper<byte[], byte[], R> mapper, long epoch, String cp, PipelineGuard guard);
    }

    private final Strategy<R> strategy;
    private RecordMapper<byte[], byte[], R> mapper;

    private RecordsBuilder(ExactlyOnceSink sink, Strategy<R> strategy) {
      super(sink);
      this.strategy = strategy;
    }

    /**
     * The record mapper: the outputs of one Kafka record, as Spark's Kafka source reads it (key and
     * value as bytes; headers with the source option {@code includeHeaders=true}). It must be
     * deterministic: a replayed range maps the same records again.
     */
    public RecordsBuilder<R> foreachRecord(RecordMapper<byte[], byte[], R> mapper) {
      this.mapper = Objects.requireNonNull(mapper, "mapper");
      return this;
    }

    @Override
    void checkReady() {
      if (mapper == null) {
        throw new SinkConfigurationException(
            "no record mapper: call foreachRecord(record -> ...) before start(), returning the"
                + " outputs of each record");
      }
      if (!sink().columnsByName().isEmpty()) {
        throw new SinkConfigurationException(
            "pipeline '"
                + sink().pipelineId()
                + "': values by name (SparkRows.byName) are checked and supported for"
                + " ExactlyOnceForeachBatch.perBatch(...) so far: write with perBatch, or give the"
                + " sink values(row -> List.of(...)) in column order");
      }
      for (String split : List.of("minPartitions", "maxRecordsPerPartition")) {
        if (source().has(split)) {
          throw new SinkConfigurationException(
              "Kafka source option "
                  + split
                  + " splits a partition's range over several tasks, and this sink commits one"
                  + " range per task: remove "
                  + split
                  + ", or write with ExactlyOnceForeachBatch.perBatch(...)");
        }
      }
    }

    @Override
    VoidFunction2<Dataset<Row>, Long> function(long epoch, PipelineGuard guard) {
      return strategy.create(mapper, epoch, checkpointLocation(), guard);
    }
  }

  /**
   * The settings every query has; {@link #start()} validates them before anything runs.
   *
   * @param <B> the builder's own type
   */
  public abstract static class Builder<B extends Builder<B>> {
    private final ExactlyOnceSink sink;
    private SparkSession spark;
    private KafkaSourceOptions source;
    private StartPosition start = StartPosition.earliest();
    private Trigger trigger;
    private String checkpointLocation;

    Builder(ExactlyOnceSink sink) {
      this.sink = sink;
    }

    @SuppressWarnings("unchecked")
    private B self() {
      return (B) this;
    }

    KafkaSourceOptions source() {
      return source;
    }

    ExactlyOnceSink sink() {
      return sink;
    }

    String checkpointLocation() {
      return checkpointLocation;
    }

    /** Checks the strategy's own settings. */
    abstract void checkReady();

    /**
     * Checks what the query writes against the sink's backend, before anything else touches it,
     * given Spark's Kafka source loaded with the query's options (not started). Default: nothing.
     */
    void checkOutput(Dataset<Row> streamingSource) {}

    /**
     * Has Spark's Kafka source take the options, without a start: it checks them (and that it is on
     * the classpath at all) only when a query loads it, which must not be after this query's writer
     * epoch fenced the running one.
     */
    private static Dataset<Row> checkSource(SparkSession spark, KafkaSourceOptions source) {
      try {
        return spark.readStream().format("kafka").options(source.options()).load();
      } catch (Exception e) {
        // Not only RuntimeException: Spark 3.5's AnalysisException is checked, thrown undeclared.
        String scalaVersion = scala.util.Properties.versionNumberString();
        throw new SinkConfigurationException(
            "Spark's Kafka source did not take the query's options ("
                + e.getMessage()
                + "): correct the option it names; if the source is missing, add"
                + " org.apache.spark:spark-sql-kafka-0-10_"
                + scalaVersion.substring(0, scalaVersion.lastIndexOf('.'))
                + ":"
                + spark.version()
                + " to the job (spark-submit --packages). Nothing was started",
            e);
      }
    }

    /**
     * Whether Spark's source matches a {@code subscribePattern} against whole topic names (its
     * deprecated, consumer-based offset fetching) rather than finding it in them (the default).
     */
    private static boolean wholeTopicNames(SparkSession spark) {
      return Boolean.parseBoolean(
          spark.conf().get("spark.sql.streaming.kafka.useDeprecatedOffsetFetching", "false"));
    }

    /** The function {@code foreachBatch} runs, for writer {@code epoch}. */
    abstract VoidFunction2<Dataset<Row>, Long> function(long epoch, PipelineGuard guard);

    /**
     * Reads with Spark's Kafka source, {@code options} as for {@code
     * spark.readStream().format("kafka")}: {@code kafka.bootstrap.servers} and one of {@code
     * subscribe}, {@code subscribePattern} and {@code assign} at least. Options that set a start
     * ({@code startingOffsets}, {@code startingTimestamp}, ...) are refused (the sink's store
     * decides), and so is {@code failOnDataLoss=false}.
     *
     * @throws SinkConfigurationException naming the option and the fix
     */
    public B kafka(SparkSession spark, Map<String, String> options) {
      this.spark = Objects.requireNonNull(spark, "spark");
      this.source = KafkaSourceOptions.of(options);
      return self();
    }

    /**
     * Where a pipeline starts the first time, for partitions of topics it never stored (default:
     * earliest). Afterwards the stored offsets decide. With {@code subscribePattern}, a topic the
     * pattern comes to match after the first start (created later, or matched by a pattern made
     * wider) starts at its earliest offset, as the source reads a topic it finds while running,
     * unless an explicit position ({@link StartPosition#offsets(java.util.Map)}) names its
     * partitions.
     */
    public B startPosition(StartPosition start) {
      this.start = Objects.requireNonNull(start, "start");
      return self();
    }

    /** The query's trigger (default: Spark's, a batch as soon as the previous one ends). */
    public B trigger(Trigger trigger) {
      this.trigger = Objects.requireNonNull(trigger, "trigger");
      return self();
    }

    /**
     * A checkpoint directory for the query. Not needed: the sink's stored offsets are where the
     * query starts, and the query this builder starts keeps no state of its own. For deployments
     * that keep one anyway, the sink's offsets still decide what is written: batches replayed from
     * a checkpoint behind the sink write nothing twice, and the first batch that reads a partition
     * from where a checkpoint ahead of the sink left it stops the query before that batch writes.
     */
    public B checkpointLocation(String path) {
      this.checkpointLocation = Objects.requireNonNull(path, "path");
      return self();
    }

    /**
     * Validates the sink against its backend, takes a new writer epoch (an older query or job of
     * the same pipeline id is fenced from now on), stores start offsets for partitions without one
     * and starts the query at the stored offsets.
     *
     * @throws SinkConfigurationException if a setting, a topic or the sink's backend is wrong
     * @throws org.exactlyonce.spark.OffsetMismatchException if a stored offset is no longer in
     *     Kafka, lies past its end, or was moved back outside the library
     */
    public StreamingQuery start() {
      if (source == null) {
        throw new SinkConfigurationException(
            "no source: call kafka(spark, options) before start()");
      }
      checkReady();
      // Before the start sequence: a query Spark's source refuses, or whose rows do not fit,
      // fences no running one.
      checkOutput(checkSource(spark, source));
      SparkVersionCheck.checkRunning(spark.version(), spark.sparkContext().getConf());
      StartSequence.Started started;
      try (StartOffsets kafka = source.startOffsets(wholeTopicNames(spark));
          StartSequence.Validated validated = StartSequence.validate(List.of(sink))) {
        started = validated.takeEpochs(kafka).resolve(kafka, start);
      }
      PipelineGuard guard =
          PipelineGuard.withoutContext(new StreamMetrics(Set.of(sink.pipelineId()), false));
      started.stored().forEach((id, stored) -> guard.markStored(id, stored.keySet()));
      long epoch = started.epochs().get(sink.pipelineId());
      Dataset<Row> input =
          spark
              .readStream()
              .format("kafka")
              .options(source.options())
              .option("startingOffsets", KafkaSourceOptions.startingOffsetsJson(started.from()))
              .load();
      VoidFunction2<Dataset<Row>, Long> batches = function(epoch, guard);
      IdleKeepAlive keepAlive = null;
      if (IdleKeepAlive.needed(sink)) {
        keepAlive = new IdleKeepAlive(sink, epoch, guard);
        batches = keepAlive.aroundBatches(batches);
      }
      DataStreamWriter<Row> writer = input.writeStream().foreachBatch(batches);
      if (trigger != null) {
        writer = writer.trigger(trigger);
      }
      if (checkpointLocation != null) {
        writer = writer.option("checkpointLocation", checkpointLocation);
      }
      try {
        StreamingQuery query = writer.start();
        if (keepAlive != null) {
          keepAlive.start(query);
        }
        return query;
      } catch (RuntimeException e) {
        throw e;
      } catch (Exception e) {
        // Spark declares a TimeoutException (waiting for another run of the same query to stop).
        throw new ExactlyOnceException(
            "the query of pipeline '" + sink.pipelineId() + "' did not start: " + e, e);
      }
    }
  }
}
