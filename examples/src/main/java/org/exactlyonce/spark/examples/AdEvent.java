package org.exactlyonce.spark.examples;

import java.io.Serializable;

/**
 * A mobile-ad event, parsed from its CSV value: {@code click,<click_id>,<campaign>,<ts>} or {@code
 * conv,<conversion_id>,<click_id>,<campaign>,<value_cents>}.
 *
 * @param kind {@code click} or {@code conv}
 * @param id the click or conversion id
 * @param clickId the click a conversion is attributed to (the click's own id for a click)
 * @param campaign the campaign
 * @param ts the click's timestamp, ms (0 for a conversion)
 * @param valueCents the conversion's value (0 for a click)
 */
public record AdEvent(
    String kind, String id, String clickId, String campaign, long ts, long valueCents)
    implements Serializable {

  /**
   * Parses one event.
   *
   * @throws IllegalArgumentException for anything else: the job's dead letters keep it
   */
  public static AdEvent parse(String value) {
    String[] f = value == null ? new String[0] : value.split(",", -1);
    if (f.length == 4 && f[0].equals("click")) {
      return new AdEvent("click", f[1], f[1], f[2], Long.parseLong(f[3]), 0);
    }
    if (f.length == 5 && f[0].equals("conv")) {
      return new AdEvent("conv", f[1], f[2], f[3], 0, Long.parseLong(f[4]));
    }
    throw new IllegalArgumentException(
        "not an ad event (click,id,campaign,ts or conv,id,click_id,campaign,value): "
            + (value == null
                ? "null"
                : value.length() > 40 ? value.substring(0, 40) + "..." : value));
  }

  public boolean isClick() {
    return kind.equals("click");
  }

  public boolean isConversion() {
    return kind.equals("conv");
  }

  /** The {@code i}-th event of the generator: clicks, conversions of earlier clicks, some junk. */
  public static String generate(int i) {
    String campaign = "campaign-" + (i % 7);
    if (i % 100 == 99) {
      return "%%malformed-" + i; // about 1 %
    }
    if (i % 5 == 4) {
      return "conv,conv-" + i + ",click-" + (i - 1) + "," + campaign + "," + (100 + (i % 13) * 50);
    }
    return "click,click-" + i + "," + campaign + "," + (1_700_000_000_000L + i);
  }
}
