package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.JdbcPerBatch(false)}. */
class JdbcPerBatchCollectedContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.JdbcPerBatch(false);
  }
}
