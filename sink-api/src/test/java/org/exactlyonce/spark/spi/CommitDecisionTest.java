package org.exactlyonce.spark.spi;

import static org.assertj.core.api.Assertions.assertThat;

import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;
import org.junit.jupiter.api.Test;

class CommitDecisionTest {

  private static CommitOutcome decide(long stored, long from, long until) {
    return CommitDecision.decide(stored, SourceRange.of("t", 0, from, until));
  }

  @Test
  void storedAtTheRangeStartCommitsTheWholeRange() {
    assertThat(decide(100, 100, 200)).isEqualTo(CommitOutcome.COMMITTED);
  }

  @Test
  void storedAtOrPastTheRangeEndIsAReplay() {
    assertThat(decide(200, 100, 200)).isEqualTo(CommitOutcome.ALREADY_COMMITTED);
    assertThat(decide(900, 100, 200)).isEqualTo(CommitOutcome.ALREADY_COMMITTED);
  }

  @Test
  void storedInsideTheRangeTrimsTheCommittedPrefix() {
    assertThat(decide(101, 100, 200)).isEqualTo(CommitOutcome.TRIMMED);
    assertThat(decide(199, 100, 200)).isEqualTo(CommitOutcome.TRIMMED);
  }

  @Test
  void storedBeforeTheRangeStartIsAGapNeverASilentJump() {
    assertThat(decide(99, 100, 200)).isEqualTo(CommitOutcome.GAP);
    assertThat(decide(0, 100, 200)).isEqualTo(CommitOutcome.GAP);
  }

  @Test
  void anEmptyRangeAtTheStoredOffsetCommitsNothing() {
    assertThat(decide(5, 5, 5)).isEqualTo(CommitOutcome.COMMITTED);
  }

  /**
   * Every combination of a small domain: exactly one outcome, and it is the one the design names.
   */
  @Test
  void everyStoredOffsetAgainstEveryRangeFollowsTheDesign() {
    for (long from = 0; from <= 6; from++) {
      for (long until = from; until <= 6; until++) {
        for (long stored = 0; stored <= 8; stored++) {
          CommitOutcome o = decide(stored, from, until);
          String at = "stored=" + stored + " range=[" + from + "," + until + ")";
          assertThat(o == CommitOutcome.GAP).as(at).isEqualTo(stored < from);
          assertThat(o == CommitOutcome.COMMITTED).as(at).isEqualTo(stored == from);
          assertThat(o == CommitOutcome.TRIMMED).as(at).isEqualTo(from < stored && stored < until);
          assertThat(o == CommitOutcome.ALREADY_COMMITTED)
              .as(at)
              .isEqualTo(stored > from && stored >= until);
        }
      }
    }
  }
}
