package org.exactlyonce.spark;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.exactlyonce.spark.internal.SparkVersionCheck;

/**
 * The sink settings of one pipeline read from a Spark configuration (or any map): every key {@code
 * spark.exactlyonce.<pipeline id>.<key>}, parsed and checked against the sink's declared {@link
 * SinkSetting}s. Reading refuses, naming the key and the fix: a key no setting declares (a typo;
 * the nearest declared key is named), a key that looks like a secret (SparkConf values show in
 * Spark's UI and event logs: secrets come from an environment variable or a file), and a value that
 * does not parse or fails its setting's check. The library only reads the configuration, never
 * writes it. Immutable.
 */
public final class SinkProperties {
  /** The prefix of every sink setting; the pipeline id and a dot follow it. */
  public static final String PREFIX = "spark.exactlyonce.";

  // Library-wide settings that share the prefix: a pipeline named "metrics" must not read them.
  private static final Set<String> GLOBAL_KEYS =
      Set.of(ExactlyOnceMetrics.ENABLED_SETTING, SparkVersionCheck.ALLOW_UNTESTED);

  // What Spark's own spark.redaction.regex hides, and more: such a value must not be in SparkConf.
  private static final Pattern SECRET =
      Pattern.compile(
          "password|passwd|secret|token|credential|jaas|private[._-]?key|access[._-]?key",
          Pattern.CASE_INSENSITIVE);

  private final String prefix;
  private final Map<String, Object> values;

  private SinkProperties(String prefix, Map<String, Object> values) {
    this.prefix = prefix;
    this.values = values;
  }

  /**
   * The settings of pipeline {@code pipelineId} found in {@code conf} (for example the entries of a
   * Spark configuration), checked against {@code declared}. Keys of other pipelines are ignored,
   * and so is a key that ends with a declared key after a dot ({@code spark.exactlyonce.a.b.url}
   * belongs to pipeline {@code a.b}, not to pipeline {@code a}).
   *
   * @throws SinkConfigurationException naming the key and the fix, for an unknown key under the
   *     pipeline's prefix, a secret-looking key or a value that is not valid
   */
  public static SinkProperties read(
      PipelineId pipelineId, Map<String, String> conf, Collection<SinkSetting<?>> declared) {
    String prefix = PREFIX + pipelineId.value() + ".";
    Map<String, SinkSetting<?>> byKey = new TreeMap<>();
    for (SinkSetting<?> s : declared) {
      byKey.put(s.key(), s);
    }
    Map<String, Object> values = new LinkedHashMap<>();
    for (Map.Entry<String, String> e : new TreeMap<>(conf).entrySet()) {
      String fullKey = e.getKey();
      if (!fullKey.startsWith(prefix) || GLOBAL_KEYS.contains(fullKey)) {
        continue;
      }
      String rest = fullKey.substring(prefix.length());
      int dot = rest.indexOf('.');
      SinkSetting<?> setting = byKey.get(dot < 0 ? rest : rest.substring(0, dot));
      if (setting != null && setting.isMap() && dot > 0 && dot < rest.length() - 1) {
        String name = rest.substring(dot + 1);
        refuseSecret(prefix, fullKey, name, declared);
        @SuppressWarnings("unchecked")
        Map<String, String> m =
            (Map<String, String>) values.computeIfAbsent(setting.key(), k -> new TreeMap<>());
        m.put(name, e.getValue());
        continue;
      }
      if (setting != null && !setting.isMap() && dot < 0) {
        values.put(setting.key(), setting.parse(fullKey, e.getValue()));
        continue;
      }
      refuseSecret(prefix, fullKey, rest, declared);
      if (ofDottedPipeline(rest, declared)) {
        // spark.exactlyonce.a.b.url is pipeline "a.b"'s url, not a typo of pipeline "a"
        continue;
      }
      throw new SinkConfigurationException(
          fullKey
              + " is not a setting of this sink"
              + nearest(prefix, rest, declared)
              + "; its settings are "
              + keys(declared)
              + " (see docs/settings.md)");
    }
    return new SinkProperties(prefix, values);
  }

  /**
   * The settings of pipeline {@code pipelineId} in Spark configuration {@code conf}, which is only
   * read.
   *
   * @throws SinkConfigurationException as {@link #read(PipelineId, Map, Collection)}
   */
  public static SinkProperties read(
      PipelineId pipelineId, org.apache.spark.SparkConf conf, Collection<SinkSetting<?>> declared) {
    Map<String, String> all = new TreeMap<>();
    for (scala.Tuple2<String, String> t : conf.getAll()) {
      all.put(t._1(), t._2());
    }
    return read(pipelineId, all, declared);
  }

  /** Whether no setting of the pipeline is present. */
  public boolean isEmpty() {
    return values.isEmpty();
  }

  /** The full key of {@code setting} for this pipeline, for messages. */
  public String fullKey(SinkSetting<?> setting) {
    return prefix + setting.key();
  }

  /** The value of {@code setting}, if present (a map setting: its entries). */
  @SuppressWarnings("unchecked")
  public <T> Optional<T> get(SinkSetting<T> setting) {
    return Optional.ofNullable((T) values.get(setting.key()));
  }

  /**
   * Gives the value of {@code setting}, if present, to {@code apply} (typically a builder method).
   * A {@link SinkConfigurationException} it throws (the builder's own check) is rethrown naming the
   * full key, so the builder stays the one place a value is checked.
   *
   * @throws SinkConfigurationException naming the key, the value and the builder's reason
   */
  public <T> void ifPresent(SinkSetting<T> setting, Consumer<? super T> apply) {
    Optional<T> v = get(setting);
    if (v.isEmpty()) {
      return;
    }
    try {
      apply.accept(v.get());
    } catch (SinkConfigurationException e) {
      throw new SinkConfigurationException(
          fullKey(setting)
              + "="
              + setting.shown(shown(v.get()))
              + " is not valid: "
              + e.getMessage(),
          e);
    }
  }

  /**
   * Gives each entry of map setting {@code setting}, if present, to {@code apply}; a {@link
   * SinkConfigurationException} it throws is rethrown naming the entry's full key.
   *
   * @throws SinkConfigurationException naming the key, the value and the builder's reason
   */
  public void forEachEntry(
      SinkSetting<Map<String, String>> setting, BiConsumer<String, String> apply) {
    for (Map.Entry<String, String> e : get(setting).orElse(Map.of()).entrySet()) {
      try {
        apply.accept(e.getKey(), e.getValue());
      } catch (SinkConfigurationException x) {
        throw new SinkConfigurationException(
            fullKey(setting)
                + "."
                + e.getKey()
                + "="
                + e.getValue()
                + " is not valid: "
                + x.getMessage(),
            x);
      }
    }
  }

  private static String shown(Object value) {
    if (value instanceof List<?> l) {
      return String.join(",", l.stream().map(String::valueOf).toList());
    }
    return String.valueOf(value);
  }

  private static void refuseSecret(
      String prefix, String fullKey, String name, Collection<SinkSetting<?>> declared) {
    if (!SECRET.matcher(name).find()) {
      return;
    }
    List<String> options = new ArrayList<>();
    for (SinkSetting<?> s : declared) {
      if (!s.isMap() && (s.key().endsWith("Env") || s.key().endsWith("File"))) {
        options.add(prefix + s.key());
      }
    }
    throw new SinkConfigurationException(
        fullKey
            + " looks like a secret, and SparkConf values show in Spark's UI, event logs and"
            + " spark-submit's command line: remove it and "
            + (options.isEmpty()
                ? "pass the secret in code, read from an environment variable or a file"
                : "name the environment variable"
                    + (options.stream().allMatch(o -> o.endsWith("Env")) ? "" : " or file")
                    + " that holds it with "
                    + String.join(" or ", options)
                    + " (set the variable on executors with spark.executorEnv.<NAME>)"));
  }

  private static boolean ofDottedPipeline(String rest, Collection<SinkSetting<?>> declared) {
    for (SinkSetting<?> s : declared) {
      if (s.isMap() ? rest.contains("." + s.key() + ".") : rest.endsWith("." + s.key())) {
        return true;
      }
    }
    return false;
  }

  private static String keys(Collection<SinkSetting<?>> declared) {
    return declared.stream()
        .map(s -> s.isMap() ? s.key() + ".<name>" : s.key())
        .toList()
        .toString();
  }

  private static String nearest(String prefix, String rest, Collection<SinkSetting<?>> declared) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    String head = rest.contains(".") ? rest.substring(0, rest.indexOf('.')) : rest;
    for (SinkSetting<?> s : declared) {
      int d = distance(head.toLowerCase(Locale.ROOT), s.key().toLowerCase(Locale.ROOT));
      if (d < bestDistance) {
        bestDistance = d;
        best =
            s.isMap()
                ? s.key() + "." + (head.equals(rest) ? "<name>" : rest.substring(head.length() + 1))
                : s.key();
      }
    }
    // A suggestion far from what was typed would mislead more than the list of settings helps.
    boolean close = bestDistance <= Math.max(2, head.length() / 3);
    return best == null || !close ? "" : ": did you mean " + prefix + best + "?";
  }

  /** Levenshtein distance. */
  static int distance(String a, String b) {
    int[] prev = new int[b.length() + 1];
    int[] cur = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      prev[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      cur[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
        cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
      }
      int[] t = prev;
      prev = cur;
      cur = t;
    }
    return prev[b.length()];
  }
}
