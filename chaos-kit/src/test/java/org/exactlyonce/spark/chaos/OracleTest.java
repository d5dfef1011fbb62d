package org.exactlyonce.spark.chaos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OracleTest {

  @Test
  void anOutputEqualToTheInputPasses() {
    Oracle.Verdict v = Oracle.records(List.of("a", "b", "c"), List.of("c", "a", "b"));
    assertThat(v.exactlyOnce()).isTrue();
    assertThat(v.orThrow()).isSameAs(v);
    assertThat(v.toString())
        .isEqualTo("records: 3 expected, 0 duplicates, 0 missing, 0 unexpected");
  }

  @Test
  void duplicatesMissingAndUnexpectedIdsAreCountedAndNamed() {
    Oracle.Verdict v =
        Oracle.records(List.of("a", "b", "c", "d"), List.of("a", "a", "a", "b", "x", "c"));
    assertThat(v.duplicates()).isEqualTo(2);
    assertThat(v.firstDuplicates()).containsExactly("a x3");
    assertThat(v.missing()).isEqualTo(1);
    assertThat(v.firstMissing()).containsExactly("d");
    assertThat(v.unexpected()).isEqualTo(1);
    assertThat(v.firstUnexpected()).containsExactly("x");
    assertThatThrownBy(v::orThrow)
        .isInstanceOf(AssertionError.class)
        .hasMessageContaining("2 duplicates (first [a x3])")
        .hasMessageContaining("1 missing (first [d])");
  }

  @Test
  void onlyTheFirstFiveOffendersAreListed() {
    List<String> expected = List.of("1", "2", "3", "4", "5", "6", "7");
    Oracle.Verdict v = Oracle.records(expected, List.of());
    assertThat(v.missing()).isEqualTo(7);
    assertThat(v.firstMissing()).containsExactly("1", "2", "3", "4", "5");
  }

  @Test
  void expectedIdsMustBeDistinct() {
    assertThatThrownBy(() -> Oracle.records(List.of("a", "a"), List.of("a")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("give each input id once");
  }

  @Test
  void totalsReportOverAndUnderCountsAgainstTheReference() {
    Oracle.Verdict v =
        Oracle.totals(
            Map.of("a", 10L, "b", 5L, "c", 1L), Map.of("a", 12L, "b", 4L, "c", 1L, "z", 3L));
    assertThat(v.duplicates()).isEqualTo(2);
    assertThat(v.firstDuplicates()).containsExactly("a +2");
    assertThat(v.missing()).isEqualTo(1);
    assertThat(v.firstMissing()).containsExactly("b -1");
    assertThat(v.unexpected()).isEqualTo(1);
    assertThat(v.firstUnexpected()).containsExactly("z = 3");
    assertThat(v.exactlyOnce()).isFalse();
    assertThat(Oracle.totals(Map.of("a", 1L), Map.of("a", 1L)).exactlyOnce()).isTrue();
  }
}
