package org.exactlyonce.spark.spi;

import java.util.Objects;

/**
 * A column a sink fills by name ({@link org.exactlyonce.spark.RowValues#byName}), with its type as
 * the backend declares it ({@link ExactlyOnceSink#columnsByName()}).
 *
 * @param name the column's name, as the sink's columns list it (the output field read for it)
 * @param backendType the backend's type name, for messages ({@code bigint}, {@code text}, ...)
 * @param kind what values the column takes; {@link Kind#OTHER} when the sink cannot say
 */
public record OutputColumn(String name, String backendType, Kind kind) {
  public OutputColumn {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(backendType, "backendType");
    Objects.requireNonNull(kind, "kind");
  }

  /** The kinds of value a column takes, across backends. */
  public enum Kind {
    STRING,
    INTEGER,
    /** Exact decimals; the backend type may carry {@code (precision,scale)}. */
    DECIMAL,
    /** Single precision. */
    FLOAT32,
    /** Double precision. */
    FLOAT64,
    BOOLEAN,
    /** An instant (PostgreSQL {@code timestamp with time zone}). */
    TIMESTAMP,
    /**
     * A wall-clock date and time without a zone (PostgreSQL {@code timestamp without time zone}).
     */
    LOCAL_TIMESTAMP,
    DATE,
    BYTES,
    /** A type the sink does not classify (JSON, UUID, arrays, ...): not checked. */
    OTHER
  }
}
