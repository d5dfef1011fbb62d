package org.exactlyonce.spark.jdbc.internal;

import java.io.Serializable;
import java.util.List;
import org.exactlyonce.spark.spi.PartitionOutputs.Positioned;
import org.jdbi.v3.core.Handle;

/** Writes a chunk of outputs inside an open transaction. */
public interface RowWriter<R> extends Serializable {
  void write(Handle handle, List<Positioned<R>> rows) throws Exception;
}
