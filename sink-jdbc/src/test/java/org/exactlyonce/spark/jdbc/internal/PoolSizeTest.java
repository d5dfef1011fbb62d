package org.exactlyonce.spark.jdbc.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.apache.spark.SparkConf;
import org.exactlyonce.spark.jdbc.JdbcSettings;
import org.junit.jupiter.api.Test;

/** The default pool holds a connection for every task an executor runs at once. */
class PoolSizeTest {
  private static SparkConf conf(String master) {
    return new SparkConf(false).setMaster(master);
  }

  @Test
  void taskSlotsComeFromTheExecutorsCoresAndTheCoresPerTask() {
    assertThat(PoolSize.taskSlots(conf("local"), 8)).isEqualTo(1);
    assertThat(PoolSize.taskSlots(conf("local[6]"), 8)).isEqualTo(6);
    assertThat(PoolSize.taskSlots(conf("local[*]"), 8)).isEqualTo(8);
    assertThat(PoolSize.taskSlots(conf("local[12, 3]"), 8)).isEqualTo(12);
    assertThat(PoolSize.taskSlots(conf("local-cluster[2, 3, 1024]"), 8)).isEqualTo(3);
    assertThat(PoolSize.taskSlots(conf("yarn").set("spark.executor.cores", "16"), 8)).isEqualTo(16);
    assertThat(
            PoolSize.taskSlots(
                conf("yarn").set("spark.executor.cores", "16").set("spark.task.cpus", "4"), 8))
        .isEqualTo(4);
    assertThat(PoolSize.taskSlots(conf("spark://master:7077"), 24)).isEqualTo(24);
    assertThat(PoolSize.taskSlots(conf("local[2]").set("spark.task.cpus", "4"), 8)).isEqualTo(1);
  }

  @Test
  void theDefaultPoolHasOneConnectionPerSlotPlusOneAndAtLeastFour() {
    assertThat(PoolSize.ofSlots(1)).isEqualTo(4);
    assertThat(PoolSize.ofSlots(3)).isEqualTo(4);
    assertThat(PoolSize.ofSlots(4)).isEqualTo(5);
    assertThat(PoolSize.ofSlots(16)).isEqualTo(17);
  }

  @Test
  void anExplicitSizeWins() {
    JdbcSettings auto = JdbcSettings.url("jdbc:postgresql://db/ads");
    assertThat(auto.maxPoolSize()).isZero();
    assertThat(auto.toString()).contains("maxPoolSize=per task slot");
    assertThat(auto.maxPoolSize(2).maxPoolSize()).isEqualTo(2);
    // Outside Spark (no SparkEnv): the explicit size, or the minimum.
    assertThat(PoolSize.forThisJvm(2)).isEqualTo(2);
    assertThat(PoolSize.forThisJvm(40)).isEqualTo(40);
    assertThat(PoolSize.forThisJvm(0)).isEqualTo(PoolSize.MINIMUM);
  }
}
