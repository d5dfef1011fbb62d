package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.JdbcIdempotent()}. */
class JdbcIdempotentContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.JdbcIdempotent();
  }
}
