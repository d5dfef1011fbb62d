package org.exactlyonce.spark.jdbc.internal;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.exactlyonce.spark.jdbc.internal.TableMapping.VersionSource;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;
import org.junit.jupiter.api.Test;

/** Upserts are merged per key and written in one fixed key order, whatever the input order. */
class KeyOrderTest {
  private static final TableMapping<List<Object>> TOTALS =
      new TableMapping<>(
          SqlIdentifier.parse("table", "totals", true),
          List.of(
              SqlIdentifier.parse("column", "campaign", false),
              SqlIdentifier.parse("column", "clicks", false)),
          row -> row,
          List.of(SqlIdentifier.parse("key", "campaign", false)),
          List.of(SqlIdentifier.parse("accumulating", "clicks", false)),
          null,
          VersionSource.NONE,
          null,
          null,
          List.of());

  private static List<Positioned<List<Object>>> outputs(Object... campaigns) {
    List<Positioned<List<Object>>> out = new ArrayList<>();
    for (int i = 0; i < campaigns.length; i++) {
      out.add(new Positioned<>(List.of(campaigns[i], 1L), "t", 0, i, 0));
    }
    return out;
  }

  private static List<String> written(List<Object[]> rows) {
    return rows.stream().map(r -> r[0] + "=" + r[1]).toList();
  }

  @Test
  void oppositeInputOrdersLockTheSameKeysInTheSameOrder() {
    List<Object[]> forward = TOTALS.mergeInKeyOrder(outputs("b", "a", "d", "c", "a").iterator());
    List<Object[]> backward = TOTALS.mergeInKeyOrder(outputs("a", "c", "d", "a", "b").iterator());

    assertThat(written(forward)).containsExactly("a=2", "b=1", "c=1", "d=1");
    assertThat(written(backward)).isEqualTo(written(forward));
  }

  @Test
  void numbersCompareByValueWhateverTheirClassAndNullsComeFirst() {
    List<Object[]> rows = TOTALS.mergeInKeyOrder(outputs(10L, 2, 2L, 1.5, 3).iterator());
    assertThat(written(rows)).containsExactly("1.5=1", "2=2", "3=1", "10=1");
    assertThat(KeyOrder.compareValues(null, "a")).isNegative();
    assertThat(KeyOrder.compareValues(new byte[] {1, 2}, new byte[] {1, 3})).isNegative();
    assertThat(KeyOrder.compareValues(new byte[] {1, 2}, new byte[] {1, 2})).isZero();
  }

  @Test
  void onlyUpsertsOnAUserKeyAreReordered() {
    TableMapping<List<Object>> plain =
        new TableMapping<>(
            SqlIdentifier.parse("table", "clicks", true),
            List.of(
                SqlIdentifier.parse("column", "campaign", false),
                SqlIdentifier.parse("column", "clicks", false)),
            row -> row,
            List.of(),
            List.of(),
            null,
            VersionSource.NONE,
            null,
            null,
            List.of());
    assertThat(plain.upsertsOnKey()).isFalse();
    assertThat(TOTALS.upsertsOnKey()).isTrue();
  }
}
