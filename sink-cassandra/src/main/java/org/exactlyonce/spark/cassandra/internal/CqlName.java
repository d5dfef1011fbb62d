package org.exactlyonce.spark.cassandra.internal;

import java.io.Serializable;
import java.util.Locale;
import java.util.regex.Pattern;
import org.exactlyonce.spark.SinkConfigurationException;

/**
 * A keyspace-qualified table or a column name that is safe to put into CQL: letters, digits and
 * underscores, never quoted, so it folds to lower case like the same name typed in cqlsh.
 */
public record CqlName(String keyspace, String name) implements Serializable {
  private static final Pattern PART = Pattern.compile("[A-Za-z][A-Za-z0-9_]{0,47}");

  /** Parses {@code keyspace.table}. */
  public static CqlName table(String what, String value) {
    String[] parts = value == null ? new String[0] : value.split("\\.", -1);
    if (parts.length != 2
        || !PART.matcher(parts[0]).matches()
        || !PART.matcher(parts[1]).matches()) {
      throw new SinkConfigurationException(
          what
              + " '"
              + value
              + "' is not keyspace.table with plain names (letters, digits, '_', at most 48,"
              + " starting with a letter); names are never quoted or concatenated unchecked into CQL");
    }
    return new CqlName(parts[0].toLowerCase(Locale.ROOT), parts[1].toLowerCase(Locale.ROOT));
  }

  /** Parses a column name. */
  public static String column(String what, String value) {
    if (value == null || !PART.matcher(value).matches()) {
      throw new SinkConfigurationException(
          what
              + " '"
              + value
              + "' is not a plain CQL name (letters, digits, '_', at most 48, starting with a"
              + " letter)");
    }
    return value.toLowerCase(Locale.ROOT);
  }

  /** As written in CQL. */
  public String cql() {
    return keyspace + "." + name;
  }

  @Override
  public String toString() {
    return cql();
  }
}
