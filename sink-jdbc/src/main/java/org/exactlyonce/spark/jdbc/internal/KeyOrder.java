package org.exactlyonce.spark.jdbc.internal;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.Arrays;
import java.util.Comparator;

/**
 * The fixed order in which upserts lock their keys: the key columns compared left to right, each by
 * value. It need not be the database's order, only the same in every transaction of every JVM, so
 * it depends on the values alone: nulls first, then numbers by numeric value (an {@code Integer}
 * and a {@code Long} of one value are one key, as in the database), byte arrays by their bytes,
 * other values of one class by their natural order, and values of different classes by class name,
 * then text.
 */
final class KeyOrder implements Comparator<Object[]> {
  private final int[] keyIndexes;

  private KeyOrder(int[] keyIndexes) {
    this.keyIndexes = keyIndexes.clone();
  }

  /** The order of rows by the values at {@code keyIndexes}, in that order. */
  static KeyOrder of(int[] keyIndexes) {
    return new KeyOrder(keyIndexes);
  }

  @Override
  public int compare(Object[] a, Object[] b) {
    for (int i : keyIndexes) {
      int c = compareValues(a[i], b[i]);
      if (c != 0) {
        return c;
      }
    }
    return 0;
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  static int compareValues(Object a, Object b) {
    if (a == b) {
      return 0;
    }
    if (a == null || b == null) {
      return a == null ? -1 : 1;
    }
    if (a instanceof Number x && b instanceof Number y) {
      return compareNumbers(x, y);
    }
    if (a instanceof byte[] x && b instanceof byte[] y) {
      return Arrays.compare(x, y);
    }
    if (a.getClass() == b.getClass() && a instanceof Comparable) {
      return ((Comparable) a).compareTo(b);
    }
    int byClass = a.getClass().getName().compareTo(b.getClass().getName());
    return byClass != 0 ? byClass : a.toString().compareTo(b.toString());
  }

  private static int compareNumbers(Number x, Number y) {
    if (x instanceof Double || x instanceof Float || y instanceof Double || y instanceof Float) {
      return Double.compare(x.doubleValue(), y.doubleValue());
    }
    return decimal(x).compareTo(decimal(y));
  }

  private static BigDecimal decimal(Number n) {
    if (n instanceof BigDecimal d) {
      return d;
    }
    if (n instanceof BigInteger i) {
      return new BigDecimal(i);
    }
    return BigDecimal.valueOf(n.longValue());
  }
}
