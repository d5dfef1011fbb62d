package org.exactlyonce.spark.jdbc.internal;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.exactlyonce.spark.ExactlyOnceException;
import org.exactlyonce.spark.RowValues;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.jdbc.VersionFunction;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;
import org.exactlyonce.spark.spi.Rows;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.statement.PreparedBatch;

/**
 * Outputs mapped to a table: the user's columns, then an optional version column and its
 * tie-breaker column, then optional source-position columns; written as batched INSERTs with the
 * conflict clause of the mode. Upserts on the user's key are merged per key first (PostgreSQL
 * refuses to update one row twice in a statement): accumulating columns are added, a versioned row
 * keeps the highest (version, source position), otherwise the later row wins; and they are written
 * in key order, so that concurrent transactions lock shared keys in one order (no deadlocks).
 *
 * <p>A versioned upsert orders the rows of a key by (version, source position), in the chunk merge
 * and in the SQL guard alike, so the stored row does not depend on where chunks or batches are cut:
 * with the version alone, equal versions kept the later row inside a chunk but the first across
 * chunks.
 */
public final class TableMapping<R> implements RowWriter<R> {
  private static final long serialVersionUID = 1L;

  /** How the version of a versioned upsert is derived. */
  public enum VersionSource {
    NONE,
    SOURCE_OFFSET,
    FUNCTION
  }

  private final SqlIdentifier table;
  private final List<SqlIdentifier> userColumns;
  private final RowValues<R> values;
  private final List<SqlIdentifier> keys;
  private final List<SqlIdentifier> accumulating;
  private final SqlIdentifier versionColumn;
  private final VersionSource versionSource;
  private final VersionFunction<R> versionFunction;
  private final SqlIdentifier tieBreakerColumn;
  private final List<SqlIdentifier> positionColumns;
  private final String insert;
  private final int[] keyIndexes;
  private final int[] accumulatingIndexes;
  private final int versionIndex;

  public TableMapping(
      SqlIdentifier table,
      List<SqlIdentifier> userColumns,
      RowValues<R> values,
      List<SqlIdentifier> keys,
      List<SqlIdentifier> accumulating,
      SqlIdentifier versionColumn,
      VersionSource versionSource,
      VersionFunction<R> versionFunction,
      SqlIdentifier tieBreakerColumn,
      List<SqlIdentifier> positionColumns) {
    if ((versionColumn == null) != (tieBreakerColumn == null)) {
      throw new IllegalArgumentException("a version column goes with a tie-breaker column");
    }
    this.table = table;
    this.userColumns = List.copyOf(userColumns);
    this.values = values;
    this.keys = List.copyOf(keys);
    this.accumulating = List.copyOf(accumulating);
    this.versionColumn = versionColumn;
    this.versionSource = versionSource;
    this.versionFunction = versionFunction;
    this.tieBreakerColumn = tieBreakerColumn;
    this.positionColumns = List.copyOf(positionColumns);
    List<SqlIdentifier> all = allColumns();
    this.keyIndexes = indexes(all, keys);
    this.accumulatingIndexes = indexes(all, accumulating);
    this.versionIndex = versionColumn == null ? -1 : userColumns.size();
    this.insert = buildInsert(all);
  }

  private static int[] indexes(List<SqlIdentifier> all, List<SqlIdentifier> some) {
    List<String> names = all.stream().map(SqlIdentifier::name).toList();
    return some.stream().mapToInt(c -> names.indexOf(c.name())).toArray();
  }

  public SqlIdentifier table() {
    return table;
  }

  /** Every column the INSERT names, in value order. */
  public List<SqlIdentifier> allColumns() {
    List<SqlIdentifier> all = new ArrayList<>(userColumns);
    if (versionColumn != null) {
      all.add(versionColumn);
      all.add(tieBreakerColumn);
    }
    all.addAll(positionColumns);
    return all;
  }

  /** The columns a unique index must cover for the conflict clause, or empty for plain inserts. */
  public List<SqlIdentifier> conflictKey() {
    return positionColumns.isEmpty() ? keys : positionColumns;
  }

  /** The conflict clause of the INSERT ({@code ""} for plain inserts). */
  public String conflictClause() {
    int at = insert.indexOf(" ON CONFLICT");
    return at < 0 ? "" : insert.substring(at);
  }

  /** Whether rows are plain inserts: no conflict clause, so COPY writes the same rows. */
  public boolean isPlainInsert() {
    return keys.isEmpty() && positionColumns.isEmpty();
  }

  /** The upsert key columns (empty for plain inserts). */
  public List<SqlIdentifier> keys() {
    return keys;
  }

  /** The columns added on conflict instead of replaced. */
  public List<SqlIdentifier> accumulating() {
    return accumulating;
  }

  /** The INSERT statement, for logs and tests. */
  public String insertSql() {
    return insert;
  }

  private String buildInsert(List<SqlIdentifier> all) {
    String cols = all.stream().map(SqlIdentifier::sql).collect(Collectors.joining(", "));
    String params = all.stream().map(c -> "?").collect(Collectors.joining(", "));
    String sql = "INSERT INTO " + table.sql() + " AS cur (" + cols + ") VALUES (" + params + ")";
    if (!positionColumns.isEmpty()) {
      // The position is the key and the mapper is deterministic: a replay writes the same row.
      return sql + " ON CONFLICT (" + names(positionColumns) + ") DO NOTHING";
    }
    if (keys.isEmpty()) {
      return sql;
    }
    List<String> sets = new ArrayList<>();
    for (SqlIdentifier c : all) {
      if (keys.stream().anyMatch(k -> k.name().equals(c.name()))) {
        continue;
      }
      boolean adds = accumulating.stream().anyMatch(a -> a.name().equals(c.name()));
      // NULL adds nothing, on either side: in SQL NULL + 4 is NULL, and a total that was NULL
      // once (a row another program wrote) would stay NULL for good.
      String sum =
          "COALESCE(cur."
              + c.sql()
              + " + excluded."
              + c.sql()
              + ", cur."
              + c.sql()
              + ", excluded."
              + c.sql()
              + ")";
      sets.add(c.sql() + " = " + (adds ? sum : "excluded." + c.sql()));
    }
    sql += " ON CONFLICT (" + names(keys) + ")";
    if (sets.isEmpty()) {
      return sql + " DO NOTHING";
    }
    sql += " DO UPDATE SET " + String.join(", ", sets);
    if (versionColumn != null) {
      // Never let a replay of older data overwrite a newer value; between equal versions the later
      // source position wins, as in the chunk merge. A NULL tie-breaker is a row written before
      // the column existed: any output of its version replaces it, so the result is again the
      // latest position. COLLATE "C" compares bytes, as String.compareTo does for the ASCII of
      // positions (Kafka topic names are ASCII), whatever the column's collation.
      String v = versionColumn.sql();
      String t = tieBreakerColumn.sql();
      sql +=
          " WHERE cur."
              + v
              + " < excluded."
              + v
              + " OR (cur."
              + v
              + " = excluded."
              + v
              + " AND (cur."
              + t
              + " IS NULL OR cur."
              + t
              + " COLLATE \"C\" < excluded."
              + t
              + " COLLATE \"C\"))";
    }
    return sql;
  }

  private static String names(List<SqlIdentifier> cols) {
    return cols.stream().map(SqlIdentifier::sql).collect(Collectors.joining(", "));
  }

  @Override
  public void write(Handle handle, List<Positioned<R>> rows) {
    writeRows(handle, merge(rows.iterator()));
  }

  /** Writes rows of {@link #row} values, in the order given, as one JDBC batch. */
  void writeRows(Handle handle, List<Object[]> rows) {
    PreparedBatch batch = handle.prepareBatch(insert);
    for (Object[] row : rows) {
      batch.add(row);
    }
    batch.execute();
  }

  /**
   * Whether rows are upserts on the user's key, merged per key and written in key order by {@link
   * #mergeInKeyOrder}: the rows of a source-position key are unique and come in offset order
   * already.
   */
  public boolean upsertsOnKey() {
    return !keys.isEmpty() && positionColumns.isEmpty();
  }

  /**
   * The rows of {@code outputs} merged per key (as one statement would: accumulating columns added,
   * the highest (version, source position) kept, otherwise the later output) and sorted by key, in
   * the fixed {@link KeyOrder}. Every transaction that upserts several keys then locks them in the
   * same order, so two of them updating the same hot keys wait for each other instead of
   * deadlocking: in first-seen order, a partition holding key {@code a} and waiting for {@code b}
   * met one holding {@code b} and waiting for {@code a}, PostgreSQL aborted one (40P01), and under
   * load the retries ran out. Holds one row per distinct key in memory.
   */
  public List<Object[]> mergeInKeyOrder(Iterator<Positioned<R>> outputs) {
    return merge(outputs);
  }

  private List<Object[]> merge(Iterator<Positioned<R>> rows) {
    if (!upsertsOnKey()) {
      List<Object[]> all = new ArrayList<>();
      rows.forEachRemaining(p -> all.add(row(p)));
      return all;
    }
    Map<Object[], Object[]> byKey = new TreeMap<>(KeyOrder.of(keyIndexes));
    while (rows.hasNext()) {
      Object[] row = row(rows.next());
      byKey.merge(row, row, this::combine);
    }
    return new ArrayList<>(byKey.values());
  }

  private Object[] combine(Object[] earlier, Object[] later) {
    if (accumulatingIndexes.length > 0) {
      Object[] sum = later.clone();
      for (int i : accumulatingIndexes) {
        sum[i] = add(earlier[i], later[i]);
      }
      return sum;
    }
    if (versionIndex >= 0) {
      int byVersion = Long.compare((Long) earlier[versionIndex], (Long) later[versionIndex]);
      int order =
          byVersion != 0
              ? byVersion
              : ((String) earlier[versionIndex + 1]).compareTo((String) later[versionIndex + 1]);
      return order > 0 ? earlier : later;
    }
    return later;
  }

  private static Object add(Object a, Object b) {
    // NULL adds nothing, as in the upsert's SQL.
    if (a == null || b == null) {
      return a == null ? b : a;
    }
    if (a instanceof BigDecimal x && b instanceof BigDecimal y) {
      return x.add(y);
    }
    if ((a instanceof Double || a instanceof Float) && b instanceof Number y) {
      return ((Number) a).doubleValue() + y.doubleValue();
    }
    if (a instanceof Number x && b instanceof Number y) {
      return x.longValue() + y.longValue();
    }
    throw new ExactlyOnceException(
        "an accumulating column holds " + a + " and " + b + ": only numbers can be added");
  }

  /**
   * The source position of {@code p} as text whose byte order is the order of (topic, partition,
   * offset, index), for a topic of the same name: numbers are zero-padded to their widest value.
   * Topics of different names compare by name (not meaningful, but total and fixed).
   */
  static String tieBreaker(Positioned<?> p) {
    StringBuilder b = new StringBuilder(p.topic().length() + 42).append(p.topic()).append('/');
    pad(b, p.partition(), 10).append('/');
    pad(b, p.offset(), 19).append('/');
    return pad(b, p.index(), 10).toString();
  }

  private static StringBuilder pad(StringBuilder b, long n, int width) {
    String digits = Long.toString(n);
    return b.append("0".repeat(Math.max(0, width - digits.length()))).append(digits);
  }

  /**
   * Checks the output table's columns (name to {@code information_schema} data type) for what this
   * mapping adds beyond the user's columns.
   *
   * @throws SinkConfigurationException naming the column and the DDL that adds it
   */
  public void checkColumns(Map<String, String> actual) {
    if (tieBreakerColumn == null) {
      return;
    }
    String type = actual.get(tieBreakerColumn.name());
    if (type == null || !(type.equals("text") || type.equals("character varying"))) {
      throw new SinkConfigurationException(
          "output table '"
              + table
              + "' "
              + (type == null
                  ? "has no column '" + tieBreakerColumn.name() + "'"
                  : "has column '" + tieBreakerColumn.name() + "' of type " + type + ", not text")
              + ": a versioned upsert stores each row's source position there, so that of two"
              + " outputs with the same version the later source position wins whatever the batch"
              + " size. "
              + (type == null ? "Add it: ALTER TABLE " : "Change it: ALTER TABLE ")
              + table.sql()
              + (type == null
                  ? " ADD COLUMN " + tieBreakerColumn.sql() + " text"
                  : " ALTER COLUMN " + tieBreakerColumn.sql() + " TYPE text")
              + " (rows written before keep NULL there and are replaced by the next output of"
              + " their version), or name another column with tieBreakerColumn(...)");
    }
  }

  /**
   * The user's columns as their values are read by name ({@link RowValues#byName}), paired with
   * their names in the table; empty for positional values.
   */
  public Map<String, String> columnsByName() {
    Map<String, String> out = new java.util.LinkedHashMap<>();
    if (values instanceof RowValues.ByName<R> byName) {
      List<String> fields = byName.columns();
      for (int i = 0; i < fields.size(); i++) {
        out.put(fields.get(i), userColumns.get(i).name());
      }
    }
    return out;
  }

  /** The values of one output, in {@link #allColumns()} order. */
  public Object[] row(Positioned<R> p) {
    List<?> v = Rows.valuesOf(values, p, userColumns);
    Object[] row =
        new Object[userColumns.size() + (versionColumn == null ? 0 : 2) + positionColumns.size()];
    int i = 0;
    for (Object o : v) {
      row[i++] = o;
    }
    if (versionColumn != null) {
      row[i++] =
          versionSource == VersionSource.SOURCE_OFFSET
              ? p.offset()
              : versionFunction.version(p.value());
      row[i++] = tieBreaker(p);
    }
    if (!positionColumns.isEmpty()) {
      row[i++] = p.topic();
      row[i++] = p.partition();
      row[i++] = p.offset();
      row[i] = p.index();
    }
    return row;
  }
}
