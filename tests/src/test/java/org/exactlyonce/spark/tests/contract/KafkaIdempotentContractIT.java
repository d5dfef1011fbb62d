package org.exactlyonce.spark.tests.contract;

/** The exactly-once contract, asked of {@code Fixtures.Kafka(false)}. */
class KafkaIdempotentContractIT extends SinkContract {
  @Override
  SinkUnderTest create() {
    return new Fixtures.Kafka(false);
  }
}
