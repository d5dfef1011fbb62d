package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.CassandraIdempotent()}. */
class CassandraIdempotentContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.CassandraIdempotent();
  }
}
