package org.exactlyonce.spark.structured;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.exactlyonce.spark.PipelineId;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.spi.OutputColumn;
import org.exactlyonce.spark.spi.OutputColumn.Kind;
import org.junit.jupiter.api.Test;

class OutputSchemaTest {
  private static final PipelineId P = PipelineId.of("p");

  private static OutputColumn column(String type, Kind kind) {
    return new OutputColumn("c", type, kind);
  }

  private static boolean fits(OutputColumn c, DataType t) {
    return OutputSchema.mismatch(c, t) == null;
  }

  @Test
  void typesTheColumnTakesWithoutLossFit() {
    assertThat(fits(column("bigint", Kind.INTEGER), DataTypes.IntegerType)).isTrue();
    assertThat(fits(column("numeric", Kind.DECIMAL), DataTypes.LongType)).isTrue();
    assertThat(fits(column("numeric(12,2)", Kind.DECIMAL), DataTypes.createDecimalType(10, 2)))
        .isTrue();
    assertThat(fits(column("double precision", Kind.FLOAT64), DataTypes.FloatType)).isTrue();
    assertThat(fits(column("timestamp with time zone", Kind.TIMESTAMP), DataTypes.TimestampType))
        .isTrue();
    assertThat(fits(column("jsonb", Kind.OTHER), DataTypes.StringType)).isTrue();
  }

  @Test
  void roundingNarrowingAndZoneDependentValuesAreRefused() {
    assertThat(OutputSchema.mismatch(column("real", Kind.FLOAT32), DataTypes.DoubleType))
        .contains("rounded to single precision");
    assertThat(
            OutputSchema.mismatch(
                column("numeric(10,2)", Kind.DECIMAL), DataTypes.createDecimalType(10, 4)))
        .contains("4 decimals would be rounded to 2");
    assertThat(OutputSchema.mismatch(column("numeric(6,2)", Kind.DECIMAL), DataTypes.LongType))
        .contains("19 integer digits may not fit its 4");
    assertThat(
            OutputSchema.mismatch(
                column("timestamp without time zone", Kind.LOCAL_TIMESTAMP),
                DataTypes.TimestampType))
        .contains("use timestamp with time zone");
    assertThat(fits(column("double precision", Kind.FLOAT64), DataTypes.LongType)).isFalse();
    assertThat(fits(column("text", Kind.STRING), DataTypes.LongType)).isFalse();
  }

  @Test
  void aSchemaThatDoesNotFitIsRefusedNamingEveryProblem() {
    StructType schema =
        new StructType()
            .add("clicks", DataTypes.StringType)
            .add("extra", DataTypes.LongType)
            .add("extra", DataTypes.LongType);
    List<OutputColumn> columns =
        List.of(
            new OutputColumn("campaign", "text", Kind.STRING),
            new OutputColumn("clicks", "bigint", Kind.INTEGER));

    assertThatThrownBy(() -> OutputSchema.check(P, columns, schema))
        .isInstanceOf(SinkConfigurationException.class)
        .hasMessageContaining("two fields are named 'extra'")
        .hasMessageContaining("column 'campaign' (text) has no field of its name")
        .hasMessageContaining("field 'clicks' is string but the column is bigint")
        .hasMessageContaining("fields [extra] go to no column of the sink");
  }
}
