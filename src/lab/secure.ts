/**
 * A secured lab ensemble: TLS on each server's secureClientPort with certificates made at start,
 * SASL DIGEST-MD5 with a generated JAAS file, and authentication enforced, all on the real
 * ZooKeeper 3.8 servers the rest of the lab runs.
 *
 * Everything secret is made here and stays in one directory (mode 0700): the CA's and every
 * leaf's private key (0600), each server's PEM key store (key + chain, 0600) and the JAAS file
 * (0600; DigestLoginModule reads the SASL passwords from it, there is no other way to give them
 * to ZooKeeper's server). Nothing secret goes into zoo.cfg, a system property (the JVM's argv is
 * readable in /proc/PID/cmdline) or openssl's argv: keys are written by openssl to files, and
 * the server reads key stores and the JAAS file by path.
 *
 * Server facts used (ZooKeeper 3.8 source): a zoo.cfg key ZooKeeper does not know becomes the
 * system property "zookeeper.<key>" (QuorumPeerConfig.parseProperties), so `ssl.*`,
 * `authProvider.*`, `enforce.auth.*` and `serverCnxnFactory` can live in zoo.cfg; TLS needs the
 * Netty connection factory (NIO refuses a secure port); PEM key and trust stores are read by
 * PEMFileLoader (`ssl.keyStore.type=PEM`: one file with the key and the certificate chain); the
 * x509 provider maps a client certificate to the id X500Principal.getName() (RFC 2253);
 * enforcement (AuthenticationHelper) refuses every request but auth and sasl from a connection
 * without an id of an enforced scheme, with SESSIONCLOSEDREQUIRESASLAUTH, and closes it.
 *
 * The plain clientPort stays open, with enforcement on, because the harness's four-letter words
 * (srvr for quorum, mntr, ...) are plain TCP; a plain client can reach it but do nothing there.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, randomInt, X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ensemble, EnsembleError, type EnsembleOptions, type ServerInfo } from './ensemble.ts';
import { rfc2253, type TlsOptions } from '../zk/transport.ts';

export const DEFAULT_SECURE_CLIENT_PORT = 2281;
const OPENSSL_TIMEOUT_MS = 20_000;
const CERT_DAYS = 7;

export class SecureLabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecureLabError';
  }
}

function openssl(args: string[], what: string): void {
  try {
    // argv carries paths, subjects and extensions only: keys go to files openssl writes.
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: OPENSSL_TIMEOUT_MS });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new SecureLabError('openssl is not installed; run: apt-get install -y openssl (npm test and npm run demo install it)');
    throw new SecureLabError(`openssl failed to ${what}: ${err.stderr?.toString().trim().split('\n').slice(-2).join(' ') || err.message}`);
  }
}

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export interface IssuedCertificate {
  /** PEM certificate (leaf only). */
  certFile: string;
  /** PEM private key, 0600. */
  keyFile: string;
  /** The subject as ZooKeeper's x509 provider names it (RFC 2253), e.g. "CN=member,O=zkwarden lab". */
  x509Id: string;
}

/** A certificate authority made with openssl: an EC P-256 key and a self-signed certificate. */
export class CertificateAuthority {
  readonly dir: string;
  readonly name: string;
  readonly certFile: string;
  private readonly keyFile: string;

  private constructor(dir: string, name: string) {
    this.dir = dir;
    this.name = name;
    this.certFile = join(dir, `${name}-ca.pem`);
    this.keyFile = join(dir, `${name}-ca.key`);
  }

  static create(dir: string, name = 'zkwarden-lab'): CertificateAuthority {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = new CertificateAuthority(dir, name);
    const ext = join(dir, `${name}-ca.ext`);
    writeFileSync(ext, ['[v3]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash', ''].join('\n'));
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        ca.keyFile,
        '-out',
        ca.certFile,
        '-days',
        String(CERT_DAYS),
        '-subj',
        `/O=zkwarden lab/CN=${name} CA`,
        '-config',
        ext,
        '-extensions',
        'v3',
      ],
      `make the ${name} CA`,
    );
    chmodSync(ca.keyFile, 0o600);
    return ca;
  }

  get certPem(): string {
    return readFileSync(this.certFile, 'utf8');
  }

  /**
   * A leaf certificate for `commonName`: for a server, with its IP addresses (and DNS names) as
   * subject alternative names, which is what clients check; for a client, usable for client auth.
   */
  issue(fileName: string, commonName: string, usage: 'server' | 'client', altNames: { ips?: string[]; dns?: string[] } = {}): IssuedCertificate {
    const keyFile = join(this.dir, `${fileName}.key`);
    const certFile = join(this.dir, `${fileName}.pem`);
    const csr = join(this.dir, `${fileName}.csr`);
    const ext = join(this.dir, `${fileName}.ext`);
    const san = [...(altNames.ips ?? []).map((ip) => `IP:${ip}`), ...(altNames.dns ?? []).map((d) => `DNS:${d}`)];
    writeFileSync(
      ext,
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        `extendedKeyUsage=${usage === 'server' ? 'serverAuth,clientAuth' : 'clientAuth'}`,
        ...(san.length > 0 ? [`subjectAltName=${san.join(',')}`] : []),
        '',
      ].join('\n'),
    );
    openssl(
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        csr,
        '-subj',
        `/O=zkwarden lab/CN=${commonName}`,
      ],
      `make a key for ${commonName}`,
    );
    chmodSync(keyFile, 0o600);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        this.certFile,
        '-CAkey',
        this.keyFile,
        '-set_serial',
        String(randomInt(1, 2 ** 47)),
        '-days',
        String(CERT_DAYS),
        '-extfile',
        ext,
        '-out',
        certFile,
      ],
      `sign the certificate of ${commonName}`,
    );
    rmSync(csr, { force: true });
    return { certFile, keyFile, x509Id: rfc2253(new X509Certificate(readFileSync(certFile)).subject) };
  }
}

export type SecureScheme = 'x509' | 'sasl';

export interface SecureLabOptions {
  /** Where the key material and the JAAS file go (made 0700). Default: a new temporary directory, removed by close(). */
  dir?: string;
  /** TLS on secureClientPort. `clientAuth`: 'need' (default: every TLS client presents a certificate), 'want' or 'none'. */
  tls?: boolean | { clientAuth?: 'need' | 'want' | 'none'; port?: number };
  /** SASL DIGEST-MD5 users (the JAAS Server section); each gets a random password. */
  saslUsers?: string[];
  /** Client certificates to issue, by common name (their x509 id is "CN=<name>,O=zkwarden lab"). */
  clientCertificates?: string[];
  /** Schemes a connection must have authenticated with (any one) before a request is served. Default: every enabled scheme; [] for none. */
  enforce?: SecureScheme[];
}

/** What a client needs for one identity on this lab's ensemble. */
export interface LabClientIdentity {
  tls?: TlsOptions;
  sasl?: { username: string; password: string };
}

/**
 * The key material, JAAS file and server configuration of a secured ensemble. `startEnsemble`
 * prepares an Ensemble with this configuration, issues each server a certificate for its own
 * address, starts the servers and waits for the quorum.
 */
export class SecureLab {
  readonly dir: string;
  readonly ca: CertificateAuthority | null;
  readonly jaasFile: string | null;
  readonly tlsPort: number;
  readonly clientAuth: 'need' | 'want' | 'none';
  readonly enforce: SecureScheme[];
  private readonly ownsDir: boolean;
  readonly #saslPasswords = new Map<string, string>();
  /** Passwords replaced by rotateSaslPassword: still secrets (a leak check looks for them too). */
  readonly #retiredPasswords: string[] = [];
  readonly #clients = new Map<string, IssuedCertificate>();
  readonly #servers = new Map<number, IssuedCertificate>();

  private constructor(options: SecureLabOptions) {
    this.ownsDir = options.dir === undefined;
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'zkwarden-secure-'));
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const tls = options.tls === true ? {} : options.tls || null;
    this.tlsPort = (tls && tls.port) || DEFAULT_SECURE_CLIENT_PORT;
    this.clientAuth = (tls && tls.clientAuth) || 'need';
    this.ca = tls ? CertificateAuthority.create(this.dir) : null;
    for (const name of options.clientCertificates ?? []) {
      if (!this.ca) throw new SecureLabError('client certificates need tls');
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
        throw new SecureLabError(`client certificate name ${JSON.stringify(name)}: expected letters, digits, . _ -`);
      this.#clients.set(name, this.ca.issue(`client-${name}`, name, 'client'));
    }
    const users = options.saslUsers ?? [];
    for (const u of users) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(u)) throw new SecureLabError(`SASL user ${JSON.stringify(u)}: expected letters, digits, . _ -`);
      // base64url has no character that JAAS's quoted values would need escaped.
      this.#saslPasswords.set(u, randomBytes(24).toString('base64url'));
    }
    this.jaasFile = users.length > 0 ? join(this.dir, 'jaas.conf') : null;
    this.writeJaas();
    const enabled: SecureScheme[] = [...(this.ca ? (['x509'] as const) : []), ...(users.length > 0 ? (['sasl'] as const) : [])];
    this.enforce = options.enforce ?? enabled;
    for (const s of this.enforce)
      if (!enabled.includes(s)) throw new SecureLabError(`enforce ${s}: that scheme is not enabled (${enabled.join(', ') || 'none'})`);
  }

  private writeJaas(): void {
    if (!this.jaasFile) return;
    const entries = [...this.#saslPasswords].map(([u, p]) => `  user_${u}="${p}"`).join('\n');
    writeSecret(this.jaasFile, `Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n${entries};\n};\n`);
  }

  /**
   * Gives a SASL user a new random password in the JAAS file and returns the new credentials.
   * Servers read the JAAS file when they start: the running ones keep accepting the old password
   * until they are restarted, then accept only the new one.
   */
  rotateSaslPassword(user: string): { username: string; password: string } {
    const old = this.saslCredentials(user).password;
    this.#retiredPasswords.push(old);
    this.#saslPasswords.set(user, randomBytes(24).toString('base64url'));
    this.writeJaas();
    return this.saslCredentials(user);
  }

  static create(options: SecureLabOptions = {}): SecureLab {
    if (!options.tls && !options.saslUsers?.length) throw new SecureLabError('a secure lab needs tls, saslUsers or both');
    return new SecureLab(options);
  }

  /** The Ensemble options for this configuration; merge them into the caller's. */
  ensembleOptions(): Pick<EnsembleOptions, 'extraConfig' | 'systemProperties' | 'serverConfig'> {
    const extraConfig: Record<string, string | number | boolean> = {
      serverCnxnFactory: 'org.apache.zookeeper.server.NettyServerCnxnFactory',
    };
    const systemProperties: Record<string, string | number | boolean> = {};
    if (this.ca) {
      Object.assign(extraConfig, {
        secureClientPort: this.tlsPort,
        'ssl.keyStore.type': 'PEM',
        'ssl.trustStore.type': 'PEM',
        'ssl.trustStore.location': this.ca.certFile,
        'ssl.clientAuth': this.clientAuth,
        'authProvider.x509': 'org.apache.zookeeper.server.auth.X509AuthenticationProvider',
      });
    }
    if (this.jaasFile) {
      extraConfig['authProvider.sasl'] = 'org.apache.zookeeper.server.auth.SASLAuthenticationProvider';
      // A path, not a secret; the JVM reads the file.
      systemProperties['java.security.auth.login.config'] = this.jaasFile;
    }
    if (this.enforce.length > 0) {
      extraConfig['enforce.auth.enabled'] = true;
      extraConfig['enforce.auth.schemes'] = this.enforce.join(',');
    }
    const serverConfig = this.ca
      ? (s: ServerInfo): Record<string, string> => ({ secureClientPortAddress: s.host, 'ssl.keyStore.location': this.serverKeyStore(s.id) })
      : undefined;
    return { extraConfig, systemProperties, ...(serverConfig ? { serverConfig } : {}) };
  }

  private serverKeyStore(id: number): string {
    return join(this.dir, `zk${id}.keystore.pem`);
  }

  /** Each server's certificate names its own address; its key store holds key, certificate and CA. */
  issueServerCertificates(servers: readonly ServerInfo[]): void {
    if (!this.ca) return;
    for (const s of servers) {
      const cert = this.ca.issue(`zk${s.id}`, `zk${s.id}`, 'server', { ips: [s.host], dns: [`zk${s.id}.zkwarden.test`, 'zookeeper.zkwarden.test'] });
      this.#servers.set(s.id, cert);
      writeSecret(this.serverKeyStore(s.id), readFileSync(cert.keyFile, 'utf8') + readFileSync(cert.certFile, 'utf8') + this.ca.certPem);
    }
  }

  /** Prepares the ensemble with this configuration, issues the server certificates, starts every server and waits for quorum. */
  async startEnsemble(options: EnsembleOptions = {}): Promise<Ensemble> {
    const own = this.ensembleOptions();
    const ens = await Ensemble.prepare({
      ...options,
      extraConfig: { ...own.extraConfig, ...(options.extraConfig ?? {}) },
      systemProperties: { ...own.systemProperties, ...(options.systemProperties ?? {}) },
      serverConfig: (s) => ({ ...(own.serverConfig?.(s) ?? {}), ...(options.serverConfig?.(s) ?? {}) }),
    });
    try {
      this.issueServerCertificates(ens.servers);
      const startTimeoutMs = options.startTimeoutMs ?? 60_000;
      await Promise.all(ens.servers.map((s) => ens.startServer(s.id, { waitMs: startTimeoutMs })));
      await ens.waitForQuorum({ timeoutMs: startTimeoutMs });
    } catch (err) {
      await ens.close().catch(() => undefined);
      throw err instanceof EnsembleError ? err : new SecureLabError(`secured ensemble did not start: ${(err as Error).message}`);
    }
    return ens;
  }

  /** host:securePort of every server (TLS); without TLS, the ensemble's plain connect string. */
  connectString(ens: Ensemble): string {
    if (!this.ca) return ens.connectString;
    return ens.servers.map((s) => `${s.host}:${this.tlsPort}`).join(',');
  }

  /** The CA certificate clients trust. */
  get caPem(): string {
    if (!this.ca) throw new SecureLabError('this lab has no TLS');
    return this.ca.certPem;
  }

  /** TLS options for a client: trust the lab's CA, present the named client certificate (if any). */
  clientTls(certificate?: string): TlsOptions {
    const tls: TlsOptions = { ca: this.caPem };
    if (certificate !== undefined) {
      const c = this.#clients.get(certificate);
      if (!c) throw new SecureLabError(`no client certificate ${certificate} (issued: ${[...this.#clients.keys()].join(', ') || 'none'})`);
      tls.cert = readFileSync(c.certFile, 'utf8');
      tls.key = readFileSync(c.keyFile, 'utf8');
    }
    return tls;
  }

  /** The x509 id ZooKeeper gives a session that presents this client certificate. */
  x509Id(certificate: string): string {
    const c = this.#clients.get(certificate);
    if (!c) throw new SecureLabError(`no client certificate ${certificate}`);
    return c.x509Id;
  }

  saslCredentials(user: string): { username: string; password: string } {
    const password = this.#saslPasswords.get(user);
    if (password === undefined) throw new SecureLabError(`no SASL user ${user} (users: ${[...this.#saslPasswords.keys()].join(', ') || 'none'})`);
    return { username: user, password };
  }

  /**
   * The files that necessarily hold secrets (private keys, key stores, the JAAS file), by path:
   * what a leak check must skip, and nothing else.
   */
  secretFiles(): string[] {
    const out: string[] = [];
    if (this.ca) out.push(join(this.dir, `${this.ca.name}-ca.key`));
    for (const c of [...this.#clients.values(), ...this.#servers.values()]) out.push(c.keyFile);
    for (const id of this.#servers.keys()) out.push(this.serverKeyStore(id));
    if (this.jaasFile) out.push(this.jaasFile);
    return out;
  }

  /** Every secret this lab made, for leak checks: the SASL passwords (retired ones too) and each private key's PEM text. */
  secretValues(): { kind: 'password' | 'privateKey'; value: string }[] {
    const out: { kind: 'password' | 'privateKey'; value: string }[] = [...this.#saslPasswords.values(), ...this.#retiredPasswords].map((value) => ({
      kind: 'password',
      value,
    }));
    for (const f of this.secretFiles()) {
      if (f === this.jaasFile || f.endsWith('.keystore.pem')) continue;
      out.push({ kind: 'privateKey', value: readFileSync(f, 'utf8') });
    }
    return out;
  }

  /** Removes the directory if this lab made it. */
  close(): void {
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
