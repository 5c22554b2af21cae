/**
 * The byte stream under a ZooKeeper connection: plain TCP, or TLS to a server's secureClientPort
 * (ZooKeeper's Netty connection factory).
 *
 * TLS here always verifies the server's certificate chain against the CA the caller names (there
 * is no switch to turn that off) and, by default, that the certificate names the server: the host
 * of the connect string (an IP address is matched against the certificate's IP subject
 * alternative names), or `serverName` when the servers share one name. A client certificate and
 * key make the server attach an `x509` identity to the session (X509AuthenticationProvider maps
 * the certificate's subject, RFC 2253 form, to the id), which ACLs can name.
 *
 * PEM material is checked once, when the options are prepared, and kept only inside Node's
 * native secure context: the private key is not held in any JavaScript field a log line or
 * util.inspect could print.
 */
import { createConnection, isIP, type Socket } from 'node:net';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { checkServerIdentity, connect as tlsConnect, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { InvalidArgumentError } from './errors.ts';

export interface TlsOptions {
  /** PEM: the certificate(s) of the CA that signed the servers' certificates. Required. */
  ca: string | Buffer;
  /** PEM: the client certificate (chain), for the x509 scheme. Needs `key`. */
  cert?: string | Buffer;
  /** PEM: the client certificate's private key (unencrypted PKCS#8, PKCS#1 or SEC1). */
  key?: string | Buffer;
  /** The name every server's certificate must carry, instead of the host of the connect string. */
  serverName?: string;
  /** Check that the certificate names the server (default true). The chain is always checked. */
  checkServerName?: boolean;
  /** Lowest TLS version accepted; ZooKeeper 3.8 speaks TLSv1.2 unless configured otherwise. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** Validated TLS settings, shared by every connection of a client (reconnects keep TLS). */
export class PreparedTls {
  readonly #context: SecureContext;
  readonly serverName: string | undefined;
  readonly checkServerName: boolean;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** Subject of the client certificate, in the RFC 2253 form ZooKeeper uses as the x509 id. */
  readonly clientSubject: string | undefined;

  constructor(options: TlsOptions, argument = 'tls') {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError(argument, 'expected an object with at least { ca }');
    const ca = pemArgument(options.ca, `${argument}.ca`);
    const caCerts = splitCertificates(ca, `${argument}.ca`);
    if ((options.cert === undefined) !== (options.key === undefined)) {
      throw new InvalidArgumentError(options.cert === undefined ? `${argument}.cert` : `${argument}.key`, 'a client certificate needs both cert and key');
    }
    let cert: string | undefined;
    let key: string | undefined;
    if (options.cert !== undefined && options.key !== undefined) {
      cert = pemArgument(options.cert, `${argument}.cert`);
      key = pemArgument(options.key, `${argument}.key`);
      const leaf = splitCertificates(cert, `${argument}.cert`)[0]!;
      let privateKey;
      try {
        privateKey = createPrivateKey(key);
      } catch (e) {
        // Node's message names the format problem, never the key's bytes.
        throw new InvalidArgumentError(`${argument}.key`, `expected an unencrypted PEM private key (${(e as Error).message})`);
      }
      if (!leaf.checkPrivateKey(privateKey)) throw new InvalidArgumentError(`${argument}.key`, 'the key does not belong to the certificate in cert');
      this.clientSubject = rfc2253(leaf.subject);
    }
    if (options.serverName !== undefined && (typeof options.serverName !== 'string' || options.serverName === '')) {
      throw new InvalidArgumentError(`${argument}.serverName`, 'expected a non-empty host name or IP address');
    }
    const minVersion = options.minVersion ?? 'TLSv1.2';
    if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3')
      throw new InvalidArgumentError(`${argument}.minVersion`, `expected TLSv1.2 or TLSv1.3, got ${String(minVersion)}`);
    this.serverName = options.serverName;
    this.checkServerName = options.checkServerName ?? true;
    this.minVersion = minVersion;
    try {
      this.#context = createSecureContext({ ca: caCerts.map((c) => c.toString()), cert, key, minVersion });
    } catch (e) {
      throw new InvalidArgumentError(argument, `the PEM material is not usable for TLS (${(e as Error).message})`);
    }
  }

  /** @internal the native context; only the transport uses it. */
  get secureContext(): SecureContext {
    return this.#context;
  }
}

function pemArgument(v: unknown, argument: string): string {
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (typeof v === 'string') return v;
  throw new InvalidArgumentError(argument, 'expected PEM text (a string or Buffer)');
}

function splitCertificates(pem: string, argument: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new InvalidArgumentError(argument, 'expected at least one PEM "BEGIN CERTIFICATE" block');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new InvalidArgumentError(argument, `certificate ${i + 1} is not a valid X.509 certificate (${(e as Error).message})`);
    }
  });
}

/**
 * Node prints a subject one attribute per line, most general first ("O=lab\nCN=alice"); Java's
 * X500Principal.getName() (what ZooKeeper's x509 id is) is RFC 2253: most specific first, comma
 * separated, with , + " \ < > ; escaped.
 */
export function rfc2253(nodeSubject: string): string {
  return nodeSubject
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .map((l) => {
      const eq = l.indexOf('=');
      const value = l
        .slice(eq + 1)
        .replace(/([,+"\\<>;])/g, '\\$1')
        .replace(/^([ #])/, '\\$1')
        .replace(/ $/, '\\ ');
      return `${l.slice(0, eq)}=${value}`;
    })
    .join(',');
}

export interface TransportTarget {
  host: string;
  port: number;
  tls?: PreparedTls;
}

/** Node's `onread`: every read into one caller-owned buffer, no 'data' events. */
export interface ReadInto {
  buffer: Buffer;
  callback: (nread: number, buffer: Buffer) => boolean;
}

/**
 * Opens the stream to one server. `onReady` runs once bytes can flow: after the TCP connect for
 * plain, after a verified TLS handshake for TLS. Failures (refused, certificate rejected, name
 * mismatch) arrive as the socket's 'error' event, so callers handle both kinds the same way.
 * `onread` applies to plain TCP only (a TLS socket still emits 'data').
 */
export function openTransport(target: TransportTarget, onReady: () => void, onread?: ReadInto): Socket {
  const { host, port, tls } = target;
  if (!tls) {
    // createConnection hands onread to the socket's constructor (Socket#connect ignores it).
    return createConnection({ host, port, onread }, onReady);
  }
  const expected = tls.serverName ?? host;
  return tlsConnect(
    {
      host,
      port,
      secureContext: tls.secureContext,
      minVersion: tls.minVersion,
      // SNI carries host names only (RFC 6066); an IP is still checked against the certificate.
      servername: isIP(expected) ? undefined : expected,
      rejectUnauthorized: true,
      checkServerIdentity: tls.checkServerName ? (_host: string, cert: PeerCertificate) => checkServerIdentity(expected, cert) : () => undefined,
    },
    onReady,
  );
}

/**
 * One line for a socket error, TLS ones said plainly: OpenSSL's own message is a multi-line
 * dump of internal locations, and a "bad certificate" alert from the server means it refused
 * this client's certificate (or that it sent none while the server requires one).
 */
export function describeTransportError(e: NodeJS.ErrnoException & { reason?: string }): string {
  const code = e.code ?? '';
  if (code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' || code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return 'TLS: the server refused the client certificate (none given, or not signed by a CA it trusts)';
  }
  if (code.startsWith('ERR_SSL_')) return `TLS: ${e.reason ?? code}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS: the server's certificate does not name it (${e.reason ?? e.message})`;
  // Chain verification failures carry OpenSSL's verify codes (SELF_SIGNED_CERT_IN_CHAIN, ...).
  if (/CERT|SIGNATURE|ISSUER/.test(code)) return `TLS: the server's certificate is not trusted: ${e.message} (${code})`;
  return e.message.split('\n')[0]!;
}
