package com.example.consumer;

import java.util.List;
import org.exactlyonce.spark.chaos.Oracle;

/** The chaos kit resolved in test scope: its oracle judges a duplicated output. */
public final class ChaosKitCheck {
  public static void main(String[] args) {
    Oracle.Verdict once = Oracle.records(List.of("a", "b"), List.of("b", "a"));
    Oracle.Verdict twice = Oracle.records(List.of("a", "b"), List.of("a", "b", "b"));
    if (!once.exactlyOnce() || twice.exactlyOnce()) {
      throw new IllegalStateException("unexpected verdicts: " + once + " / " + twice);
    }
    System.out.println("chaos-kit: OK (" + twice + ")");
  }
}
