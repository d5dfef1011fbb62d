package org.exactlyonce.spark.chaos;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Compares a job's <em>whole</em> output with its input after a chaos run. Read every row or record
 * of the output (for Kafka, with {@code isolation.level=read_committed}, from the beginning) and
 * pass it here; a sample proves nothing.
 */
public final class Oracle {
  private static final int FIRST = 5;

  private Oracle() {}

  /**
   * One output per input id: reports ids written more than once, ids never written, and ids written
   * that the input does not have.
   *
   * @param expected every id of the input, once each
   * @param actual every id of the output, as often as it occurs there
   */
  public static Verdict records(Collection<String> expected, Iterable<String> actual) {
    Set<String> known = new HashSet<>(expected);
    if (known.size() != expected.size()) {
      throw new IllegalArgumentException(
          "Oracle.records: the expected ids hold duplicates; give each input id once");
    }
    Map<String, Integer> seen = new HashMap<>();
    actual.forEach(id -> seen.merge(id, 1, Integer::sum));
    long duplicates = 0;
    long unexpected = 0;
    List<String> dups = new ArrayList<>();
    List<String> extra = new ArrayList<>();
    for (Map.Entry<String, Integer> e : new TreeMap<>(seen).entrySet()) {
      if (!known.contains(e.getKey())) {
        unexpected += e.getValue();
        extra.add(e.getKey());
      } else if (e.getValue() > 1) {
        duplicates += e.getValue() - 1;
        dups.add(e.getKey() + " x" + e.getValue());
      }
    }
    List<String> missing = expected.stream().filter(id -> !seen.containsKey(id)).sorted().toList();
    return new Verdict(
        "records",
        expected.size(),
        duplicates,
        missing.size(),
        unexpected,
        first(dups),
        first(missing),
        first(extra));
  }

  /**
   * Aggregates: each key's total against a reference computed from the input. An over-count (a
   * replayed contribution) counts as duplicates, an under-count (a lost one) as missing, and keys
   * the reference does not have as unexpected.
   */
  public static Verdict totals(Map<String, Long> reference, Map<String, Long> actual) {
    long over = 0;
    long under = 0;
    long unexpected = 0;
    List<String> overs = new ArrayList<>();
    List<String> unders = new ArrayList<>();
    List<String> extra = new ArrayList<>();
    for (Map.Entry<String, Long> e : new TreeMap<>(reference).entrySet()) {
      long diff = actual.getOrDefault(e.getKey(), 0L) - e.getValue();
      if (diff > 0) {
        over += diff;
        overs.add(e.getKey() + " +" + diff);
      } else if (diff < 0) {
        under -= diff;
        unders.add(e.getKey() + " " + diff);
      }
    }
    for (String key : new TreeMap<>(actual).keySet()) {
      if (!reference.containsKey(key)) {
        unexpected++;
        extra.add(key + " = " + actual.get(key));
      }
    }
    return new Verdict(
        "totals",
        reference.size(),
        over,
        under,
        unexpected,
        first(overs),
        first(unders),
        first(extra));
  }

  private static List<String> first(List<String> all) {
    return List.copyOf(all.subList(0, Math.min(FIRST, all.size())));
  }

  /**
   * What the oracle found. For records: duplicate writes, ids never written, ids not in the input.
   * For totals: the amount over-counted, the amount under-counted, keys not in the reference.
   */
  public record Verdict(
      String what,
      long expected,
      long duplicates,
      long missing,
      long unexpected,
      List<String> firstDuplicates,
      List<String> firstMissing,
      List<String> firstUnexpected) {

    /** Zero duplicates, zero missing, zero unexpected: the only pass. */
    public boolean exactlyOnce() {
      return duplicates == 0 && missing == 0 && unexpected == 0;
    }

    /** This verdict if exactly once, else an {@link AssertionError} with the first offenders. */
    public Verdict orThrow() {
      if (!exactlyOnce()) {
        throw new AssertionError("not exactly once: " + this);
      }
      return this;
    }

    @Override
    public String toString() {
      boolean totals = what.equals("totals");
      return String.format(
          "%s: %,d expected, %,d %s%s, %,d %s%s, %,d unexpected%s",
          what,
          expected,
          duplicates,
          totals ? "over-counted" : "duplicates",
          duplicates == 0 ? "" : " (first " + firstDuplicates + ")",
          missing,
          totals ? "under-counted" : "missing",
          missing == 0 ? "" : " (first " + firstMissing + ")",
          unexpected,
          unexpected == 0 ? "" : " (first " + firstUnexpected + ")");
    }
  }
}
