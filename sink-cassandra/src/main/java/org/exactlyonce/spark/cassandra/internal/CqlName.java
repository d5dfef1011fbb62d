package org.exactlyonce.spark.cassandra.internal;

import java.io.Serializable;
import java.util.Locale;
import java.util.regex.Pattern;
import org.exactlyonce.spark.SinkConfigurationException;

/**
 * A keyspace-qualified table or a column name that is safe to put into CQL: letters, digits and
 * underscores, folded to lower case like the same name typed unquoted in cqlsh, and always quoted
 * in CQL ({@link #cql()}, {@link #quote}): a quoted lower-case name is the same name, and columns
 * named like keywords ({@code from}, {@code select}, {@code order}) would otherwise pass every
 * check and fail at the first write.
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
              + " starting with a letter); names are never concatenated unchecked into CQL");
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

  /** As written in CQL: each part double-quoted. */
  public String cql() {
    return quote(keyspace) + "." + quote(name);
  }

  /** A parsed name (plain characters, lower case) double-quoted, as CQL takes it. */
  public static String quote(String name) {
    return '"' + name + '"';
  }

  /** The name as the user wrote it (lower case, unquoted), for messages. */
  @Override
  public String toString() {
    return keyspace + "." + name;
  }
}
