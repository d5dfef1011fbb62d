package org.exactlyonce.spark.tests;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** The settings reference in docs/settings.md is what the settings' declarations generate. */
class SettingsReferenceTest {
  @Test
  void docsSettingsMdIsWhatTheDeclarationsGenerate() throws IOException {
    if (Boolean.getBoolean("settings.reference.write")) {
      SettingsReference.write();
    }
    String expected = SettingsReference.generate();
    String actual =
        Files.exists(SettingsReference.file())
            ? Files.readString(SettingsReference.file(), StandardCharsets.UTF_8)
            : "";
    assertThat(actual)
        .as(
            "docs/settings.md is stale (a sink setting was added, removed or changed): run "
                + SettingsReference.COMMAND
                + " and commit docs/settings.md")
        .isEqualTo(expected);
  }
}
