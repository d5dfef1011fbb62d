package org.exactlyonce.spark.examples.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;

/** A horizontal bar chart of records/s per strategy, drawn with Java2D (no plotting library). */
final class Chart {
  private Chart() {}

  static void write(Path png, String title, List<Benchmarks.Result> results) throws Exception {
    int rowH = 34;
    int left = 470;
    int width = 1250;
    int height = 90 + rowH * results.size();
    BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(
        RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, width, height);
    g.setColor(Color.BLACK);
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
    g.drawString(title, 20, 30);
    double max = results.stream().mapToDouble(Benchmarks.Result::recordsPerSecond).max().orElse(1);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
    int y = 60;
    for (Benchmarks.Result r : results) {
      g.setColor(Color.DARK_GRAY);
      g.drawString(r.backend() + " · " + r.strategy(), 20, y + 20);
      int w = (int) ((width - left - 120) * r.recordsPerSecond() / max);
      g.setColor(
          r.strategy().startsWith("exactly-once")
              ? new Color(0x2e7d32)
              : r.strategy().startsWith("at-least-once")
                  ? new Color(0x9e9e9e)
                  : new Color(0x1565c0));
      g.fillRect(left, y + 6, Math.max(w, 1), rowH - 12);
      g.setColor(Color.BLACK);
      g.drawString(String.format("%,.0f rec/s", r.recordsPerSecond()), left + w + 8, y + 22);
      y += rowH;
    }
    g.setStroke(new BasicStroke(1));
    g.drawLine(left, 50, left, height - 20);
    g.dispose();
    ImageIO.write(img, "png", png.toFile());
  }
}
