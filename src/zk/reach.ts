/**
 * Fail fast before a session: is `host:port` there at all? An unresolvable name or a refused
 * port is known at once and needs no session timeout; a host that does not answer (a paused
 * server, a dropped route) costs one connect timeout, and the caller then skips it instead of
 * paying a second, longer timeout inside the client. Shared by the commands that talk to live
 * servers (`audit --servers`, `leader`, `members`).
 */
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';

export type Reach =
  | { ok: true; address: string; ms: number }
  | { ok: false; address: string; reason: 'unresolvable' | 'refused' | 'timeout' | 'bad-address' | 'error'; message: string };

export function splitHostPort(address: string, defaultPort = 2181): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
  if (!m || !m[1]) return null;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1], port };
}

/** One TCP connect to `address` (host:port), bounded by `timeoutMs`; the name resolved first. */
export async function probe(address: string, timeoutMs: number): Promise<Reach> {
  const hp = splitHostPort(address);
  if (!hp) return { ok: false, address, reason: 'bad-address', message: `${address}: expected host:port` };
  const t0 = performance.now();
  let ip: string;
  try {
    ip = (await lookup(hp.host)).address;
  } catch (e) {
    return { ok: false, address, reason: 'unresolvable', message: `${address}: cannot resolve ${hp.host} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
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
    sock.once('error', (e: NodeJS.ErrnoException) => done({
      ok: false, address, reason: e.code === 'ECONNREFUSED' ? 'refused' : 'error',
      message: `${address}: ${e.code === 'ECONNREFUSED' ? 'connection refused' : e.code ?? e.message}`,
    }));
  });
}

/** Probes every address at once; the unreachable ones, each with its one-line reason. */
export async function probeAll(addresses: string[], timeoutMs: number): Promise<Reach[]> {
  return await Promise.all(addresses.map((a) => probe(a, timeoutMs)));
}
