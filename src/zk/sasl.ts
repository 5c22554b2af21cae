/**
 * The DIGEST-MD5 SASL client mechanism (RFC 2831), as ZooKeeper's server speaks it through Java's
 * SASL: protocol "zookeeper", server name and realm "zk-sasl-md5", quality of protection "auth"
 * (authentication only: ZooKeeper neither asks for nor supports integrity or confidentiality
 * layers; TLS is what protects the stream).
 *
 * Pure: no socket, no clock. The exchange is two challenges: the server's digest-challenge (the
 * answer to our empty initial token), to which we send a digest-response, and the server's
 * rspauth, which proves the server knows the password too. We refuse to call the exchange
 * complete without it, so a server that does not know the credential cannot pass as one.
 *
 * Secrets (the password and every value derived from it) live in #private fields, which neither
 * util.inspect nor JSON.stringify show, and never appear in an error message.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from './errors.ts';

/** What ZooKeeper's server (ZooKeeperSaslServer, SecurityUtils) creates its DIGEST-MD5 server with. */
export const ZOOKEEPER_SASL_PROTOCOL = 'zookeeper';
export const ZOOKEEPER_SASL_SERVER_NAME = 'zk-sasl-md5';

/** RFC 2831 2.1.1: a digest-challenge is at most 2048 bytes; 2.1.3 bounds the rspauth message the same way. */
const MAX_CHALLENGE_BYTES = 2048;

export class SaslMechanismError extends Error {
  constructor(message: string) {
    super(`DIGEST-MD5: ${message}`);
    this.name = 'SaslMechanismError';
  }
}

export interface DigestMd5Credentials {
  username: string;
  password: string | Buffer;
  /** Authorization id (act as another identity); ZooKeeper's server uses the authentication id when absent. */
  authzid?: string;
}

export interface DigestMd5Options {
  protocol?: string;
  serverName?: string;
  /** Test vectors only: the client nonce is otherwise 24 random bytes. */
  cnonce?: string;
}

/** The SASL mechanism contract zkwarden's wire layer drives (sasl-wire.ts). */
export interface SaslMechanism {
  readonly name: string;
  /** The first token to send; DIGEST-MD5 has no initial response, so it is empty. */
  initialResponse(): Buffer;
  /** The next token to send for a server token, or null when there is nothing more to send. */
  evaluateChallenge(challenge: Buffer): Buffer | null;
  readonly isComplete: boolean;
}

type Directives = Map<string, string[]>;

/**
 * Parses a directive list (RFC 2831 7.1: `#` rule): `name=value` separated by commas, values
 * tokens or quoted strings with backslash escapes, linear white space anywhere between elements,
 * empty elements allowed. Names are case-insensitive.
 */
export function parseDirectives(text: string): Directives {
  const out: Directives = new Map();
  let i = 0;
  const n = text.length;
  const isLws = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  const skipLws = (): void => {
    while (i < n && isLws(text[i]!)) i++;
  };
  while (i < n) {
    skipLws();
    if (i >= n) break;
    if (text[i] === ',') {
      i++;
      continue;
    }
    const nameStart = i;
    while (i < n && text[i] !== '=' && text[i] !== ',' && !isLws(text[i]!)) i++;
    const name = text.slice(nameStart, i).toLowerCase();
    if (name === '') throw new SaslMechanismError(`empty directive name at offset ${nameStart}`);
    skipLws();
    if (text[i] !== '=') throw new SaslMechanismError(`directive "${name}" at offset ${nameStart}: expected "=" at offset ${i}`);
    i++;
    skipLws();
    let value = '';
    if (text[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i]!;
        if (c === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw new SaslMechanismError(`directive "${name}": unterminated quoted string`);
    } else {
      const start = i;
      while (i < n && text[i] !== ',' && !isLws(text[i]!)) i++;
      value = text.slice(start, i);
    }
    skipLws();
    if (i < n && text[i] !== ',') throw new SaslMechanismError(`directive "${name}": expected "," at offset ${i}`);
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  }
  return out;
}

/** A quoted-string with " and \ escaped (RFC 2831 7.2). */
function quote(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}

/**
 * RFC 2831 2.1.2.1: with charset=utf-8, a string whose characters all fit ISO 8859-1 is hashed in
 * ISO 8859-1 (Java's DigestMD5Base does the same), otherwise in UTF-8. Without charset=utf-8 the
 * string must fit ISO 8859-1.
 */
function hashBytes(s: string | Buffer, utf8: boolean, what: string): Buffer {
  if (Buffer.isBuffer(s)) return s;
  let latin1 = true;
  for (const ch of s) {
    if (ch.codePointAt(0)! > 0xff) {
      latin1 = false;
      break;
    }
  }
  if (latin1) return Buffer.from(s, 'latin1');
  if (!utf8) throw new SaslMechanismError(`the ${what} has characters outside ISO 8859-1 and the server did not offer charset=utf-8`);
  return Buffer.from(s, 'utf8');
}

const md5 = (...parts: (string | Buffer)[]): Buffer => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hex = (b: Buffer): string => b.toString('hex');

export class DigestMd5Client implements SaslMechanism {
  readonly name = 'DIGEST-MD5';
  readonly #username: string;
  readonly #password: string | Buffer;
  readonly #authzid: string | undefined;
  readonly #digestUri: string;
  readonly #cnonce: string;
  /** HEX(H(A1)) of this exchange, kept to check the server's rspauth. */
  #ha1 = '';
  #expectedRspauth = '';
  #step: 'initial' | 'challenged' | 'complete' | 'failed' = 'initial';

  constructor(credentials: DigestMd5Credentials, options: DigestMd5Options = {}) {
    if (credentials === null || typeof credentials !== 'object') throw new InvalidArgumentError('sasl', 'expected { username, password }');
    if (typeof credentials.username !== 'string' || credentials.username === '')
      throw new InvalidArgumentError('sasl.username', 'a non-empty string is needed');
    if (typeof credentials.password !== 'string' && !Buffer.isBuffer(credentials.password)) {
      throw new InvalidArgumentError('sasl.password', 'a string or a Buffer is needed');
    }
    if (credentials.authzid !== undefined && typeof credentials.authzid !== 'string') throw new InvalidArgumentError('sasl.authzid', 'a string is needed');
    this.#username = credentials.username;
    this.#password = Buffer.isBuffer(credentials.password) ? Buffer.from(credentials.password) : credentials.password;
    this.#authzid = credentials.authzid;
    this.#digestUri = `${options.protocol ?? ZOOKEEPER_SASL_PROTOCOL}/${options.serverName ?? ZOOKEEPER_SASL_SERVER_NAME}`;
    this.#cnonce = options.cnonce ?? randomBytes(24).toString('base64');
  }

  get isComplete(): boolean {
    return this.#step === 'complete';
  }

  initialResponse(): Buffer {
    return Buffer.alloc(0);
  }

  evaluateChallenge(challenge: Buffer): Buffer | null {
    try {
      switch (this.#step) {
        case 'initial':
          this.#step = 'challenged';
          return this.respond(challenge);
        case 'challenged':
          this.verifyRspauth(challenge);
          this.#step = 'complete';
          return null;
        default:
          throw new SaslMechanismError(`no further challenge expected (exchange ${this.#step})`);
      }
    } catch (e) {
      this.#step = 'failed';
      throw e;
    }
  }

  /** 2.1.2: the digest-response to the server's digest-challenge. */
  private respond(challenge: Buffer): Buffer {
    if (challenge.length === 0) throw new SaslMechanismError('the server sent an empty digest-challenge');
    if (challenge.length > MAX_CHALLENGE_BYTES) throw new SaslMechanismError(`digest-challenge of ${challenge.length} bytes, more than ${MAX_CHALLENGE_BYTES}`);
    const d = parseDirectives(challenge.toString('utf8'));
    const one = (name: string): string | undefined => {
      const v = d.get(name);
      if (v && v.length > 1) throw new SaslMechanismError(`digest-challenge has ${v.length} "${name}" directives, at most one allowed`);
      return v?.[0];
    };
    const nonce = one('nonce');
    if (!nonce) throw new SaslMechanismError('digest-challenge has no nonce');
    const algorithm = one('algorithm');
    if (algorithm?.toLowerCase() !== 'md5-sess') throw new SaslMechanismError(`digest-challenge algorithm is ${algorithm ?? 'missing'}, expected md5-sess`);
    const qops = (one('qop') ?? 'auth').split(',').map((q) => q.trim().toLowerCase());
    if (!qops.includes('auth')) throw new SaslMechanismError(`the server offers qop ${qops.join(',')}, not auth`);
    const charset = one('charset');
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8') throw new SaslMechanismError(`digest-challenge charset is ${charset}, expected utf-8`);
    const utf8 = charset !== undefined;
    // The server may name several realms; ZooKeeper's names one ("zk-sasl-md5"). Without one the
    // realm in A1 is the empty string and none is sent (2.1.2).
    const realm = d.get('realm')?.[0];

    const userBytes = hashBytes(this.#username, utf8, 'username');
    const realmBytes = hashBytes(realm ?? '', utf8, 'realm');
    const passBytes = hashBytes(this.#password, utf8, 'password');
    const nc = '00000001';
    const a1Parts: (string | Buffer)[] = [md5(userBytes, ':', realmBytes, ':', passBytes), `:${nonce}:${this.#cnonce}`];
    if (this.#authzid !== undefined) a1Parts.push(':', Buffer.from(this.#authzid, utf8 ? 'utf8' : 'latin1'));
    this.#ha1 = hex(md5(...a1Parts));
    const kd = (a2: string): string => hex(md5(`${this.#ha1}:${nonce}:${nc}:${this.#cnonce}:auth:`, hex(md5(a2))));
    const response = kd(`AUTHENTICATE:${this.#digestUri}`);
    this.#expectedRspauth = kd(`:${this.#digestUri}`);

    const parts: string[] = [];
    if (utf8) parts.push('charset=utf-8');
    parts.push(`username=${quote(this.#username)}`);
    if (realm !== undefined) parts.push(`realm=${quote(realm)}`);
    parts.push(`nonce=${quote(nonce)}`, `nc=${nc}`, `cnonce=${quote(this.#cnonce)}`, `digest-uri=${quote(this.#digestUri)}`);
    parts.push(`maxbuf=65536`, `response=${response}`, 'qop=auth');
    if (this.#authzid !== undefined) parts.push(`authzid=${quote(this.#authzid)}`);
    return Buffer.from(parts.join(','), utf8 ? 'utf8' : 'latin1');
  }

  /** 2.1.3: the server proves it knows the password; a wrong or missing rspauth fails the exchange. */
  private verifyRspauth(message: Buffer): void {
    if (message.length > MAX_CHALLENGE_BYTES) throw new SaslMechanismError(`response-auth of ${message.length} bytes, more than ${MAX_CHALLENGE_BYTES}`);
    const rspauth = parseDirectives(message.toString('utf8')).get('rspauth');
    if (!rspauth || rspauth.length !== 1) throw new SaslMechanismError('the server sent no rspauth: it did not prove it knows the credential');
    const got = Buffer.from(rspauth[0]!.toLowerCase(), 'latin1');
    const want = Buffer.from(this.#expectedRspauth, 'latin1');
    this.#ha1 = '';
    this.#expectedRspauth = '';
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new SaslMechanismError("the server's rspauth does not match: it does not know the credential (or the exchange was tampered with)");
    }
  }
}

/**
 * Checks the credential once and returns a factory of fresh mechanisms (one per connection).
 * The credential is copied into the closure, so a caller that later wipes its Buffer does not
 * break reconnects, and nothing inspectable holds it.
 */
export function digestMd5Factory(credentials: DigestMd5Credentials, options: DigestMd5Options = {}): () => SaslMechanism {
  new DigestMd5Client(credentials, options);
  const copy: DigestMd5Credentials = {
    username: credentials.username,
    password: Buffer.isBuffer(credentials.password) ? Buffer.from(credentials.password) : credentials.password,
  };
  if (credentials.authzid !== undefined) copy.authzid = credentials.authzid;
  return () => new DigestMd5Client(copy, options);
}
