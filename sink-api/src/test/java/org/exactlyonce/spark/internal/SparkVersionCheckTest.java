package org.exactlyonce.spark.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.exactlyonce.spark.internal.SparkVersionCheck.SCALA_BINARY;
import static org.exactlyonce.spark.internal.SparkVersionCheck.SPARK_LINE;
import static org.exactlyonce.spark.internal.SparkVersionCheck.SPARK_TESTED;

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
  void theBuildRecordsItsSparkReleaseAndScalaBinaryVersion() {
    assertThat(SparkVersionCheck.SPARK_TESTED).matches("\\d+\\.\\d+\\.\\d+");
    assertThat(SparkVersionCheck.SPARK_LINE).isEqualTo(SparkVersionCheck.majorMinor(SPARK_TESTED));
    assertThat(SparkVersionCheck.SCALA_BINARY).matches("2\\.1\\d");
  }

  @Test
  void anotherPatchReleaseOfTheSameSparkLineStarts() {
    assertThatCode(() -> SparkVersionCheck.check(SPARK_LINE + ".99", SCALA_BINARY + ".7", false))
        .doesNotThrowAnyException();
  }

  @Test
  void anotherSparkLineIsRefusedNamingBothVersionsAndTheWayOut() {
    // 3.4 is neither line this source tree builds (3.5 and 4.2).
    assertThatThrownBy(() -> SparkVersionCheck.check("3.4.1", SCALA_BINARY + ".17", false))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("for Spark " + SPARK_LINE + ".x")
        .hasMessageContaining("runs on Spark 3.4.1")
        .hasMessageContaining(SparkVersionCheck.ALLOW_UNTESTED + "=true");
    assertThatCode(() -> SparkVersionCheck.check("3.4.1", SCALA_BINARY + ".17", true))
        .doesNotThrowAnyException();
  }

  @Test
  void anotherScalaBinaryVersionIsRefusedEvenWhenUntestedSparkIsAllowed() {
    String other = SCALA_BINARY.equals("2.12") ? "2.13" : "2.12";
    assertThatThrownBy(() -> SparkVersionCheck.check("4.0.1", other + ".16", true))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("for Scala " + SCALA_BINARY + " but runs on Scala " + other + ".16")
        .hasMessageContaining("_" + other);
  }
}
