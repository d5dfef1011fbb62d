package org.exactlyonce.spark.jdbc.internal;

import java.io.Serializable;
import java.util.Locale;
import java.util.regex.Pattern;
import org.exactlyonce.spark.SinkConfigurationException;

/**
 * A table or column name that is safe to put into SQL: plain letters, digits and underscores,
 * optionally qualified by a schema. Folded to lower case, as PostgreSQL folds the same name typed
 * unquoted in psql, and then always quoted in SQL: a quoted lower-case name is the same name, and
 * users' columns named like keywords ({@code order}, {@code user}, {@code select}) would otherwise
 * pass every check and fail at the first INSERT (or, as {@code user}, read the session's user). A
 * keyword list would have to follow every server version.
 */
public final class SqlIdentifier implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final Pattern PART = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,62}");

  private final String schema;
  private final String name;

  private SqlIdentifier(String schema, String name) {
    this.schema = schema;
    this.name = name;
  }

  /**
   * Parses {@code name} or {@code schema.name}.
   *
   * @param what what the name is for ("table", "column", ...), for the error message
   * @throws SinkConfigurationException if it is not a plain SQL name
   */
  public static SqlIdentifier parse(String what, String value, boolean qualified) {
    String[] parts = value == null ? new String[0] : value.split("\\.", -1);
    boolean ok = parts.length == 1 || (qualified && parts.length == 2);
    for (String p : parts) {
      ok &= PART.matcher(p).matches();
    }
    if (!ok) {
      throw new SinkConfigurationException(
          what
              + " name '"
              + value
              + "' is not a plain SQL name: use letters, digits and '_' (at most 63, not starting"
              + " with a digit)"
              + (qualified ? ", optionally qualified as schema.table" : "")
              + ". Names are never concatenated unchecked into SQL");
    }
    return parts.length == 2
        ? new SqlIdentifier(parts[0].toLowerCase(Locale.ROOT), parts[1].toLowerCase(Locale.ROOT))
        : new SqlIdentifier(null, parts[0].toLowerCase(Locale.ROOT));
  }

  /** The schema, or null for the connection's search path. */
  public String schema() {
    return schema;
  }

  /** The unqualified name, folded to lower case. */
  public String name() {
    return name;
  }

  /** The name as it appears in SQL: each part double-quoted. */
  public String sql() {
    return schema == null ? quote(name) : quote(schema) + "." + quote(name);
  }

  /**
   * {@code part} double-quoted: for names the sink derives from a parsed one (an index name), which
   * hold the same plain characters.
   */
  static String quote(String part) {
    return '"' + part + '"';
  }

  /** The name as the user wrote it (folded to lower case, unquoted), for messages. */
  @Override
  public String toString() {
    return schema == null ? name : schema + "." + name;
  }
}
