package org.exactlyonce.spark.jdbc.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.junit.jupiter.api.Test;

/** Pool names show up in logs and JMX, so they must not carry what a URL may hold secretly. */
class DatabasesTest {
  @Test
  void poolNamesCarryNeitherUrlParametersNorUserInfo() {
    JdbcSettings withParameters =
        JdbcSettings.url("jdbc:postgresql://db:5432/ads?user=app&password=s3cret&sslpassword=k3y");
    assertThat(Databases.config(withParameters, "exactly-once-").getPoolName())
        .isEqualTo("exactly-once-jdbc:postgresql://db:5432/ads");
    JdbcSettings withUserInfo = JdbcSettings.url("jdbc:postgresql://app:s3cret@db/ads");
    assertThat(Databases.config(withUserInfo, "exactly-once-driver-").getPoolName())
        .isEqualTo("exactly-once-driver-jdbc:postgresql://db/ads");
  }
}
