package org.exactlyonce.spark.structured;

import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.types.StructType;

/**
 * A row of Spark's Kafka source as the Kafka record it was read from, so that the library's record
 * mappers ({@link org.exactlyonce.spark.RecordMapper}) serve both APIs. Key and value stay bytes,
 * as the source reads them; headers are carried when the source includes them ({@code
 * includeHeaders=true}).
 */
final class KafkaRows implements Function<Row, ConsumerRecord<byte[], byte[]>> {
  private static final long serialVersionUID = 1L;

  private final int key;
  private final int value;
  private final int topic;
  private final int partition;
  private final int offset;
  private final int timestamp;
  private final int timestampType;
  private final int headers;

  /** For rows of {@code schema}, the Kafka source's. */
  KafkaRows(StructType schema) {
    this.key = schema.fieldIndex("key");
    this.value = schema.fieldIndex("value");
    this.topic = schema.fieldIndex("topic");
    this.partition = schema.fieldIndex("partition");
    this.offset = schema.fieldIndex("offset");
    this.timestamp = schema.fieldIndex("timestamp");
    this.timestampType = schema.fieldIndex("timestampType");
    this.headers = java.util.Arrays.asList(schema.fieldNames()).indexOf("headers");
  }

  /**
   * The record's timestamp in epoch milliseconds: a {@code java.sql.Timestamp}, or an {@code
   * Instant} with {@code spark.sql.datetime.java8API.enabled}.
   */
  private static long millis(Object timestamp) {
    if (timestamp instanceof java.sql.Timestamp t) {
      return t.getTime();
    }
    if (timestamp instanceof java.time.Instant i) {
      return i.toEpochMilli();
    }
    return -1L;
  }

  /** Kafka's timestamp type of the source's {@code timestampType} column (Kafka's own id). */
  private static TimestampType timestampType(int id) {
    for (TimestampType t : TimestampType.values()) {
      if (t.id == id) {
        return t;
      }
    }
    return TimestampType.NO_TIMESTAMP_TYPE;
  }

  @Override
  public ConsumerRecord<byte[], byte[]> call(Row row) {
    RecordHeaders h = new RecordHeaders();
    if (headers >= 0 && !row.isNullAt(headers)) {
      for (Row header : row.<Row>getList(headers)) {
        h.add(header.getString(0), header.isNullAt(1) ? null : (byte[]) header.get(1));
      }
    }
    byte[] k = row.isNullAt(key) ? null : (byte[]) row.get(key);
    byte[] v = row.isNullAt(value) ? null : (byte[]) row.get(value);
    return new ConsumerRecord<>(
        row.getString(topic),
        row.getInt(partition),
        row.getLong(offset),
        millis(row.get(timestamp)),
        timestampType(row.getInt(timestampType)),
        k == null ? -1 : k.length,
        v == null ? -1 : v.length,
        k,
        v,
        h,
        Optional.empty());
  }
}
