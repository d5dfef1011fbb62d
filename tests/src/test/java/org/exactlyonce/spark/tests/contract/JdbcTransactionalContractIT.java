package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.JdbcTransactional()}. */
class JdbcTransactionalContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.JdbcTransactional();
  }
}
