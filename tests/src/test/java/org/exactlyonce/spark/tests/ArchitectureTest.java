package org.exactlyonce.spark.tests;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The module boundaries the design asks for, checked on the compiled classes. */
class ArchitectureTest {
  private static JavaClasses classes;

  @BeforeAll
  static void importClasses() {
    classes =
        new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("org.exactlyonce.spark");
  }

  @Test
  void sinkApiDependsOnNoBackend() {
    noClasses()
        .that()
        .resideInAnyPackage(
            "org.exactlyonce.spark", "org.exactlyonce.spark.spi", "org.exactlyonce.spark.internal")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage(
            "org.jdbi..",
            "org.postgresql..",
            "com.zaxxer..",
            "com.datastax..",
            "org.exactlyonce.spark.jdbc..",
            "org.exactlyonce.spark.cassandra..",
            "org.exactlyonce.spark.kafka..",
            "org.exactlyonce.spark.structured..",
            "org.exactlyonce.spark.testing..")
        .check(classes);
  }

  /**
   * The core's {@code internal} package is what no other module imports: backends build on the
   * public API and the declared SPI ({@code org.exactlyonce.spark.spi}) only. The one exception is
   * the Structured Streaming adapter ({@code org.exactlyonce.spark.structured}), the core's second
   * entry point beside {@code ExactlyOnce}: it runs the same start sequence and batch plan, and
   * lives in a module of its own only because it needs Spark SQL, which the core does not.
   */
  @Test
  void noOtherModuleImportsTheCoresInternals() {
    noClasses()
        .that()
        .resideOutsideOfPackages(
            "org.exactlyonce.spark",
            "org.exactlyonce.spark.internal",
            "org.exactlyonce.spark.structured")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("org.exactlyonce.spark.internal")
        .check(classes);
  }

  /**
   * The protocol's decisions are made in one place, {@link
   * org.exactlyonce.spark.spi.CommitProtocol}: a backend supplies the primitive ({@link
   * org.exactlyonce.spark.spi.CommitUnit}) and never decides a range itself.
   */
  @Test
  void noBackendDecidesARangeItself() {
    noClasses()
        .that()
        .resideOutsideOfPackages(
            "org.exactlyonce.spark", "org.exactlyonce.spark.spi", "org.exactlyonce.spark.internal")
        .should()
        .callMethod(
            org.exactlyonce.spark.spi.CommitDecision.class,
            "decide",
            long.class,
            org.exactlyonce.spark.SourceRange.class)
        .because("every backend commits through CommitProtocol over its CommitUnit")
        .check(classes);
  }

  /** A backend's {@code internal} package is used by that backend only. */
  @Test
  void aBackendsInternalsStayInThatBackend() {
    for (String backend : List.of("jdbc", "cassandra", "kafka")) {
      String base = "org.exactlyonce.spark." + backend;
      noClasses()
          .that()
          .resideOutsideOfPackage(base + "..")
          .should()
          .dependOnClassesThat()
          .resideInAPackage(base + ".internal..")
          .check(classes);
    }
  }

  @Test
  void librariesDoNotDependOnTheTestServers() {
    noClasses()
        .that()
        .resideOutsideOfPackages(
            "org.exactlyonce.spark.testing..", "org.exactlyonce.spark.examples..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("org.exactlyonce.spark.testing..", "io.zonky..")
        .check(classes);
  }

  /** The offsets tool is an operator's program on the public API, like a user's job. */
  @Test
  void theOffsetsToolUsesOnlyThePublicApi() {
    noClasses()
        .that()
        .resideInAPackage("org.exactlyonce.spark.tool..")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("..internal..")
        .check(classes);
  }

  @Test
  void examplesUseOnlyThePublicApi() {
    noClasses()
        .that()
        .resideInAPackage("org.exactlyonce.spark.examples..")
        .should()
        .dependOnClassesThat()
        .resideInAPackage("..internal..")
        .check(classes);
  }
}
