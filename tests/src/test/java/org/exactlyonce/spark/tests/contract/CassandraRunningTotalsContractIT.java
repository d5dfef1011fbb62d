package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.CassandraRunningTotals()}. */
class CassandraRunningTotalsContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.CassandraRunningTotals();
  }
}
