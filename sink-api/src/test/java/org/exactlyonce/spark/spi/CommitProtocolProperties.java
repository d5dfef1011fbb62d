package org.exactlyonce.spark.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.apache.kafka.common.TopicPartition;
import org.exactlyonce.spark.CommitOutcome;
import org.exactlyonce.spark.DeadLetter;
import org.exactlyonce.spark.OffsetMismatchException;
import org.exactlyonce.spark.PartitionCommit;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SourceRange;

/**
 * The protocol ({@link CommitProtocol}) over a unit that keeps its offsets in memory and applies a
 * unit's writes only when it commits, as a database transaction does. Random interleavings of
 * attempts by a current driver, a zombie of an older epoch, retries and replays, each attempt
 * either committing or failing after the protocol returned (the backend aborts): the output holds
 * every offset exactly once, and the stored offset moves forward by whole ranges only. The same
 * questions are asked of the real backends by the contract suite in the tests module.
 */
class CommitProtocolProperties {
  private static final TopicPartition TP = new TopicPartition("t", 0);

  /** Offsets, the current epoch, and the output rows (one per source offset written). */
  private static final class Store {
    long epoch = 2;
    final Map<TopicPartition, Long> offsets = new HashMap<>(Map.of(TP, 0L));
    final List<Long> output = new ArrayList<>();
  }

  /** A unit of work over the store: its writes are applied at commit, dropped at abort. */
  private static final class Unit implements CommitUnit {
    final Store store;
    final Map<TopicPartition, Long> pendingOffsets = new HashMap<>();
    final List<Long> pendingOutput = new ArrayList<>();
    boolean epochChecked;
    boolean locked;

    Unit(Store store) {
      this.store = store;
    }

    @Override
    public boolean epochIsCurrent(long epoch) {
      epochChecked = true;
      return store.epoch == epoch;
    }

    @Override
    public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
      assertThat(epochChecked).as("the epoch is checked before the offsets are read").isTrue();
      locked = true;
      return new HashMap<>(store.offsets);
    }

    @Override
    public boolean advance(List<Advance> advances, long epoch) {
      assertThat(locked).as("offsets are read before they are advanced").isTrue();
      for (Advance a : advances) {
        assertThat(store.offsets.get(a.range().topicPartition())).isEqualTo(a.expected());
        pendingOffsets.put(a.range().topicPartition(), a.range().until());
      }
      return true;
    }

    void commit() {
      store.offsets.putAll(pendingOffsets);
      store.output.addAll(pendingOutput);
    }
  }

  private static PartitionOutputs<Long> outputsOf(SourceRange r) {
    return new PartitionOutputs<>() {
      long read;

      @Override
      public Iterator<Positioned<Long>> positionedFrom(long offset) {
        List<Positioned<Long>> out = new ArrayList<>();
        for (long o = Math.max(offset, r.from()); o < r.until(); o++) {
          out.add(new Positioned<>(o, r.topic(), r.partition(), o, 0));
          read++;
        }
        return out.iterator();
      }

      @Override
      public long recordsRead() {
        return read;
      }

      @Override
      public List<DeadLetter> deadLetters() {
        return List.of();
      }
    };
  }

  /**
   * One attempt: which boundaries it covers, whether a zombie (epoch 1) makes it, whether the
   * backend fails after the protocol returned (and aborts), and which shape of the protocol runs.
   */
  record Attempt(int from, int until, boolean zombie, boolean aborted, int shape) {}

  @Provide
  Arbitrary<List<Attempt>> attempts() {
    Arbitrary<Attempt> one =
        Combinators.combine(
                Arbitraries.integers().between(0, 11),
                Arbitraries.integers().between(1, 4),
                Arbitraries.of(false, false, false, true),
                Arbitraries.of(false, false, true),
                Arbitraries.integers().between(0, 2))
            .as((a, len, z, ab, sh) -> new Attempt(a, Math.min(12, a + len), z, ab, sh));
    return one.list().ofMinSize(1).ofMaxSize(60);
  }

  @Property(tries = 500)
  void everyOffsetIsWrittenOnceAndTheOffsetMovesForwardByWholeRanges(
      @ForAll("attempts") List<Attempt> attempts) {
    long[] bounds = new long[13];
    for (int i = 1; i < bounds.length; i++) {
      bounds[i] = bounds[i - 1] + 1 + (i * 5L) % 4;
    }
    Store store = new Store();
    List<Long> visited = new ArrayList<>(List.of(0L));
    for (Attempt a : attempts) {
      SourceRange r = SourceRange.of("t", 0, bounds[a.from()], bounds[a.until()]);
      long epoch = a.zombie() ? 1 : store.epoch;
      long before = store.offsets.get(TP);
      Unit unit = new Unit(store);
      List<CommitOutcome> outcomes = new ArrayList<>();
      switch (a.shape()) {
        case 0 ->
            outcomes.add(
                CommitProtocol.commitRange(
                        unit,
                        epoch,
                        r,
                        outputsOf(r),
                        (out, from) -> {
                          long n = 0;
                          for (Iterator<PartitionOutputs.Positioned<Long>> it =
                                  out.positionedFrom(from);
                              it.hasNext(); ) {
                            unit.pendingOutput.add(it.next().offset());
                            n++;
                          }
                          return n;
                        })
                    .outcome());
        case 1 -> {
          try {
            CommitProtocol.commitBatch(
                    unit,
                    PipelineId.of("p"),
                    epoch,
                    List.of(r),
                    () -> {
                      for (long o = r.from(); o < r.until(); o++) {
                        unit.pendingOutput.add(o);
                      }
                      return r.until() - r.from();
                    })
                .commits()
                .forEach(c -> outcomes.add(c.outcome()));
          } catch (OffsetMismatchException e) {
            // A batch partly committed is refused whole: nothing is written.
            assertThat(unit.pendingOffsets).isEmpty();
            assertThat(unit.pendingOutput).isEmpty();
          }
        }
        default -> {
          // Idempotent: the outputs were written (overwriting) before the offsets advance.
          List<PartitionCommit> commits = CommitProtocol.advanceRanges(unit, epoch, List.of(r));
          commits.forEach(c -> outcomes.add(c.outcome()));
          if (CommitProtocol.writes(commits.get(0).outcome())) {
            for (long o = commits.get(0).storedBefore(); o < r.until(); o++) {
              unit.pendingOutput.add(o);
            }
          }
        }
      }
      if (a.zombie()) {
        assertThat(outcomes).as("an older epoch never commits").containsOnly(CommitOutcome.FENCED);
        assertThat(unit.pendingOutput).isEmpty();
      }
      if (!a.aborted()) {
        unit.commit();
      }
      long after = store.offsets.get(TP);
      assertThat(after).isGreaterThanOrEqualTo(before);
      visited.add(after);
    }
    for (long v : visited) {
      assertThat(bounds).as("the stored offset sits on a range boundary").contains(v);
    }
    long stored = store.offsets.get(TP);
    List<Long> expected = new ArrayList<>();
    for (long o = 0; o < stored; o++) {
      expected.add(o);
    }
    assertThat(store.output.stream().sorted().toList())
        .as("every offset below the stored one written exactly once, none above")
        .isEqualTo(expected);
  }

  @Example
  void aUnitThatDoesNotLockIsReadAgainAndGivesUpWhenTheOffsetsKeepChanging() {
    Store store = new Store();
    CommitUnit neverApplies =
        new CommitUnit() {
          @Override
          public boolean epochIsCurrent(long epoch) {
            return true;
          }

          @Override
          public Map<TopicPartition, Long> lockStoredOffsets(List<SourceRange> ranges) {
            return store.offsets;
          }

          @Override
          public boolean advance(List<Advance> advances, long epoch) {
            return false;
          }
        };
    assertThatThrownBy(
            () ->
                CommitProtocol.advanceRanges(
                    neverApplies, 2, List.of(SourceRange.of("t", 0, 0, 5))))
        .isInstanceOf(org.exactlyonce.spark.WriterFencedException.class)
        .hasMessageContaining("keep changing");
  }
}
