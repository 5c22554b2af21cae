/**
 * The online audit: each server is read alone (a client connected to that one address), with
 * the zxid it served at before and after the read (`srvr`), its ephemerals per session
 * (`dump`), its digest figures (`mntr`, and the digest history of `hash` on 3.6+).
 *
 * Live trees are comparable only when they were read at one zxid: a tree read while the zxid
 * moved, or at another zxid than the others', can differ without any divergence (that is the
 * seed incident's question). Then the audit says so, and falls back on what is comparable
 * anyway: the servers' own tree digests at zxids they have in common.
 */
// The one module of forensics that opens sessions: it reads live servers through zk's public
// API, as a service would (docs/architecture.md, "Layers and boundaries").
import {
  createClient,
  fourLetterWord,
  NoNodeError,
  parseDump,
  parseMntr,
  parseSrvr,
  probe,
  sessionHex,
  splitHostPort,
  type ClientOptions,
  type SrvrInfo,
  type Stat,
  type ZooKeeperClient,
} from '../../zk/index.ts';
import { type AuditClass, DEFAULT_AUDIT_LIMIT, type Finding, type NodeDiff, type NodeVariant } from './audit.ts';
import { findingsOf } from './audit-trees.ts';
import { hexZxid } from './format.ts';
import { type Signature } from './signatures.ts';

export interface OnlineMember {
  name: string;
  address: string;
  mode: string | null;
  zxidBefore: number | null;
  zxidAfter: number | null;
  /** The tree was read while the server's zxid did not move. */
  stable: boolean;
  nodeCount: number | null;
  mntr: { znodes: number | null; ephemerals: number | null; digestMismatches: number | null };
  ephemeralsBySession: Map<bigint, string[]>;
  /** Session ids in the server's SessionTracker dump (the leader lists every global session). */
  sessions: Set<bigint>;
  digests: Map<number, string>;
  status: AuditClass | 'unreachable';
  error: string | null;
  /** Every network wait made for this server, in order: a paused server costs one timeout, then is skipped. */
  attempts: Attempt[];
}

/** One network wait: the TCP probe, a four-letter word, the session; how it ended and how long it took. */
export interface Attempt {
  step: 'connect' | 'session' | string;
  outcome: 'ok' | 'timeout' | 'failed';
  ms: number;
}

export interface OnlineReport {
  verdict: string;
  class: AuditClass | 'not-comparable';
  comparable: boolean;
  members: OnlineMember[];
  diffCount: number;
  findings: Finding[];
  digestConflicts: { zxid: number; digests: Record<string, string> }[];
  signatures: Signature[];
  notes: string[];
}

export interface OnlineOptions {
  timeoutMs?: number;
  names?: string[];
  /** Concurrent reads per server while walking the tree. */
  concurrency?: number;
  /** TLS and SASL for the sessions, and TLS for the four-letter words (a secureClientPort answers them too). */
  security?: Pick<ClientOptions, 'tls' | 'sasl'>;
}

/** Runs one network wait for `m` and records it; a failure that took the whole timeout is a timeout. */
async function attempt<T>(m: OnlineMember, step: string, timeoutMs: number, run: () => Promise<T>, ok: (v: T) => boolean = () => true): Promise<T> {
  const t0 = performance.now();
  const outcome = (good: boolean): Attempt['outcome'] => (good ? 'ok' : performance.now() - t0 >= timeoutMs ? 'timeout' : 'failed');
  try {
    const v = await run();
    m.attempts.push({ step, outcome: outcome(ok(v)), ms: Math.round(performance.now() - t0) });
    return v;
  } catch (e) {
    m.attempts.push({ step, outcome: outcome(false), ms: Math.round(performance.now() - t0) });
    throw e;
  }
}

async function fourLetter(m: OnlineMember, cmd: string, timeoutMs: number, tls: ClientOptions['tls']): Promise<string | null> {
  // Only asked of an address the probe reached, so it parses.
  const server = splitHostPort(m.address);
  if (!server) return null;
  try {
    return await attempt(m, cmd, timeoutMs, () => fourLetterWord(server.host, server.port, cmd, timeoutMs, tls));
  } catch {
    return null;
  }
}

/** Walks the whole tree with a bounded number of requests in flight. */
async function readTree(client: ZooKeeperClient, timeoutMs: number, concurrency: number): Promise<Map<string, Stat>> {
  const out = new Map<string, Stat>();
  const queue: string[] = ['/'];
  let active = 0;
  let failure: unknown = null;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      if (failure !== null || (queue.length === 0 && active === 0)) return resolve();
      while (active < concurrency && queue.length > 0) {
        const path = queue.pop()!;
        active++;
        client.getChildren(path, { timeoutMs }).then(({ children, stat }) => {
          out.set(path, stat);
          for (const c of children) queue.push(path === '/' ? `/${c}` : `${path}/${c}`);
        }, (e: unknown) => {
          // A node deleted between listing and reading is normal on a live server.
          if (!(e instanceof NoNodeError)) failure = e;
        }).finally(() => { active--; pump(); });
      }
    };
    pump();
  });
  if (failure !== null) throw failure;
  return out;
}

async function srvrZxid(m: OnlineMember, timeoutMs: number, tls: ClientOptions['tls']): Promise<SrvrInfo | null> {
  return parseSrvr((await fourLetter(m, 'srvr', timeoutMs, tls)) ?? '');
}

function parseHash(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+): (-?\d+)$/.exec(line.trim());
    if (m) out.set(parseInt(m[1]!, 16), m[2]!);
  }
  return out;
}

const STAT_KEYS: (keyof Stat)[] = ['czxid', 'mzxid', 'ctime', 'mtime', 'version', 'cversion', 'aversion', 'ephemeralOwner', 'dataLength', 'numChildren', 'pzxid'];

function variant(member: string, s: Stat | undefined, sessions: Set<bigint>): NodeVariant {
  if (!s) return { member, exists: false };
  return {
    member, exists: true, czxid: s.czxid, mzxid: s.mzxid, pzxid: s.pzxid, ctime: s.ctime, mtime: s.mtime, version: s.version,
    cversion: s.cversion, aversion: s.aversion, ephemeralOwner: sessionHex(s.ephemeralOwner), dataLength: s.dataLength, numChildren: s.numChildren,
    ...(s.ephemeralOwner !== 0n ? { sessionAlive: sessions.has(s.ephemeralOwner) } : {}),
  };
}

export async function auditOnline(addresses: string[], opts: OnlineOptions = {}): Promise<OnlineReport> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const concurrency = opts.concurrency ?? 64;
  const tls = opts.security?.tls;
  const trees: (Map<string, Stat> | null)[] = addresses.map(() => null);
  const members: OnlineMember[] = addresses.map((address, i) => ({
    name: opts.names?.[i] ?? address, address, mode: null, zxidBefore: null, zxidAfter: null, stable: false, nodeCount: null,
    mntr: { znodes: null, ephemerals: null, digestMismatches: null }, ephemeralsBySession: new Map(), sessions: new Set(), digests: new Map(), status: 'consistent', error: null, attempts: [],
  }));
  // Phase 1: one session per server, opened before any zxid is taken. Creating and closing a
  // session are transactions themselves, so the reads are bracketed by zxids taken while all
  // our sessions are open.
  const clients: (ZooKeeperClient | null)[] = await Promise.all(addresses.map(async (address, i) => {
    const m = members[i]!;
    // An unresolvable name or a refused port is known at once: no srvr, no session timeout.
    const reach = await attempt(m, 'connect', timeoutMs, () => probe(address, timeoutMs), (r) => r.ok);
    if (!reach.ok) {
      m.status = 'unreachable';
      m.error = reach.message;
      return null;
    }
    const info = await srvrZxid(m, timeoutMs, tls);
    if (!info) {
      m.status = 'unreachable';
      // A port that accepts but never answers: a paused or hung server (the kernel still completes the handshake).
      m.error = m.attempts.at(-1)?.outcome === 'timeout'
        ? `no answer to srvr within ${timeoutMs} ms (the port accepts: a paused or hung server?)`
        : 'not serving (no answer to srvr, or "not currently serving requests")';
      return null;
    }
    m.mode = info.mode;
    const client = createClient(address, { sessionTimeoutMs: Math.max(4000, timeoutMs), readOnly: true, shuffleServers: false, ...opts.security });
    try {
      await attempt(m, 'session', timeoutMs, () => client.connect({ timeoutMs }));
      return client;
    } catch (e) {
      m.status = 'unreachable';
      m.error = `cannot open a session: ${(e as Error).message}`;
      await client.close().catch(() => undefined);
      return null;
    }
  }));
  try {
    // Phase 2: wait (briefly) for the servers to agree on a zxid, then read every tree.
    const live = members.map((m, i) => ({ m, i })).filter(({ i }) => clients[i] !== null);
    for (let attempt = 0; attempt < 20; attempt++) {
      const z = await Promise.all(live.map(({ m }) => srvrZxid(m, timeoutMs, tls)));
      live.forEach(({ m }, k) => { m.zxidBefore = z[k]?.zxid ?? null; });
      if (new Set(z.map((x) => x?.zxid)).size <= 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await Promise.all(live.map(async ({ m, i }) => {
      try {
        trees[i] = await readTree(clients[i]!, timeoutMs, concurrency);
        m.nodeCount = trees[i]!.size;
      } catch (e) {
        m.status = 'unreachable';
        m.error = `tree read failed: ${(e as Error).message}`;
      }
      m.zxidAfter = (await srvrZxid(m, timeoutMs, tls))?.zxid ?? null;
      m.stable = m.zxidAfter !== null && m.zxidAfter === m.zxidBefore && trees[i] !== null;
    }));
  } finally {
    await Promise.all(clients.map((c) => c?.close().catch(() => undefined)));
  }
  // Phase 3: the server's own figures.
  await Promise.all(members.map(async (m) => {
    if (m.status === 'unreachable') return;
    const mntr = parseMntr((await fourLetter(m, 'mntr', timeoutMs, tls)) ?? '');
    const num = (k: string): number | null => (mntr[k] !== undefined ? Number(mntr[k]) : null);
    m.mntr = { znodes: num('zk_znode_count'), ephemerals: num('zk_ephemerals_count'), digestMismatches: num('zk_digest_mismatches_count') };
    const dump = parseDump((await fourLetter(m, 'dump', timeoutMs, tls)) ?? '');
    m.ephemeralsBySession = dump.ephemerals;
    m.sessions = dump.sessions;
    m.digests = parseHash((await fourLetter(m, 'hash', timeoutMs, tls)) ?? '');
  }));

  const notes: string[] = [];
  const signatures: Signature[] = [];
  const up = members.map((m, i) => ({ m, i })).filter(({ m }) => m.status !== 'unreachable');
  for (const m of members) {
    if (m.status === 'unreachable') notes.push(`${m.name}: ${m.error}`);
    else if (!m.stable) notes.push(`${m.name}: its zxid moved during the read (${hexZxid(m.zxidBefore!)} → ${m.zxidAfter === null ? '?' : hexZxid(m.zxidAfter)}); its tree is not a state at one zxid`);
    if ((m.mntr.digestMismatches ?? 0) > 0) {
      signatures.push({ id: 'digest-mismatch', title: 'the server\'s own tree digest disagreed with the leader\'s', member: m.name, source: 'mntr', evidence: [`zk_digest_mismatches_count ${m.mntr.digestMismatches}`] });
    }
  }

  // Digests at common zxids are comparable whatever the zxids the trees were read at.
  const digestConflicts: OnlineReport['digestConflicts'] = [];
  const allZxids = new Set<number>(up.flatMap(({ m }) => [...m.digests.keys()]));
  for (const z of [...allZxids].sort((a, b) => a - b)) {
    const d: Record<string, string> = {};
    for (const { m } of up) { const v = m.digests.get(z); if (v !== undefined) d[m.name] = v; }
    if (new Set(Object.values(d)).size > 1) digestConflicts.push({ zxid: z, digests: d });
  }

  const zxids = up.map(({ m }) => m.zxidBefore!);
  const comparable = up.length >= 2 && up.every(({ m }) => m.stable) && new Set(zxids).size === 1;
  const maxZxid = Math.max(...zxids);
  const diffs: NodeDiff[] = [];
  let diffCount = 0;
  if (up.length >= 2) {
    const sessionsAll = new Set<bigint>(up.flatMap(({ m }) => [...m.sessions]));
    const paths = new Set<string>();
    for (const { i } of up) for (const p of trees[i]!.keys()) paths.add(p);
    for (const p of paths) {
      // Written by each server from its own configuration file, not by transactions.
      if (p === '/zookeeper/config') continue;
      const stats = up.map(({ i }) => trees[i]!.get(p));
      const keys = stats.map((s) => (s ? STAT_KEYS.map((k) => String(s[k])).join('|') : null));
      if (new Set(keys.map(String)).size <= 1) continue;
      diffCount++;
      if (diffs.length >= DEFAULT_AUDIT_LIMIT) continue;
      const names = up.map(({ m }) => m.name);
      const present = names.filter((_n, k) => stats[k]);
      const fields = new Set<string>();
      const ex = stats.filter((s): s is Stat => s !== undefined);
      for (const s of ex.slice(1)) for (const k of STAT_KEYS) if (s[k] !== ex[0]![k]) fields.add(k);
      const eph = ex.some((s) => s.ephemeralOwner !== 0n);
      diffs.push({
        path: p, ephemeral: eph,
        kind: present.length < names.length ? `only on ${present.join(', ')} (missing on ${names.filter((n) => !present.includes(n)).join(', ')})` : `differ in ${[...fields].join(', ')}`,
        variants: up.map(({ m }, k) => variant(m.name, stats[k], sessionsAll)), fields: [...fields], odd: [], zxid: Math.min(...ex.map((s) => s.czxid)),
      });
    }
  }
  const findings: Finding[] = findingsOf(diffs);

  let cls: OnlineReport['class'];
  let verdict: string;
  if (digestConflicts.length > 0) {
    cls = 'diverged';
    const c = digestConflicts[0]!;
    verdict = `DIVERGED: the servers' own tree digests differ at ${hexZxid(c.zxid)} (${Object.entries(c.digests).map(([k, v]) => `${k} ${v}`).join(', ')})`;
  } else if (comparable && diffCount > 0) {
    cls = 'diverged';
    verdict = `DIVERGED: all trees read at ${hexZxid(zxids[0]!)} and ${diffCount} znode(s) differ`;
  } else if (comparable) {
    cls = members.some((m) => m.status === 'unreachable') ? 'lagging' : 'consistent';
    verdict = cls === 'consistent'
      ? `CONSISTENT: all ${up.length} servers at ${hexZxid(zxids[0]!)}, identical trees (${up[0]!.m.nodeCount} znodes)`
      : `INCOMPLETE: the ${up.length} reachable servers agree at ${hexZxid(zxids[0]!)}; ${members.filter((m) => m.status === 'unreachable').map((m) => m.name).join(', ')} could not be read`;
  } else {
    cls = 'not-comparable';
    const at = up.map(({ m }) => `${m.name} ${hexZxid(m.zxidBefore!)}${m.stable ? '' : ' (moving)'}`).join(', ');
    verdict = `NOT COMPARABLE: the live trees were read at different zxids (${at}); ${diffCount} znode(s) differ, which lag alone can explain. Use the offline audit on the data directories, or read again when writes pause.`;
  }
  const unreachable = members.filter((m) => m.status === 'unreachable');
  if (unreachable.length > 0) {
    verdict = `UNREACHABLE: ${unreachable.map((m) => `${m.name} (${m.error})`).join('; ')}${up.length > 0 ? ` — ${verdict}` : ''}`;
  }
  for (const { m } of up) {
    if (cls === 'not-comparable' && m.zxidBefore! < maxZxid) m.status = 'lagging';
    if (cls === 'diverged' && digestConflicts.length === 0) m.status = 'diverged';
  }
  return { verdict, class: cls, comparable, members, diffCount, findings, digestConflicts, signatures, notes };
}

/** The report with its maps and sets as plain JSON values. */
export function onlineJson(r: OnlineReport): unknown {
  return {
    ...r,
    members: r.members.map((m) => ({
      ...m,
      ephemeralsBySession: Object.fromEntries([...m.ephemeralsBySession].map(([k, v]) => [sessionHex(k), v])),
      sessions: [...m.sessions].map(sessionHex),
      digests: Object.fromEntries([...m.digests].map(([k, v]) => [hexZxid(k), v])),
    })),
  };
}

export function renderOnline(r: OnlineReport): string {
  const out: string[] = [r.verdict, '', 'Servers:'];
  for (const m of r.members) {
    out.push(`  ${m.name.padEnd(22)} ${(m.mode ?? '-').padEnd(10)} ${m.status.padEnd(11)} zxid ${m.zxidBefore === null ? '-' : hexZxid(m.zxidBefore)}${m.stable ? '' : m.zxidAfter !== null && m.zxidBefore !== null ? ` → ${hexZxid(m.zxidAfter)}` : ''}, ${m.nodeCount ?? '?'} znodes read (mntr ${m.mntr.znodes ?? '?'}, ephemerals ${m.mntr.ephemerals ?? '?'}, digest mismatches ${m.mntr.digestMismatches ?? '?'}), ${m.ephemeralsBySession.size} session(s) with ephemerals`);
  }
  if (r.digestConflicts.length > 0) {
    out.push('', 'Digest conflicts:');
    for (const c of r.digestConflicts.slice(0, 10)) out.push(`  ${hexZxid(c.zxid)}: ${Object.entries(c.digests).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  }
  out.push('', `${r.diffCount} znode(s) differ${r.comparable ? '' : ' (not comparable: different zxids)'}.`);
  for (const f of r.findings.slice(0, 30)) out.push(`  - ${f.text}`);
  for (const s of r.signatures) out.push('', `${s.id} on ${s.member}: ${s.title}`, ...s.evidence.map((e) => `    ${e}`));
  if (r.notes.length > 0) out.push('', 'Notes:', ...r.notes.map((n) => `  ${n}`));
  return out.join('\n') + '\n';
}
