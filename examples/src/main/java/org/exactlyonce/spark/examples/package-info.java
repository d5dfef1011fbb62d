/** Runnable example jobs. */
package org.exactlyonce.spark.examples;
