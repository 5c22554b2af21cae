/**
 * The admin interface to servers, spoken before or beside a session: reachability (`probe`,
 * `probeAll`), ZooKeeper's four-letter words (one TCP connection per word; the server answers
 * and closes) and the one parser of the answers zkwarden reads: `srvr`, `mntr`, `dump`, `cons`.
 * The lab's harness, the online audit and the forensics' saved captures all read these texts, so
 * they are read by one set of rules here:
 *
 * - lines end with `\n`, a trailing `\r` (a capture saved on another system) is dropped;
 * - `srvr` is `Key: value` lines, split at the first colon, value trimmed; a server that is not
 *   serving (`This ZooKeeper instance is not currently serving requests`, e.g. during an election)
 *   or an answer without `Mode` and `Zxid` is "not serving";
 * - `mntr` is `key<TAB>value` lines, split at the first tab, both trimmed;
 * - `dump` has three sections. The SessionTracker's (before `ephemeral nodes dump:`) names every
 *   session this server tracks; `Sessions with Ephemerals` lists `0x<id>:` lines each followed by
 *   its indented paths, up to the next unindented line (`Connections dump:` ends the section);
 * - `cons` is one ` /address[interestOps](k=v,...)` line per connection.
 *
 * Texts checked against Debian's ZooKeeper 3.8.0 (test/zk/fixtures/four-letter).
 */
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';
import { splitHostPort } from './paths.ts';
import { PreparedTls, openTransport, type TlsOptions } from './transport.ts';

// ---------------------------------------------------------------------------------------------
// reachability

/**
 * How one TCP connect to a server ended. Commands that talk to live servers (`audit --servers`,
 * `leader`, `members`) probe first, to fail fast before a session: an unresolvable name or a
 * refused port is known at once and needs no session timeout; a host that does not answer (a
 * paused server, a dropped route) costs one connect timeout, and the caller then leaves it out
 * instead of paying a second, longer timeout inside the client.
 */
export type Reach =
  | { ok: true; address: string; ms: number }
  | { ok: false; address: string; reason: 'unresolvable' | 'refused' | 'timeout' | 'bad-address' | 'error'; message: string };

/** One TCP connect to `address` (host:port by the connect string's rules), the name resolved first, bounded by `timeoutMs`. */
export async function probe(address: string, timeoutMs: number): Promise<Reach> {
  const hp = splitHostPort(address);
  if (!hp) return { ok: false, address, reason: 'bad-address', message: `${address}: expected host:port` };
  const t0 = performance.now();
  let ip: string;
  try {
    ip = (await lookup(hp.host)).address;
  } catch (e) {
    return {
      ok: false,
      address,
      reason: 'unresolvable',
      message: `${address}: cannot resolve ${hp.host} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    };
  }
  return await new Promise<Reach>((resolve) => {
    const sock = connect({ host: ip, port: hp.port });
    const done = (r: Reach): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, address, reason: 'timeout', message: `${address}: no answer within ${timeoutMs} ms` }), timeoutMs);
    sock.once('connect', () => done({ ok: true, address, ms: performance.now() - t0 }));
    sock.once('error', (e: NodeJS.ErrnoException) =>
      done({
        ok: false,
        address,
        reason: e.code === 'ECONNREFUSED' ? 'refused' : 'error',
        message: `${address}: ${e.code === 'ECONNREFUSED' ? 'connection refused' : (e.code ?? e.message)}`,
      }),
    );
  });
}

/** Probes every address at once; each result in the order given, the unreachable ones with their one-line reason. */
export async function probeAll(addresses: string[], timeoutMs: number): Promise<Reach[]> {
  return await Promise.all(addresses.map((a) => probe(a, timeoutMs)));
}

// ---------------------------------------------------------------------------------------------
// four-letter words

export class FourLetterError extends Error {
  readonly address: string;
  readonly command: string;
  constructor(address: string, command: string, reason: string) {
    super(`four-letter word '${command}' to ${address} failed: ${reason}`);
    this.name = 'FourLetterError';
    this.address = address;
    this.command = command;
  }
}

/** Sends one four-letter word and resolves with everything the server wrote before closing. */
/** `tls`: over a secureClientPort (the Netty factory answers four-letter words there too). */
export function fourLetterWord(host: string, port: number, command: string, timeoutMs = 3000, tlsOptions?: TlsOptions | PreparedTls): Promise<string> {
  const address = `${host}:${port}`;
  if (!/^[a-z]{4}$/.test(command)) {
    return Promise.reject(new FourLetterError(address, command, 'a four-letter word is four lowercase letters'));
  }
  let tls: PreparedTls | undefined;
  try {
    tls = tlsOptions === undefined || tlsOptions instanceof PreparedTls ? tlsOptions : new PreparedTls(tlsOptions);
  } catch (e) {
    return Promise.reject(e as Error);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    // end(), not write(): over TLS the server answers once the client's side is closed.
    const socket = openTransport({ host, port, tls }, () => socket.end(command));
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(() => finish(new FourLetterError(address, command, `no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(null));
    socket.on('error', (e: NodeJS.ErrnoException) => finish(new FourLetterError(address, command, e.code ?? e.message)));
  });
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** What a server answers to every word while it is not part of a serving quorum. */
export function isNotServing(text: string): boolean {
  return text.includes('not currently serving requests');
}

// ---------------------------------------------------------------------------------------------
// srvr

/** Every field a `srvr` answer had; a saved capture may be partial. */
export interface SrvrFields {
  /** The release, without the build text (`3.8.0-abc` of `3.8.0-abc, built on ...`). */
  version?: string;
  latency?: { min: number; avg: number; max: number };
  received?: number;
  sent?: number;
  connections?: number;
  outstanding?: number;
  /** Last processed zxid, as written (`0x100000003`). */
  zxidHex?: string;
  mode?: string;
  nodeCount?: number;
}

const SRVR_COUNTS: Record<string, 'received' | 'sent' | 'connections' | 'outstanding' | 'nodeCount'> = {
  Received: 'received',
  Sent: 'sent',
  Connections: 'connections',
  Outstanding: 'outstanding',
  'Node count': 'nodeCount',
};

export function srvrFields(text: string): SrvrFields {
  const out: SrvrFields = {};
  for (const line of lines(text)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const count = SRVR_COUNTS[key];
    if (count) {
      out[count] = Number(value);
    } else if (key === 'Zookeeper version') {
      out.version = value.split(',')[0]!.trim();
    } else if (key === 'Latency min/avg/max') {
      const [min, avg, max] = value.split('/').map(Number);
      if ([min, avg, max].every((n) => Number.isFinite(n))) out.latency = { min: min!, avg: avg!, max: max! };
    } else if (key === 'Zxid') {
      if (/^0x[0-9a-fA-F]+$/.test(value)) out.zxidHex = value;
    } else if (key === 'Mode') {
      if (value !== '') out.mode = value.split(/\s/)[0];
    }
  }
  return out;
}

export interface SrvrInfo {
  version: string;
  mode: 'leader' | 'follower' | 'observer' | 'standalone' | 'read-only' | string;
  /** Last processed zxid of this server. */
  zxid: number;
  nodeCount: number;
  connections: number;
  outstanding: number;
  raw: string;
}

/** A serving server's `srvr`; null when it is not serving (an election, no quorum) or the text is not a `srvr` answer. */
export function parseSrvr(text: string): SrvrInfo | null {
  if (isNotServing(text)) return null;
  const f = srvrFields(text);
  if (f.mode === undefined || f.zxidHex === undefined) return null;
  return {
    version: f.version ?? '',
    mode: f.mode,
    zxid: Number.parseInt(f.zxidHex, 16),
    nodeCount: f.nodeCount ?? 0,
    connections: f.connections ?? 0,
    outstanding: f.outstanding ?? 0,
    raw: text,
  };
}

// ---------------------------------------------------------------------------------------------
// mntr

/** `mntr`: every `key<TAB>value` line (zk_server_state, zk_znode_count, zk_ephemerals_count, ...). */
export function parseMntr(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines(text)) {
    const tab = line.indexOf('\t');
    if (tab > 0) out[line.slice(0, tab).trim()] = line.slice(tab + 1).trim();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// dump

export interface DumpInfo {
  /** Ephemeral paths per owning session, as this server's own tree has them. */
  ephemerals: Map<bigint, string[]>;
  /** Sessions in the server's SessionTracker dump (the leader lists every global session). */
  sessions: Set<bigint>;
  raw: string;
}

export function parseDump(text: string): DumpInfo {
  const ephemerals = new Map<bigint, string[]>();
  const sessions = new Set<bigint>();
  const all = lines(text);
  const ephemeralStart = all.findIndex((l) => l.startsWith('ephemeral nodes dump:'));
  if (ephemeralStart >= 0) {
    for (const line of all.slice(0, ephemeralStart)) for (const m of line.matchAll(/0x[0-9a-fA-F]+/g)) sessions.add(BigInt(m[0]));
  }
  const listStart = all.findIndex((l) => l.startsWith('Sessions with Ephemerals'));
  if (listStart >= 0) {
    let current: string[] | null = null;
    for (const line of all.slice(listStart + 1)) {
      if (line.startsWith('Connections dump:')) break;
      const indented = line.startsWith('\t') || line.startsWith(' ');
      const t = line.trim();
      if (t === '') continue;
      const session = /^(0x[0-9a-fA-F]+):?$/.exec(t);
      if (session && !indented) {
        current = [];
        ephemerals.set(BigInt(session[1]!), current);
      } else if (indented && current !== null && t.startsWith('/')) {
        current.push(t);
      } else if (!indented) {
        current = null;
      }
    }
  }
  return { ephemerals, sessions, raw: text };
}

// ---------------------------------------------------------------------------------------------
// cons

export interface ConsEntry {
  /** The client's address as the server sees it (`127.0.0.1:51562`). */
  address: string;
  /** The selector's interest ops (0 while a connection is not set up). */
  interestOps: number;
  /** Present once the connection has a session. */
  sessionId?: bigint;
  /** Every `k=v` of the line as written: queued, recved, sent, sid, lop, est, to, lcxid, lzxid, lresp, llat, minlat, avglat, maxlat. */
  fields: Record<string, string>;
}

export function parseCons(text: string): ConsEntry[] {
  const out: ConsEntry[] = [];
  for (const line of lines(text)) {
    const m = /^\s*\/(.+?)\[(\d+)\]\((.*)\)\s*$/.exec(line);
    if (!m) continue;
    const fields: Record<string, string> = {};
    for (const kv of m[3]!.split(',')) {
      const eq = kv.indexOf('=');
      if (eq > 0) fields[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
    }
    const entry: ConsEntry = { address: m[1]!, interestOps: Number(m[2]), fields };
    if (fields.sid && /^0x[0-9a-fA-F]+$/.test(fields.sid)) entry.sessionId = BigInt(fields.sid);
    out.push(entry);
  }
  return out;
}
