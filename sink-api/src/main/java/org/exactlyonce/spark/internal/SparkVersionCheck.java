package org.exactlyonce.spark.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import org.apache.spark.SparkConf;
import org.exactlyonce.spark.SinkConfigurationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Refuses to start on a Spark line or Scala binary version this build was not made for. The
 * library's stream extends Spark's {@code private[spark]} {@code DirectKafkaInputDStream} and sets
 * a private field of {@code KafkaRDD}: another Spark line may change either without notice, and the
 * failure would come mid-stream, or not at all while offsets silently go wrong. Another Scala
 * binary version fails with linkage errors deep inside Spark. Both are cheaper to say at start.
 */
public final class SparkVersionCheck {
  private static final Logger LOG = LoggerFactory.getLogger(SparkVersionCheck.class);

  private static final String BUILD_RESOURCE = "spark-line.properties";

  private static final Properties BUILD = buildProperties();

  /**
   * The Spark release this build compiles against and the test suite runs it with: the root pom's
   * {@code spark.version}, recorded in a resource at build time (the same sources build each Spark
   * line, see bin/change-spark-line).
   */
  public static final String SPARK_TESTED = BUILD.getProperty("spark.version");

  /** The Spark line (major.minor) this build compiles against. */
  public static final String SPARK_LINE = majorMinor(SPARK_TESTED);

  /** The Scala binary version this build compiles against (the root pom's). */
  public static final String SCALA_BINARY = BUILD.getProperty("scala.binary.version");

  /** Lets a stream start on an untested Spark line anyway (logged as a warning). */
  public static final String ALLOW_UNTESTED = "spark.exactlyonce.allowUntestedSpark";

  private SparkVersionCheck() {}

  /** Checks the running Spark and Scala against this build. */
  public static void checkRunning(String sparkVersion, SparkConf conf) {
    check(
        sparkVersion,
        scala.util.Properties.versionNumberString(),
        conf.getBoolean(ALLOW_UNTESTED, false));
  }

  /**
   * @throws SinkConfigurationException naming both versions and the fix, unless {@code
   *     allowUntested} and only the Spark line differs
   */
  static void check(String spark, String scala, boolean allowUntested) {
    String scalaBinary = majorMinor(scala);
    if (!SCALA_BINARY.equals(scalaBinary)) {
      throw new SinkConfigurationException(
          "this build of the exactly-once library is for Scala "
              + SCALA_BINARY
              + " but runs on Scala "
              + scala
              + ": use the library's artifacts whose name ends in _"
              + scalaBinary
              + " (built for the Spark line of that Scala version)");
    }
    if (SPARK_LINE.equals(majorMinor(spark))) {
      if (!SPARK_TESTED.equals(spark)) {
        LOG.info(
            "Spark {}: this build is tested with Spark {} (same {} line)",
            spark,
            SPARK_TESTED,
            SPARK_LINE);
      }
      return;
    }
    String what =
        "this build of the exactly-once library is for Spark "
            + SPARK_LINE
            + ".x (tested with "
            + SPARK_TESTED
            + ") but runs on Spark "
            + spark
            + ": its stream extends Spark's internal DirectKafkaInputDStream, which another line may"
            + " change";
    if (allowUntested) {
      LOG.warn("{}; starting anyway because {}=true", what, ALLOW_UNTESTED);
      return;
    }
    throw new SinkConfigurationException(
        what
            + ". Use the library release built for Spark "
            + majorMinor(spark)
            + " if there is one, or set "
            + ALLOW_UNTESTED
            + "=true to start anyway at your own risk");
  }

  private static Properties buildProperties() {
    Properties p = new Properties();
    try (InputStream in = SparkVersionCheck.class.getResourceAsStream(BUILD_RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException(
            "resource "
                + BUILD_RESOURCE
                + " is missing beside "
                + SparkVersionCheck.class.getName()
                + ": this jar of the exactly-once library was not built by its Maven build");
      }
      p.load(in);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + BUILD_RESOURCE, e);
    }
    for (String key : new String[] {"spark.version", "scala.binary.version"}) {
      String v = p.getProperty(key);
      if (v == null || v.isBlank() || v.contains("${")) {
        throw new IllegalStateException(
            BUILD_RESOURCE + " has no " + key + " (got " + v + "): the build did not filter it");
      }
    }
    return p;
  }

  /** {@code "3.5"} of {@code "3.5.5"} (or of {@code "3.5.5-SNAPSHOT"}). */
  static String majorMinor(String version) {
    String[] parts = version.split("[.-]");
    return parts.length < 2 ? version : parts[0] + "." + parts[1];
  }
}
