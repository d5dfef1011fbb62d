package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.Kafka(true)}. */
class KafkaTransactionalContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.Kafka(true);
  }
}
