package org.exactlyonce.spark.cassandra;

import java.io.Serializable;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.exactlyonce.spark.SinkConfigurationException;
import org.exactlyonce.spark.spi.Secrets;

/**
 * How to reach Cassandra: contact points, local data center, credentials and consistency. Writes
 * default to {@code LOCAL_QUORUM}, lightweight transactions to {@code LOCAL_SERIAL}; only quorum
 * and serial levels are accepted (see {@link #writeConsistency}). Serialisable; a password read
 * from an environment variable is read where the session is opened, so it never travels with tasks,
 * and no password appears in {@link #toString()}. Immutable.
 */
public final class CassandraSettings implements Serializable {
  private static final long serialVersionUID = 1L;

  // Levels whose writes overlap every later quorum read: a committed offset never points past
  // outputs that a quorum does not hold.
  private static final List<String> WRITE_LEVELS =
      List.of("LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL");
  private static final List<String> SERIAL_LEVELS = List.of("LOCAL_SERIAL", "SERIAL");

  private final List<String> contactPoints;
  private final String localDatacenter;
  private String user;
  private String password;
  private String passwordEnv;
  private String writeConsistency = "LOCAL_QUORUM";
  private String serialConsistency = "LOCAL_SERIAL";
  private int maxRequestsInFlight = 128;
  private Duration requestTimeout = Duration.ofSeconds(10);
  private boolean tls;
  private String trustStore;
  private String trustStorePassword;

  /** The defaults; the withers change a {@link #copy()}. */
  private CassandraSettings(List<String> contactPoints, String localDatacenter) {
    this.contactPoints = contactPoints;
    this.localDatacenter = localDatacenter;
  }

  /**
   * Settings for the nodes {@code host:port} (at least one) of data center {@code localDatacenter}.
   *
   * @throws SinkConfigurationException if a contact point is not {@code host:port}
   */
  public static CassandraSettings contactPoints(String localDatacenter, String... hostPorts) {
    if (hostPorts.length == 0) {
      throw new SinkConfigurationException("give at least one Cassandra contact point host:port");
    }
    for (String hp : hostPorts) {
      int colon = hp == null ? -1 : hp.lastIndexOf(':');
      if (colon <= 0 || !hp.substring(colon + 1).matches("\\d{1,5}")) {
        throw new SinkConfigurationException(
            "Cassandra contact point '" + hp + "' is not host:port, for example 10.0.0.5:9042");
      }
    }
    if (localDatacenter == null || localDatacenter.isBlank()) {
      throw new SinkConfigurationException(
          "the local data center is required (the driver routes to it), for example \"datacenter1\"");
    }
    return new CassandraSettings(List.of(hostPorts), localDatacenter);
  }

  /** These settings with other nodes, checked like {@link #contactPoints(String, String...)}. */
  CassandraSettings withContactPoints(String datacenter, List<String> hostPorts) {
    CassandraSettings checked = contactPoints(datacenter, hostPorts.toArray(new String[0]));
    CassandraSettings c = new CassandraSettings(checked.contactPoints, checked.localDatacenter);
    c.user = user;
    c.password = password;
    c.passwordEnv = passwordEnv;
    c.writeConsistency = writeConsistency;
    c.serialConsistency = serialConsistency;
    c.maxRequestsInFlight = maxRequestsInFlight;
    c.requestTimeout = requestTimeout;
    c.tls = tls;
    c.trustStore = trustStore;
    c.trustStorePassword = trustStorePassword;
    return c;
  }

  /** Authenticates as {@code user} (with a password from {@link #passwordFromEnv}). */
  public CassandraSettings user(String user) {
    CassandraSettings c = copy();
    c.user = user;
    return c;
  }

  /** Uses {@code password}; prefer {@link #passwordFromEnv}, this one travels with tasks. */
  public CassandraSettings password(String password) {
    CassandraSettings c = copy();
    c.password = password;
    c.passwordEnv = null;
    return c;
  }

  /** Reads the password from environment variable {@code name} where the session is opened. */
  public CassandraSettings passwordFromEnv(String name) {
    CassandraSettings c = copy();
    c.password = null;
    c.passwordEnv = name;
    return c;
  }

  /**
   * The consistency of writes and reads (default {@code LOCAL_QUORUM}): one of {@code
   * LOCAL_QUORUM}, {@code QUORUM}, {@code EACH_QUORUM} or {@code ALL}, in any case.
   *
   * @throws SinkConfigurationException for any other level: with {@code ONE}, {@code ANY} and the
   *     like, offsets could be committed over outputs a single replica holds (or only a hint), and
   *     losing that node would lose them for good, since nothing replays a committed range
   */
  public CassandraSettings writeConsistency(String level) {
    CassandraSettings c = copy();
    c.writeConsistency =
        checked(
            "writeConsistency",
            level,
            WRITE_LEVELS,
            "LOCAL_QUORUM (the default), QUORUM, EACH_QUORUM or ALL",
            "offsets could be committed over outputs that a single replica holds (or only a"
                + " hint), so losing one node would lose committed outputs for good");
    return c;
  }

  /**
   * The serial consistency of lightweight transactions (default {@code LOCAL_SERIAL}): {@code
   * LOCAL_SERIAL} or {@code SERIAL}, in any case.
   *
   * @throws SinkConfigurationException for any other level (Cassandra takes no other for the Paxos
   *     phase of a conditional update)
   */
  public CassandraSettings serialConsistency(String level) {
    CassandraSettings c = copy();
    c.serialConsistency =
        checked(
            "serialConsistency",
            level,
            SERIAL_LEVELS,
            "LOCAL_SERIAL (the default) or SERIAL",
            "the offsets' compare-and-set, the writer epoch and running totals are lightweight"
                + " transactions, which need a serial level");
    return c;
  }

  private static String checked(
      String setting, String level, List<String> allowed, String fix, String why) {
    String upper = level == null ? null : level.trim().toUpperCase(Locale.ROOT);
    if (upper == null || !allowed.contains(upper)) {
      throw new SinkConfigurationException(
          "CassandraSettings."
              + setting
              + "(\""
              + level
              + "\") is not allowed: "
              + (upper != null && allowed == WRITE_LEVELS && SERIAL_LEVELS.contains(upper)
                  ? "a serial level applies to lightweight transactions only (serialConsistency);"
                      + " "
                  : "")
              + "exactly-once needs "
              + String.join(", ", allowed)
              + ", otherwise "
              + why
              + ". Use "
              + fix);
    }
    return upper;
  }

  /** The most asynchronous writes one task keeps in flight (default 128). */
  public CassandraSettings maxRequestsInFlight(int n) {
    if (n < 1) {
      throw new SinkConfigurationException("maxRequestsInFlight must be at least 1, got " + n);
    }
    CassandraSettings c = copy();
    c.maxRequestsInFlight = n;
    return c;
  }

  /** The timeout of one request (default 10 s). */
  public CassandraSettings requestTimeout(Duration timeout) {
    CassandraSettings c = copy();
    c.requestTimeout = timeout;
    return c;
  }

  /**
   * Connects over TLS, trusting the certificates of the JVM's default trust store ({@code
   * javax.net.ssl.trustStore} or the JDK's {@code cacerts}); host names are verified.
   */
  public CassandraSettings tls() {
    CassandraSettings c = copy();
    c.tls = true;
    c.trustStore = null;
    c.trustStorePassword = null;
    return c;
  }

  /**
   * Connects over TLS, trusting the certificates in the trust store at {@code path} (PKCS12 or JKS;
   * the same path on the driver and on every executor); host names are verified. The password is
   * never shown by {@link #toString()}.
   *
   * @throws SinkConfigurationException if there is no readable file at {@code path} here
   */
  public CassandraSettings tls(String path, String password) {
    if (path == null || !java.nio.file.Files.isReadable(java.nio.file.Path.of(path))) {
      throw new SinkConfigurationException(
          "CassandraSettings.tls: no readable trust store at '"
              + path
              + "'; give the path of a PKCS12 or JKS file holding the CA of the nodes' certificates,"
              + " present at the same path on the driver and every executor");
    }
    CassandraSettings c = copy();
    c.tls = true;
    c.trustStore = path;
    c.trustStorePassword = password;
    return c;
  }

  /** Whether connections use TLS. */
  public boolean usesTls() {
    return tls;
  }

  /** The trust store's path, or null for the JVM's default. */
  public String trustStore() {
    return trustStore;
  }

  /** The trust store's password (null if none). */
  public String trustStorePassword() {
    return trustStorePassword;
  }

  /** A copy for a wither to change before returning it: no instance changes once returned. */
  private CassandraSettings copy() {
    CassandraSettings c = new CassandraSettings(contactPoints, localDatacenter);
    c.user = user;
    c.password = password;
    c.passwordEnv = passwordEnv;
    c.writeConsistency = writeConsistency;
    c.serialConsistency = serialConsistency;
    c.maxRequestsInFlight = maxRequestsInFlight;
    c.requestTimeout = requestTimeout;
    c.tls = tls;
    c.trustStore = trustStore;
    c.trustStorePassword = trustStorePassword;
    return c;
  }

  public List<String> contactPoints() {
    return contactPoints;
  }

  public String localDatacenter() {
    return localDatacenter;
  }

  public String user() {
    return user;
  }

  public String writeConsistency() {
    return writeConsistency;
  }

  public String serialConsistency() {
    return serialConsistency;
  }

  public int maxRequestsInFlight() {
    return maxRequestsInFlight;
  }

  public Duration requestTimeout() {
    return requestTimeout;
  }

  /** The password, resolved now (null if none). */
  public String resolvePassword() {
    return passwordEnv == null ? password : Secrets.fromEnv(passwordEnv, "the Cassandra password");
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof CassandraSettings)) {
      return false;
    }
    CassandraSettings s = (CassandraSettings) o;
    return contactPoints.equals(s.contactPoints)
        && localDatacenter.equals(s.localDatacenter)
        && Objects.equals(user, s.user)
        && Objects.equals(password, s.password)
        && Objects.equals(passwordEnv, s.passwordEnv)
        && writeConsistency.equals(s.writeConsistency)
        && serialConsistency.equals(s.serialConsistency)
        && maxRequestsInFlight == s.maxRequestsInFlight
        && requestTimeout.equals(s.requestTimeout)
        && tls == s.tls
        && Objects.equals(trustStore, s.trustStore)
        && Objects.equals(trustStorePassword, s.trustStorePassword);
  }

  @Override
  public int hashCode() {
    return Objects.hash(
        contactPoints,
        localDatacenter,
        user,
        password,
        passwordEnv,
        writeConsistency,
        serialConsistency,
        maxRequestsInFlight,
        requestTimeout,
        tls,
        trustStore,
        trustStorePassword);
  }

  /** The settings with the password masked. */
  @Override
  public String toString() {
    return "CassandraSettings{contactPoints="
        + contactPoints
        + ", localDatacenter="
        + localDatacenter
        + ", user="
        + user
        + ", password="
        + (passwordEnv != null ? "from env " + passwordEnv : password != null ? "****" : "none")
        + ", writeConsistency="
        + writeConsistency
        + ", serialConsistency="
        + serialConsistency
        + ", maxRequestsInFlight="
        + maxRequestsInFlight
        + ", requestTimeout="
        + requestTimeout
        + ", tls="
        + (!tls ? "off" : trustStore == null ? "default trust store" : "trust store " + trustStore)
        + "}";
  }
}
