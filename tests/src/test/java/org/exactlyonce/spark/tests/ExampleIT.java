package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.exactlyonce.spark.examples.ClicksToPostgres;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The README's first command, run inside the build: the example checks its own output. */
class ExampleIT {

  @Test
  void clicksToPostgresWritesEveryClickExactlyOnce() {
    PrintStream original = System.out;
    ByteArrayOutputStream captured = new ByteArrayOutputStream();
    int exit;
    try {
      System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
      exit =
          new CommandLine(new ClicksToPostgres())
              .execute("--records", "5000", "--topic", "example-clicks-" + System.nanoTime());
    } finally {
      System.setOut(original);
    }
    String out = captured.toString(StandardCharsets.UTF_8);
    original.print(out);
    assertThat(exit).isZero();
    assertThat(out).contains("produced 5,000, rows 5,000, duplicates 0, missing 0 -> EXACTLY ONCE");
  }
}
