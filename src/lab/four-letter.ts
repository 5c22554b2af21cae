/**
 * ZooKeeper's four-letter words over a plain TCP connection, and parsers for the answers the
 * harness and the audit need. The server closes the connection after answering, so the answer
 * is everything read until close; a deadline bounds the whole exchange.
 */
import { openTransport, type PreparedTls } from '../zk/transport.ts';

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

/** `tls`: over a secureClientPort (the Netty factory answers four-letter words there too). */
export function fourLetterWord(host: string, port: number, command: string, timeoutMs = 3000, tls?: PreparedTls): Promise<string> {
  const address = `${host}:${port}`;
  if (!/^[a-z]{4}$/.test(command)) {
    return Promise.reject(new FourLetterError(address, command, 'a four-letter word is four lowercase letters'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    // end(), not write(): over TLS the server answers once the client's side is closed.
    const socket = openTransport({ host, port, tls }, () => socket.end(command));
    const finish = (err: Error | null) => {
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

export function parseSrvr(text: string): SrvrInfo | null {
  if (text.includes('not currently serving requests')) return null;
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const mode = field('Mode');
  const zxid = field('Zxid');
  if (mode === undefined || zxid === undefined) return null;
  return {
    version: field('Zookeeper version') ?? '',
    mode,
    zxid: Number.parseInt(zxid, 16),
    nodeCount: Number(field('Node count') ?? 0),
    connections: Number(field('Connections') ?? 0),
    outstanding: Number(field('Outstanding') ?? 0),
    raw: text,
  };
}

/** `mntr` is tab-separated key/value lines. */
export function parseMntr(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out[line.slice(0, tab).trim()] = line.slice(tab + 1).trim();
  }
  return out;
}

export interface DumpInfo {
  /** Ephemeral paths per owning session, as this server's own tree has them. */
  ephemerals: Map<bigint, string[]>;
  raw: string;
}

/** `dump` on any server lists the ephemerals of its own tree under "Sessions with Ephemerals". */
export function parseDump(text: string): DumpInfo {
  const ephemerals = new Map<bigint, string[]>();
  const start = text.indexOf('Sessions with Ephemerals');
  if (start >= 0) {
    let current: bigint | null = null;
    for (const line of text.slice(start).split('\n').slice(1)) {
      const session = /^(0x[0-9a-fA-F]+):?\s*$/.exec(line.trim());
      if (session) {
        current = BigInt(session[1]!);
        ephemerals.set(current, []);
      } else if (current !== null && line.trim().startsWith('/')) {
        ephemerals.get(current)!.push(line.trim());
      } else if (line.trim() !== '' && !line.startsWith('\t') && !line.startsWith(' ')) {
        if (!/^0x/.test(line.trim())) current = null;
      }
    }
  }
  return { ephemerals, raw: text };
}
