package org.exactlyonce.spark.spi;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.SourceRange;

/** The commit decision, for every stored offset and range, not just the examples. */
class CommitDecisionProperties {

  /** Applies one decision as every backend does: advance only on COMMITTED or TRIMMED. */
  private static long apply(long stored, SourceRange r) {
    CommitOutcome o = CommitDecision.decide(stored, r);
    return o == CommitOutcome.COMMITTED || o == CommitOutcome.TRIMMED ? r.until() : stored;
  }

  @Property
  void everyOutcomeIsTheOneItsDefinitionNames(
      @ForAll @LongRange(min = -1, max = 1000) long stored,
      @ForAll @LongRange(min = 0, max = 1000) long from,
      @ForAll @IntRange(min = 0, max = 100) int length) {
    SourceRange r = SourceRange.of("t", 0, from, from + length);
    CommitOutcome o = CommitDecision.decide(stored, r);
    switch (o) {
      case GAP -> assertThat(stored).isLessThan(from);
      case COMMITTED -> assertThat(stored).isEqualTo(from);
      case TRIMMED -> assertThat(stored).isGreaterThan(from).isLessThan(r.until());
      case ALREADY_COMMITTED ->
          assertThat(stored).isGreaterThanOrEqualTo(r.until()).isGreaterThan(from);
      default -> throw new AssertionError("the decision never returns " + o);
    }
    assertThat(CommitDecision.decide(CommitDecision.NONE, r))
        .as("no stored offset is a gap")
        .isEqualTo(CommitOutcome.GAP);
  }

  /**
   * Over any sequence of attempts on ranges cut from one partition's boundaries (retries, replays
   * of earlier ranges, batches cut differently after a restart), the stored offset never moves
   * backwards, only ever sits on a boundary, and every offset below it was covered by exactly the
   * ranges that advanced it: each record is committed once.
   */
  @Property
  void theStoredOffsetMovesForwardByWholeRangesAndCoversEachOffsetOnce(
      @ForAll("attempts") List<int[]> attempts) {
    long[] bounds = new long[21];
    for (int i = 1; i < bounds.length; i++) {
      bounds[i] = bounds[i - 1] + 1 + (i * 7L) % 5;
    }
    long stored = 0;
    List<Long> visited = new ArrayList<>(List.of(0L));
    int[] covered = new int[(int) bounds[bounds.length - 1]];
    for (int[] a : attempts) {
      SourceRange r = SourceRange.of("t", 0, bounds[a[0]], bounds[a[1]]);
      long before = stored;
      // What a backend writes for the outcome: the whole range, or the part after the stored
      // offset; nothing for a replay or a gap.
      CommitOutcome o = CommitDecision.decide(stored, r);
      long writeFrom =
          o == CommitOutcome.COMMITTED ? r.from() : o == CommitOutcome.TRIMMED ? stored : -1;
      for (long w = writeFrom; writeFrom >= 0 && w < r.until(); w++) {
        covered[(int) w]++;
      }
      stored = apply(stored, r);
      assertThat(stored).isGreaterThanOrEqualTo(before);
      visited.add(stored);
    }
    for (long v : visited) {
      assertThat(bounds).contains(v);
    }
    for (int o = 0; o < stored; o++) {
      assertThat(covered[o]).as("offset %d committed", o).isEqualTo(1);
    }
  }

  @Provide
  Arbitrary<List<int[]>> attempts() {
    Arbitrary<int[]> attempt =
        Combinators.combine(
                Arbitraries.integers().between(0, 19), Arbitraries.integers().between(1, 4))
            .as((from, len) -> new int[] {from, Math.min(20, from + len)});
    return attempt.list().ofMinSize(1).ofMaxSize(60);
  }
}
