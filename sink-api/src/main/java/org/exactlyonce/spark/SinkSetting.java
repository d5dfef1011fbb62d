package org.exactlyonce.spark;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One sink setting, declared once: its key (under {@code spark.exactlyonce.<pipeline id>.}), its
 * type, its default as the builder applies it, a one-line description and an optional check. A
 * backend declares its settings as constants; {@link SinkProperties} reads them from a Spark
 * configuration and the settings reference ({@code docs/settings.md}) is generated from them.
 * Immutable and thread-safe.
 *
 * @param <T> the value's type
 */
public final class SinkSetting<T> {
  private static final Pattern SPARK_DURATION =
      Pattern.compile("(\\d+)\\s*(ms|s|m|min|h|d)", Pattern.CASE_INSENSITIVE);

  private final String key;
  private final String type;
  private final String defaultValue;
  private final String doc;
  private final Function<String, T> parser;
  private final String expected;
  private final Predicate<T> check;
  private final String fix;
  private final boolean map;
  private final boolean showValue;

  private SinkSetting(
      String key,
      String type,
      String defaultValue,
      String doc,
      Function<String, T> parser,
      String expected,
      Predicate<T> check,
      String fix,
      boolean map,
      boolean showValue) {
    if (key == null || !key.matches("[A-Za-z][A-Za-z0-9]*")) {
      throw new IllegalArgumentException("a setting key is one camelCase word, got " + key);
    }
    this.key = key;
    this.type = type;
    this.defaultValue = Objects.requireNonNull(defaultValue, "defaultValue");
    this.doc = Objects.requireNonNull(doc, "doc");
    this.parser = parser;
    this.expected = expected;
    this.check = check;
    this.fix = fix;
    this.map = map;
    this.showValue = showValue;
  }

  /**
   * A text setting.
   *
   * @param defaultValue the default as the reference shows it (for example {@code eos_offsets} or
   *     {@code none})
   */
  public static SinkSetting<String> text(String key, String defaultValue, String doc) {
    return new SinkSetting<>(
        key,
        "string",
        defaultValue,
        doc,
        s -> s,
        "a non-blank text",
        s -> !s.isBlank(),
        null,
        false,
        true);
  }

  /** A whole-number setting (Java {@code int}). */
  public static SinkSetting<Integer> integer(String key, String defaultValue, String doc) {
    return new SinkSetting<>(
        key, "int", defaultValue, doc, Integer::valueOf, "a whole number", null, null, false, true);
  }

  /** A whole-number setting (Java {@code long}). */
  public static SinkSetting<Long> longInteger(String key, String defaultValue, String doc) {
    return new SinkSetting<>(
        key, "long", defaultValue, doc, Long::valueOf, "a whole number", null, null, false, true);
  }

  /** A {@code true}/{@code false} setting. */
  public static SinkSetting<Boolean> bool(String key, String defaultValue, String doc) {
    return new SinkSetting<>(
        key,
        "boolean",
        defaultValue,
        doc,
        s -> {
          String v = s.trim().toLowerCase(Locale.ROOT);
          if (!v.equals("true") && !v.equals("false")) {
            throw new IllegalArgumentException(s);
          }
          return Boolean.valueOf(v);
        },
        "true or false",
        null,
        null,
        false,
        true);
  }

  /**
   * A duration setting, written like Spark's ({@code 500ms}, {@code 30s}, {@code 10min} or {@code
   * 10m}, {@code 2h}, {@code 3d}) or in ISO-8601 ({@code PT30S}).
   */
  public static SinkSetting<Duration> duration(String key, String defaultValue, String doc) {
    return new SinkSetting<>(
        key,
        "duration",
        defaultValue,
        doc,
        SinkSetting::parseDuration,
        "a duration such as 500ms, 30s, 10min, 2h, 3d or PT30S",
        null,
        null,
        false,
        true);
  }

  /** A comma-separated list setting ({@code a,b,c}); blanks around the commas are dropped. */
  public static SinkSetting<List<String>> list(String key, String defaultValue, String doc) {
    return new SinkSetting<>(
        key,
        "list",
        defaultValue,
        doc,
        s -> Arrays.stream(s.split(",")).map(String::trim).filter(v -> !v.isEmpty()).toList(),
        "a comma-separated list",
        l -> !l.isEmpty(),
        null,
        false,
        true);
  }

  /**
   * A family of pass-through settings: every key {@code <key>.<name>} sets {@code name}, for
   * example {@code property.sslmode=verify-full}. Secret-looking names are refused like any
   * secret-looking key.
   */
  public static SinkSetting<Map<String, String>> map(String key, String doc) {
    return new SinkSetting<>(key, "map", "none", doc, null, null, null, null, true, true);
  }

  /**
   * This setting, refusing values for which {@code ok} is false with {@code fix} (what to write
   * instead, for example "use at least 1").
   */
  public SinkSetting<T> check(Predicate<T> ok, String fix) {
    Predicate<T> before = check;
    Predicate<T> both = before == null ? ok : v -> before.test(v) && ok.test(v);
    return new SinkSetting<>(
        key, type, defaultValue, doc, parser, expected, both, fix, map, showValue);
  }

  /**
   * This setting, whose value errors do not repeat (a URL, which may carry credentials where it
   * should not).
   */
  public SinkSetting<T> valueNotShownInErrors() {
    return new SinkSetting<>(
        key, type, defaultValue, doc, parser, expected, check, fix, map, false);
  }

  /** The value as an error shows it. */
  String shown(String text) {
    return showValue ? text : "(value not shown)";
  }

  /** The key under {@code spark.exactlyonce.<pipeline id>.}, for example {@code maxPoolSize}. */
  public String key() {
    return key;
  }

  /**
   * The type as the reference names it: {@code string}, {@code int}, {@code long}, {@code boolean},
   * {@code duration}, {@code list} or {@code map}.
   */
  public String type() {
    return type;
  }

  /** The default, as the reference shows it. */
  public String defaultValue() {
    return defaultValue;
  }

  /** The one-line description. */
  public String doc() {
    return doc;
  }

  /** Whether this is a family of keys {@code <key>.<name>} (see {@link #map}). */
  public boolean isMap() {
    return map;
  }

  /**
   * Parses and checks {@code text}, the value of {@code fullKey}.
   *
   * @throws SinkConfigurationException naming the key, the value and what to write instead
   */
  T parse(String fullKey, String text) {
    T value;
    try {
      value = parser.apply(text.trim());
    } catch (RuntimeException e) {
      throw new SinkConfigurationException(
          fullKey + "=" + shown(text) + " is not valid: write " + expected + " (" + doc + ")");
    }
    if (check != null && !check.test(value)) {
      throw new SinkConfigurationException(
          fullKey
              + "="
              + shown(text)
              + " is not valid: "
              + (fix != null ? fix : "write " + expected)
              + " ("
              + doc
              + ")");
    }
    return value;
  }

  static Duration parseDuration(String text) {
    Matcher m = SPARK_DURATION.matcher(text);
    if (m.matches()) {
      long n = Long.parseLong(m.group(1));
      return switch (m.group(2).toLowerCase(Locale.ROOT)) {
        case "ms" -> Duration.ofMillis(n);
        case "s" -> Duration.ofSeconds(n);
        case "m", "min" -> Duration.ofMinutes(n);
        case "h" -> Duration.ofHours(n);
        default -> Duration.ofDays(n);
      };
    }
    return Duration.parse(text);
  }

  @Override
  public String toString() {
    return key + " (" + type + ", default " + defaultValue + ")";
  }
}
