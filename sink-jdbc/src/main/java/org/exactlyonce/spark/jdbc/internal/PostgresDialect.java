package org.exactlyonce.spark.jdbc.internal;

import java.io.Serializable;
import java.util.List;

/**
 * Every SQL statement the JDBC sinks run, in one place. Identifiers are validated {@link
 * SqlIdentifier}s; every value is a bind parameter.
 */
public final class PostgresDialect implements Serializable {
  private static final long serialVersionUID = 1L;

  private final SqlIdentifier offsets;
  private final SqlIdentifier writers;

  public PostgresDialect(SqlIdentifier offsets, SqlIdentifier writers) {
    this.offsets = offsets;
    this.writers = writers;
  }

  public SqlIdentifier offsetsTable() {
    return offsets;
  }

  public SqlIdentifier writersTable() {
    return writers;
  }

  /** The offsets table: one row per (pipeline, topic, partition), the next offset to process. */
  public String createOffsetsTable() {
    return "CREATE TABLE IF NOT EXISTS "
        + offsets.sql()
        + " (\n"
        + "  pipeline_id     varchar(200) NOT NULL,\n"
        + "  topic           varchar(255) NOT NULL,\n"
        + "  kafka_partition integer      NOT NULL,\n"
        + "  until_offset    bigint       NOT NULL,\n"
        + "  writer_epoch    bigint       NOT NULL,\n"
        + "  updated_at      timestamptz  NOT NULL DEFAULT now(),\n"
        + "  high_water      bigint,\n"
        + "  PRIMARY KEY (pipeline_id, topic, kafka_partition)\n"
        + ")";
  }

  /**
   * Adds the high-water mark to an offsets table created by an earlier version (null until the
   * partition's next commit).
   */
  public String addHighWater() {
    return "ALTER TABLE " + offsets.sql() + " ADD COLUMN IF NOT EXISTS high_water bigint";
  }

  /** Starts the marks of an offsets table that had none at its stored offsets. */
  public String backfillHighWater() {
    return "UPDATE " + offsets.sql() + " SET high_water = until_offset WHERE high_water IS NULL";
  }

  /** Offsets below their high-water mark. Binds: pipeline. */
  public String highWaterMarks() {
    return "SELECT topic, kafka_partition, high_water FROM "
        + offsets.sql()
        + " WHERE pipeline_id = :pipeline AND high_water IS NOT NULL";
  }

  /**
   * Sets an offset and its high-water mark on purpose. Binds: pipeline, topic, partition, offset,
   * epoch.
   */
  public String rewindOffset() {
    return "INSERT INTO "
        + offsets.sql()
        + " AS o (pipeline_id, topic, kafka_partition, until_offset, writer_epoch, high_water)"
        + " VALUES (:pipeline, :topic, :partition, :offset, :epoch, :offset)"
        + " ON CONFLICT (pipeline_id, topic, kafka_partition) DO UPDATE SET until_offset ="
        + " excluded.until_offset, high_water = excluded.high_water, writer_epoch ="
        + " excluded.writer_epoch, updated_at = now()";
  }

  /** The writers table: the current writer epoch of each pipeline (fencing). */
  public String createWritersTable() {
    return "CREATE TABLE IF NOT EXISTS "
        + writers.sql()
        + " (\n"
        + "  pipeline_id  varchar(200) PRIMARY KEY,\n"
        + "  writer_epoch bigint       NOT NULL,\n"
        + "  taken_at     timestamptz  NOT NULL DEFAULT now(),\n"
        + "  taken_by     varchar(255)\n"
        + ")";
  }

  /** The dead-letter table: records the mapper failed on, keyed by pipeline and position. */
  public String createDeadLetterTable(SqlIdentifier t) {
    return "CREATE TABLE IF NOT EXISTS "
        + t.sql()
        + " (\n"
        + "  pipeline_id     varchar(200) NOT NULL,\n"
        + "  topic           varchar(255) NOT NULL,\n"
        + "  kafka_partition integer      NOT NULL,\n"
        + "  src_offset      bigint       NOT NULL,\n"
        + "  record_key      bytea,\n"
        + "  record_value    bytea,\n"
        + "  error           text         NOT NULL,\n"
        + "  written_at      timestamptz  NOT NULL DEFAULT now(),\n"
        + "  PRIMARY KEY (pipeline_id, topic, kafka_partition, src_offset)\n"
        + ")";
  }

  /** Stores one dead letter; a replay of the same position keeps the first. */
  public String insertDeadLetter(SqlIdentifier t) {
    return "INSERT INTO "
        + t.sql()
        + " (pipeline_id, topic, kafka_partition, src_offset, record_key, record_value, error)"
        + " VALUES (:pipeline, :topic, :partition, :offset, :key, :value, :error)"
        + " ON CONFLICT (pipeline_id, topic, kafka_partition, src_offset) DO NOTHING";
  }

  /** Expected columns of the offsets table and their {@code information_schema} data types. */
  public static final List<List<String>> OFFSETS_COLUMNS =
      List.of(
          List.of("pipeline_id", "character varying", "text"),
          List.of("topic", "character varying", "text"),
          List.of("kafka_partition", "integer"),
          List.of("until_offset", "bigint"),
          List.of("writer_epoch", "bigint"),
          List.of("updated_at", "timestamp with time zone"));

  /** The key of the offsets table, which its upserts name in ON CONFLICT. */
  public static final List<String> OFFSETS_KEY = List.of("pipeline_id", "topic", "kafka_partition");

  /** Expected columns of a dead-letter table, as {@link #insertDeadLetter} writes them. */
  public static final List<List<String>> DEAD_LETTER_COLUMNS =
      List.of(
          List.of("pipeline_id", "character varying", "text"),
          List.of("topic", "character varying", "text"),
          List.of("kafka_partition", "integer"),
          List.of("src_offset", "bigint"),
          List.of("record_key", "bytea"),
          List.of("record_value", "bytea"),
          List.of("error", "text", "character varying"));

  /** The key of a dead-letter table, which its inserts name in ON CONFLICT. */
  public static final List<String> DEAD_LETTER_KEY =
      List.of("pipeline_id", "topic", "kafka_partition", "src_offset");

  /** Expected columns of the writers table. */
  public static final List<List<String>> WRITERS_COLUMNS =
      List.of(
          List.of("pipeline_id", "character varying", "text"),
          List.of("writer_epoch", "bigint"),
          List.of("taken_at", "timestamp with time zone"),
          List.of("taken_by", "character varying", "text"));

  /** The key of the writers table, which taking an epoch names in ON CONFLICT. */
  public static final List<String> WRITERS_KEY = List.of("pipeline_id");

  /**
   * Columns of a table: name and data type. Binds: table (as in SQL). The table is the one {@code
   * to_regclass} finds, that is the one every statement of the sink finds: with its schema, or in
   * the first schema of the search path that has it (not only in {@code current_schema()}).
   */
  public String columnsOf() {
    return "SELECT column_name, data_type FROM information_schema.columns"
        + " WHERE (table_schema, table_name) = (SELECT n.nspname::text, c.relname::text"
        + " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        + " WHERE c.oid = to_regclass(:table))";
  }

  /**
   * Columns of a table with their full types ({@code format_type}, as DDL spells them, e.g. {@code
   * numeric(10,2)}), resolved like {@link #columnsOf()}. Binds: table (as in SQL).
   */
  public String columnTypesOf() {
    return "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        + " WHERE a.attrelid = to_regclass(:table) AND a.attnum > 0 AND NOT a.attisdropped";
  }

  /**
   * The unique indexes of a table: name, key columns (sorted, without INCLUDE columns), and whether
   * it has expressions, a predicate (partial), deferred checking (a DEFERRABLE constraint) or is
   * invalid (a failed CREATE INDEX CONCURRENTLY); ON CONFLICT can use an index with none of these.
   * Binds: table (as in SQL).
   */
  public String uniqueIndexes() {
    return "SELECT ic.relname::text, ARRAY(SELECT a.attname::text FROM pg_attribute a"
        + " WHERE a.attrelid = i.indrelid"
        // Key columns only: INCLUDE columns follow them in indkey and are no part of the key. (The
        // spaces around the slice's colon keep Jdbi from reading ":i" as a named parameter.)
        + " AND a.attnum = ANY((i.indkey::int2[])[0 : i.indnkeyatts - 1]) ORDER BY a.attname),"
        + " i.indexprs IS NOT NULL, i.indpred IS NOT NULL, NOT i.indimmediate, NOT i.indisvalid"
        + " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
        + " WHERE i.indrelid = to_regclass(:table) AND i.indisunique";
  }

  /** Takes the next writer epoch. Binds: pipeline, by. Returns the new epoch. */
  public String takeEpoch() {
    return "INSERT INTO "
        + writers.sql()
        + " AS w (pipeline_id, writer_epoch, taken_by) VALUES (:pipeline, 1, :by)"
        + " ON CONFLICT (pipeline_id) DO UPDATE"
        + " SET writer_epoch = w.writer_epoch + 1, taken_at = now(), taken_by = excluded.taken_by"
        + " RETURNING writer_epoch";
  }

  /**
   * Reads the current epoch and holds a shared lock until commit: taking a new epoch waits for
   * commits in flight, and every commit that starts later sees the new epoch.
   */
  public String lockEpoch() {
    return "SELECT writer_epoch FROM " + writers.sql() + " WHERE pipeline_id = :pipeline FOR SHARE";
  }

  public String storedOffsets() {
    return "SELECT topic, kafka_partition, until_offset FROM "
        + offsets.sql()
        + " WHERE pipeline_id = :pipeline";
  }

  /** Locks the offset row of one partition until commit. */
  public String lockOffset() {
    return "SELECT until_offset FROM "
        + offsets.sql()
        + " WHERE pipeline_id = :pipeline AND topic = :topic AND kafka_partition = :partition"
        + " FOR UPDATE";
  }

  /**
   * Locks the offset rows of many partitions in one statement, in the protocol's lock order (topic
   * by code point, as Java orders strings, then partition): the lock is taken row by row in the
   * order of the sort below it, so two committers never wait on each other in a cycle.
   */
  public String lockOffsets() {
    return "SELECT topic, kafka_partition, until_offset FROM "
        + offsets.sql()
        + " WHERE pipeline_id = :pipeline AND (topic, kafka_partition) IN"
        + " (SELECT * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[])))"
        + " ORDER BY topic COLLATE \"C\", kafka_partition FOR UPDATE";
  }

  /**
   * Compare-and-set of many offset rows in one statement: each moves from its expected offset to
   * its range's end; the caller checks that every row was updated.
   */
  public String advanceOffsets() {
    return "UPDATE "
        + offsets.sql()
        + " AS o SET until_offset = v.until_offset, writer_epoch = :epoch, updated_at = now(),"
        + " high_water = GREATEST(COALESCE(o.high_water, v.until_offset), v.until_offset)"
        + " FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS int[]),"
        + " CAST(:expected AS bigint[]), CAST(:untils AS bigint[]))"
        + " AS v(topic, kafka_partition, expected, until_offset)"
        + " WHERE o.pipeline_id = :pipeline AND o.topic = v.topic"
        + " AND o.kafka_partition = v.kafka_partition AND o.until_offset = v.expected";
  }

  /** Stores an offset for a partition that has none; keeps an existing one. */
  public String insertOffsetIfAbsent() {
    return "INSERT INTO "
        + offsets.sql()
        + " (pipeline_id, topic, kafka_partition, until_offset, writer_epoch, high_water)"
        + " VALUES (:pipeline, :topic, :partition, :offset, :epoch, :offset)"
        + " ON CONFLICT (pipeline_id, topic, kafka_partition) DO NOTHING";
  }

  /** Compare-and-set of one offset: advances only from the expected value. */
  public String advanceOffset() {
    return "UPDATE "
        + offsets.sql()
        + " SET until_offset = :until, writer_epoch = :epoch, updated_at = now(),"
        + " high_water = GREATEST(COALESCE(high_water, :until), :until)"
        + " WHERE pipeline_id = :pipeline AND topic = :topic AND kafka_partition = :partition"
        + " AND until_offset = :expected";
  }
}
