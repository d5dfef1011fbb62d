package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.JdbcPerBatch(true)}. */
class JdbcPerBatchStagedContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.JdbcPerBatch(true);
  }
}
