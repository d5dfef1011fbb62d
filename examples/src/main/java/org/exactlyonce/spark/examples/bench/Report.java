package org.exactlyonce.spark.examples.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.exactlyonce.spark.examples.bench.Benchmarks.Point;
import org.exactlyonce.spark.examples.bench.Benchmarks.Run;
import org.exactlyonce.spark.examples.bench.Strategies.Kind;
import org.exactlyonce.spark.examples.bench.Strategies.Strategy;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogarithmicAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** Medians, spreads, ratios against the best baseline, the targets, the plots. */
final class Report {
  private Report() {}

  /** Median, min and max of a strategy's runs at a point; null if it did not run there. */
  record Stat(double median, double min, double max, long p50Ms, int n) {}

  static Stat stat(List<Run> runs, Point p, String strategy) {
    List<Double> v = new ArrayList<>();
    List<Long> lat = new ArrayList<>();
    for (Run r : runs) {
      if (r.point().equals(p) && r.strategy().equals(strategy)) {
        v.add(r.recordsPerSecond());
        lat.add(r.p50Ms());
      }
    }
    if (v.isEmpty()) {
      return null;
    }
    Collections.sort(v);
    Collections.sort(lat);
    return new Stat(
        median(v), v.get(0), v.get(v.size() - 1), lat.get((lat.size() - 1) / 2), v.size());
  }

  static double median(List<Double> sorted) {
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }

  /** The best (highest median) at-least-once writer of a backend at a point, among {@code ok}. */
  static Map.Entry<String, Stat> best(
      List<Run> runs, Point p, List<Strategy> all, String backend, Predicate<Strategy> ok) {
    Map.Entry<String, Stat> best = null;
    for (Strategy s : all) {
      if (s.backend().equals(backend) && s.kind() == Kind.AT_LEAST_ONCE && ok.test(s)) {
        Stat st = stat(runs, p, s.id());
        if (st != null && (best == null || st.median() > best.getValue().median())) {
          best = Map.entry(s.id(), st);
        }
      }
    }
    return best;
  }

  static void write(
      Path out,
      Benchmarks b,
      List<Run> runs,
      List<Point> points,
      List<Strategy> all,
      Map<String, String> profiles,
      List<String> bookkeeping,
      List<String> failures,
      Duration took)
      throws Exception {
    Files.createDirectories(out);
    StringBuilder md = new StringBuilder();
    md.append(
        String.format(
            "Run of %s, %d min: %d alternated rounds per point, %d batches per run of %d ms (the"
                + " first not counted), Spark local[2]. Figures: records per second of batch"
                + " time (generating the batch on the driver plus running its jobs), median of the rounds (min–max); batch p50 is the median of"
                + " the runs' median batch time.%n%n",
            LocalDate.now(), took.toMinutes(), b.rounds(), b.batches(), b.batchMs()));
    List<String> backends = all.stream().map(Strategy::backend).distinct().toList();
    for (String backend : backends) {
      md.append("### ").append(backend).append("\n\n");
      md.append(
          "| point | strategy | records/s (median) | min–max | batch p50 ms | vs best ALO |\n");
      md.append("|---|---|---:|---:|---:|---:|\n");
      for (Point p : points) {
        Map.Entry<String, Stat> best = best(runs, p, all, backend, s -> true);
        for (Strategy s : all) {
          if (!s.backend().equals(backend)) {
            continue;
          }
          Stat st = stat(runs, p, s.id());
          if (st == null) {
            continue;
          }
          String ratio =
              s.kind() == Kind.EXACTLY_ONCE && best != null
                  ? String.format("%.2f×", st.median() / best.getValue().median())
                  : "";
          md.append(
              String.format(
                  "| %s | %s %s | %,.0f | %,.0f–%,.0f | %d | %s |%n",
                  p.label(),
                  s.kind() == Kind.EXACTLY_ONCE ? "EO" : "ALO",
                  s.name(),
                  st.median(),
                  st.min(),
                  st.max(),
                  st.p50Ms(),
                  ratio));
        }
      }
      md.append("\n");
    }
    md.append("### Targets (median against the named baseline, same run)\n\n");
    md.append("| target | point | ratio | met |\n|---|---|---:|---|\n");
    List<Point> base =
        points.stream()
            .filter(
                p ->
                    p.partitions() == Benchmarks.BASE_PARTITIONS
                        && p.recordSize() == Benchmarks.BASE_SIZE)
            .toList();
    for (Point p : base) {
      target(md, runs, all, p, "postgres", "JdbcSink.transactional", s -> true, 0.9);
      target(md, runs, all, p, "postgres", "JdbcSink.perBatch", s -> true, 0.9);
      target(
          md,
          runs,
          all,
          p,
          "postgres",
          "JdbcSink.idempotent",
          s -> s.name().contains("keyed table"),
          0.9);
      target(md, runs, all, p, "cassandra", "CassandraSink.idempotent", s -> true, 0.9);
      if (p.perPartition() == Benchmarks.REFERENCE_PER_PARTITION) {
        target(md, runs, all, p, "kafka", "KafkaSink.transactional", s -> true, 0.8);
      }
      if (p.perPartition() == 1_000) {
        target(md, runs, all, p, "kafka", "KafkaSink.transactional", s -> true, 0.5);
      }
    }
    md.append("\n");
    if (!failures.isEmpty()) {
      md.append("### Failed runs (not counted)\n\n");
      failures.forEach(f -> md.append("- ").append(f).append("\n"));
      md.append("\n");
    }
    if (!bookkeeping.isEmpty()) {
      md.append(
          "### Offset bookkeeping of one batch, over partitions (target ≤ 50 ms at 1,000)\n\n");
      bookkeeping.forEach(l -> md.append("- ").append(l).append("\n"));
      md.append("\n");
    }
    if (!profiles.isEmpty()) {
      md.append(
          "### Where the batches' time went (JFR, one run of every strategy at each profiled"
              + " point)\n\n");
      profiles.forEach(
          (k, v) -> md.append("`").append(k).append("`\n```\n").append(v).append("```\n"));
    }
    Files.writeString(out.resolve("results.md"), md.toString());
    StringBuilder csv =
        new StringBuilder(
            "partitions,per_partition,record_size,strategy,round,records_per_s,batch_p50_ms\n");
    for (Run r : runs) {
      csv.append(
          String.format(
              "%d,%d,%d,%s,%d,%.0f,%d%n",
              r.point().partitions(),
              r.point().perPartition(),
              r.point().recordSize(),
              r.strategy(),
              r.round(),
              r.recordsPerSecond(),
              r.p50Ms()));
    }
    Files.writeString(out.resolve("results.csv"), csv.toString());
    for (String backend : backends) {
      plot(
          out.resolve(backend + "-per-partition.png"),
          backend + ": records/s over records per partition per batch (4 partitions, 100 B)",
          "records per partition per batch",
          runs,
          all,
          backend,
          points.stream()
              .filter(
                  p ->
                      p.partitions() == Benchmarks.BASE_PARTITIONS
                          && p.recordSize() == Benchmarks.BASE_SIZE)
              .toList(),
          Point::perPartition);
      plot(
          out.resolve(backend + "-partitions.png"),
          backend + ": records/s over partitions (250 records per partition per batch, 100 B)",
          "partitions",
          runs,
          all,
          backend,
          points.stream()
              .filter(
                  p ->
                      p.perPartition() == Benchmarks.PARTITION_CURVE_PER_PARTITION
                          && p.recordSize() == Benchmarks.BASE_SIZE)
              .toList(),
          Point::partitions);
      plot(
          out.resolve(backend + "-record-size.png"),
          backend
              + ": records/s over record size (4 partitions, 1,000 records per partition per batch)",
          "record size, bytes",
          runs,
          all,
          backend,
          points.stream()
              .filter(
                  p ->
                      p.partitions() == Benchmarks.BASE_PARTITIONS
                          && p.perPartition() == Benchmarks.SIZE_CURVE_PER_PARTITION)
              .toList(),
          Point::recordSize);
    }
    System.out.println("\n" + md);
    System.out.println("wrote " + out.resolve("results.md") + ", results.csv and the plots");
  }

  private static void target(
      StringBuilder md,
      List<Run> runs,
      List<Strategy> all,
      Point p,
      String backend,
      String sinkName,
      Predicate<Strategy> baseline,
      double min) {
    Strategy eo =
        all.stream()
            .filter(s -> s.backend().equals(backend) && s.name().startsWith(sinkName))
            .findFirst()
            .orElse(null);
    Map.Entry<String, Stat> best = best(runs, p, all, backend, baseline);
    Stat st = eo == null ? null : stat(runs, p, eo.id());
    if (st == null || best == null) {
      return;
    }
    double ratio = st.median() / best.getValue().median();
    md.append(
        String.format(
            "| %s ≥ %.1f× %s | %s | %.2f× | %s |%n",
            eo.id(), min, best.getKey(), p.label(), ratio, ratio >= min ? "met" : "**not met**"));
  }

  private static void plot(
      Path png,
      String title,
      String xLabel,
      List<Run> runs,
      List<Strategy> all,
      String backend,
      List<Point> curve,
      java.util.function.ToIntFunction<Point> x)
      throws Exception {
    if (curve.size() < 2) {
      return;
    }
    XYSeriesCollection data = new XYSeriesCollection();
    Map<String, XYSeries> series = new LinkedHashMap<>();
    for (Strategy s : all) {
      if (!s.backend().equals(backend)) {
        continue;
      }
      XYSeries xy =
          new XYSeries((s.kind() == Kind.EXACTLY_ONCE ? "EO " : "ALO (dashed) ") + s.name());
      for (Point p : curve) {
        Stat st = stat(runs, p, s.id());
        if (st != null) {
          xy.add(x.applyAsInt(p), st.median());
        }
      }
      series.put(s.id(), xy);
      data.addSeries(xy);
    }
    JFreeChart chart =
        ChartFactory.createXYLineChart(
            title,
            xLabel,
            "records/s (median)",
            data,
            PlotOrientation.VERTICAL,
            true,
            false,
            false);
    XYPlot plot = chart.getXYPlot();
    // Plain numbers at 1, 2, 5 x 10^n (LogAxis would label 10^2.40).
    LogarithmicAxis xAxis = new LogarithmicAxis(xLabel);
    xAxis.setStrictValuesFlag(false);
    plot.setDomainAxis(xAxis);
    ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(true);
    plot.setBackgroundPaint(Color.WHITE);
    plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    XYLineAndShapeRenderer r = new XYLineAndShapeRenderer(true, true);
    int i = 0;
    for (Strategy s : all) {
      if (!s.backend().equals(backend)) {
        continue;
      }
      boolean eo = s.kind() == Kind.EXACTLY_ONCE;
      r.setSeriesStroke(
          i,
          eo
              ? new BasicStroke(2.5f)
              : new BasicStroke(
                  1.5f,
                  BasicStroke.CAP_BUTT,
                  BasicStroke.JOIN_MITER,
                  10f,
                  new float[] {6f, 4f},
                  0f));
      i++;
    }
    plot.setRenderer(r);
    chart.setTitle(
        new org.jfree.chart.title.TextTitle(
            title, new java.awt.Font("SansSerif", java.awt.Font.BOLD, 14)));
    ChartUtils.saveChartAsPNG(png.toFile(), chart, 1000, 560);
  }
}
