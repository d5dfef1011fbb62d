package org.exactlyonce.spark;

import java.io.Serializable;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Names one logical job's output. Offsets are stored per {@code (pipeline id, topic, partition)};
 * two jobs that write the same table must use two ids. Immutable and thread-safe.
 */
public final class PipelineId implements Serializable, Comparable<PipelineId> {
  private static final long serialVersionUID = 1L;
  private static final Pattern VALID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,199}");

  private final String value;

  private PipelineId(String value) {
    this.value = value;
  }

  /**
   * Returns the pipeline id {@code value}.
   *
   * @throws SinkConfigurationException if {@code value} is not 1 to 200 characters of letters,
   *     digits, '.', '_' or '-' starting with a letter or digit
   */
  public static PipelineId of(String value) {
    if (value == null || !VALID.matcher(value).matches()) {
      throw new SinkConfigurationException(
          "pipeline id '"
              + value
              + "' is not valid: use 1 to 200 characters of letters, digits, '.', '_' or '-',"
              + " starting with a letter or digit (for example \"clicks-to-postgres\")");
    }
    return new PipelineId(value);
  }

  /** The id as a string. */
  public String value() {
    return value;
  }

  @Override
  public int compareTo(PipelineId other) {
    return value.compareTo(other.value);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof PipelineId && ((PipelineId) o).value.equals(value);
  }

  @Override
  public int hashCode() {
    return Objects.hash(value);
  }

  @Override
  public String toString() {
    return value;
  }
}
