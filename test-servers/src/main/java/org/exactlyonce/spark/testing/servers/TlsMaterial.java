package org.exactlyonce.spark.testing.servers;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.Key;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A self-signed certificate for {@code localhost} / {@code 127.0.0.1}, made with the JDK's own
 * {@code keytool} (nothing else to install), in the forms the servers and clients want: a PKCS12
 * key store (Kafka, Cassandra), a PKCS12 trust store (Java clients), PEM certificate and PKCS#8 PEM
 * key (PostgreSQL, pgjdbc's {@code sslrootcert}).
 */
public final class TlsMaterial {
  /** The password of both stores. A test secret, never used for anything else. */
  public static final String STORE_PASSWORD = "test-store-secret";

  private final Path dir;

  private TlsMaterial(Path dir) {
    this.dir = dir;
  }

  /** Creates the material in {@code dir}, or reuses what an earlier call left there. */
  public static synchronized TlsMaterial in(Path dir) {
    TlsMaterial m = new TlsMaterial(dir);
    if (!Files.exists(m.privateKeyPem())) { // written last
      m.create();
    }
    return m;
  }

  public Path keyStore() {
    return dir.resolve("server.p12");
  }

  public Path trustStore() {
    return dir.resolve("truststore.p12");
  }

  public Path certificatePem() {
    return dir.resolve("server.crt");
  }

  public Path privateKeyPem() {
    return dir.resolve("server.key");
  }

  private void create() {
    try {
      Files.createDirectories(dir);
      keytool(
          "-genkeypair",
          "-alias",
          "server",
          "-keyalg",
          "RSA",
          "-keysize",
          "2048",
          "-validity",
          "3650",
          "-dname",
          "CN=localhost",
          "-ext",
          "SAN=dns:localhost,ip:127.0.0.1",
          "-keystore",
          keyStore().toString(),
          "-storetype",
          "PKCS12",
          "-storepass",
          STORE_PASSWORD,
          "-keypass",
          STORE_PASSWORD);
      // The rest in-process: one keytool launch (about half a second) instead of three.
      KeyStore ks = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(keyStore())) {
        ks.load(in, STORE_PASSWORD.toCharArray());
      }
      Certificate cert = ks.getCertificate("server");
      Files.writeString(certificatePem(), pem("CERTIFICATE", cert.getEncoded()));
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("server", cert);
      try (OutputStream out = Files.newOutputStream(trustStore())) {
        trust.store(out, STORE_PASSWORD.toCharArray());
      }
      // PostgreSQL wants the key as PEM, readable by its owner only.
      Key key = ks.getKey("server", STORE_PASSWORD.toCharArray());
      String pem = pem("PRIVATE KEY", key.getEncoded());
      Files.writeString(privateKeyPem(), pem);
      Files.setPosixFilePermissions(privateKeyPem(), PosixFilePermissions.fromString("rw-------"));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create TLS material in " + dir, e);
    } catch (Exception e) {
      throw new IllegalStateException("cannot create TLS material in " + dir + ": " + e, e);
    }
  }

  private static String pem(String type, byte[] der) {
    return "-----BEGIN "
        + type
        + "-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
        + "\n-----END "
        + type
        + "-----\n";
  }

  private void keytool(String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
    cmd.addAll(List.of(args));
    Path log = dir.resolve("keytool.log");
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException(
          "keytool " + args[0] + " failed; see " + log + ": " + Files.readString(log));
    }
  }
}
