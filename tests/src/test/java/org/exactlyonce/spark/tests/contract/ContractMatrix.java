package org.exactlyonce.spark.tests.contract;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;
import org.opentest4j.TestAbortedException;

/**
 * Collects the contract suite's results, behaviour × sink, and writes the matrix to {@code
 * target/contract-matrix.md} (and the log) after each sink's class: pass, FAIL, or n.a. with the
 * reason the test gives.
 */
final class ContractMatrix implements TestWatcher, AfterAllCallback {
  private static final Map<String, Map<String, String>> CELLS = new TreeMap<>();
  private static final TreeSet<String> SINKS = new TreeSet<>();

  private static synchronized void put(ExtensionContext context, String cell) {
    String sink =
        context
            .getTestInstance()
            .map(t -> ((SinkContract) t).sinkName())
            .orElse(context.getRequiredTestClass().getSimpleName());
    SINKS.add(sink);
    CELLS
        .computeIfAbsent(context.getRequiredTestMethod().getName(), b -> new TreeMap<>())
        .put(sink, cell);
  }

  @Override
  public void testSuccessful(ExtensionContext context) {
    put(context, "pass");
  }

  @Override
  public void testFailed(ExtensionContext context, Throwable cause) {
    put(context, "FAIL");
  }

  @Override
  public void testAborted(ExtensionContext context, Throwable cause) {
    put(
        context,
        cause instanceof TestAbortedException
            ? "n.a.: " + cause.getMessage().replace("Assumption failed: ", "")
            : "aborted");
  }

  @Override
  public void testDisabled(ExtensionContext context, Optional<String> reason) {
    put(context, "n.a.: " + reason.orElse(""));
  }

  @Override
  public void afterAll(ExtensionContext context) {
    String table = render();
    System.out.println("Contract matrix so far (behaviour × sink):\n" + table);
    try {
      Path out = Path.of("target", "contract-matrix.md");
      Files.createDirectories(out.getParent());
      Files.writeString(out, table);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static synchronized String render() {
    StringBuilder sb = new StringBuilder("| behaviour |");
    SINKS.forEach(s -> sb.append(' ').append(s).append(" |"));
    sb.append("\n|---|");
    SINKS.forEach(s -> sb.append("---|"));
    sb.append('\n');
    CELLS.forEach(
        (behaviour, row) -> {
          sb.append("| ").append(behaviour).append(" |");
          SINKS.forEach(s -> sb.append(' ').append(row.getOrDefault(s, "")).append(" |"));
          sb.append('\n');
        });
    return sb.toString();
  }
}
