package org.exactlyonce.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RowValuesTest {
  private static final RowValues.ByName<Map<String, Object>> BY_NAME =
      RowValues.byName((row, name) -> row.get(name));

  @Test
  void valuesByNameFollowTheBoundColumnsOrderNotTheFields() {
    RowValues<Map<String, Object>> bound = BY_NAME.bind(List.of("clicks", "campaign"));

    assertThat(bound.values(Map.of("campaign", "c1", "clicks", 3L))).isEqualTo(List.of(3L, "c1"));
    assertThat(BY_NAME.bind(List.of("campaign")).columns()).containsExactly("campaign");
  }

  @Test
  void unboundValuesByNameSayHowToUseThem() {
    assertThat(BY_NAME.columns()).isEmpty();
    assertThatThrownBy(() -> BY_NAME.values(Map.of()))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("pass it to a sink builder's values(...)");
  }
}
