package org.exactlyonce.spark.tool;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.exactlyonce.spark.spi.ExactlyOnceSink;

/** One backend's offsets, as the tool reads them; changes go through the library's rewind. */
interface PipelineStore extends AutoCloseable {

  /** Where the offsets are, for messages (no secrets). */
  String describe();

  /** The pipelines the store holds ({@code pipeline} only, if not null), ordered by id. */
  List<PipelineState> read(String pipeline);

  /**
   * A sink of {@code pipeline} that writes nothing, for {@link
   * org.exactlyonce.spark.ExactlyOnce#rewind}: only its offset store is used.
   */
  ExactlyOnceSink rewindSink(String pipeline);

  /**
   * Why a driver may still hold {@code pipeline} (it took its writer epoch or committed within
   * {@code idleFor}), or empty if the store shows it idle for longer.
   */
  Optional<String> heldBecause(String pipeline, Duration idleFor);

  @Override
  void close();
}
