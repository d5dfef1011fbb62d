package org.exactlyonce.spark.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.exactlyonce.spark.SinkConfigurationException;
import org.junit.jupiter.api.Test;

class SparkVersionCheckTest {

  @Test
  void theSparkAndScalaOnTheTestClasspathAreTheOnesThisBuildDeclares() {
    // Fails when the pom moves to another Spark release without the check following it.
    assertThat(org.apache.spark.package$.MODULE$.SPARK_VERSION())
        .isEqualTo(SparkVersionCheck.SPARK_TESTED);
    assertThat(SparkVersionCheck.majorMinor(scala.util.Properties.versionNumberString()))
        .isEqualTo(SparkVersionCheck.SCALA_BINARY);
    assertThatCode(
            () ->
                SparkVersionCheck.check(
                    org.apache.spark.package$.MODULE$.SPARK_VERSION(),
                    scala.util.Properties.versionNumberString(),
                    false))
        .doesNotThrowAnyException();
  }

  @Test
  void anotherPatchReleaseOfTheSameSparkLineStarts() {
    assertThatCode(() -> SparkVersionCheck.check("3.5.1", "2.12.18", false))
        .doesNotThrowAnyException();
  }

  @Test
  void anotherSparkLineIsRefusedNamingBothVersionsAndTheWayOut() {
    assertThatThrownBy(() -> SparkVersionCheck.check("3.4.1", "2.12.17", false))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("for Spark 3.5.x")
        .hasMessageContaining("runs on Spark 3.4.1")
        .hasMessageContaining(SparkVersionCheck.ALLOW_UNTESTED + "=true");
    assertThatCode(() -> SparkVersionCheck.check("3.4.1", "2.12.17", true))
        .doesNotThrowAnyException();
  }

  @Test
  void anotherScalaBinaryVersionIsRefusedEvenWhenUntestedSparkIsAllowed() {
    assertThatThrownBy(() -> SparkVersionCheck.check("4.0.1", "2.13.16", true))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("for Scala 2.12 but runs on Scala 2.13.16")
        .hasMessageContaining("_2.13");
  }
}
