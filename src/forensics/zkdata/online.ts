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
  ConnectionLossError,
  NoNodeError,
  OperationTimeoutError,
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
  /**
   * The wait that went unanswered, once: what was asked, how long it was given, and whether the
   * server had answered earlier in this audit (then it stopped: paused or hung mid-audit).
   */
  unanswered: Unanswered | null;
  /** Every network wait made for this server, in order: a server that goes silent costs one wait, then is never asked again. */
  attempts: Attempt[];
}

/** One network wait: the TCP probe, a four-letter word, the session; how it ended and how long it took. */
export interface Attempt {
  step: 'connect' | 'session' | string;
  outcome: 'ok' | 'timeout' | 'failed';
  ms: number;
}

export interface Unanswered {
  step: string;
  waitedMs: number;
  midAudit: boolean;
}

export interface OnlineReport {
  verdict: string;
  class: AuditClass | 'not-comparable';
  comparable: boolean;
  members: OnlineMember[];
  /** The servers that could not be read, each named once with why (also in `members`). */
  unreachable: { name: string; address: string; error: string; unanswered: Unanswered | null }[];
  diffCount: number;
  findings: Finding[];
  digestConflicts: { zxid: number; digests: Record<string, string> }[];
  signatures: Signature[];
  notes: string[];
  /** The audit's bound, each wait's bound, and what the audit took. */
  timeoutMs: number;
  waitMs: number;
  elapsedMs: number;
}

export type OnlinePhase = 'reached' | 'zxids' | 'trees';

export interface OnlineOptions {
  /** The whole audit's bound (default 30 s): no wait runs past it. */
  timeoutMs?: number;
  /** Each network wait's bound (default a quarter of timeoutMs): what a silent server costs, once. */
  waitMs?: number;
  names?: string[];
  /** Concurrent reads per server while walking the tree. */
  concurrency?: number;
  /** TLS and SASL for the sessions, and TLS for the four-letter words (a secureClientPort answers them too). */
  security?: Pick<ClientOptions, 'tls' | 'sasl'>;
  /**
   * Awaited after each phase ('reached': every reachable server has answered srvr and holds a
   * session; 'zxids': the zxids are taken; 'trees': the trees are read), before the next one
   * asks anything: for progress, and for a test to act at a known point of the audit.
   */
  onPhase?: (phase: OnlinePhase) => void | Promise<void>;
}

/** The audit's clock: no wait longer than waitMs, none past the deadline. */
interface Budget {
  timeoutMs: number;
  waitMs: number;
  start: number;
  deadline: number;
  /** Members that answered srvr and opened a session: a silence after that is mid-audit. */
  reached: Set<OnlineMember>;
}

/** A wait shorter than this could not tell a live server from a silent one: the audit's time is up. */
const MIN_WAIT_MS = 50;

/** What the next wait may take: its share, never past the deadline; 0 when the time is up. */
function allowance(b: Budget): number {
  const ms = Math.floor(Math.min(b.waitMs, b.deadline - performance.now()));
  return ms < Math.min(MIN_WAIT_MS, b.waitMs) ? 0 : ms;
}

/** Thrown instead of asking a member that is already out (or when the audit's time is up). */
class NotAsked extends Error {}

/** Puts `m` out of the audit, once: the first reason stays, and nothing is asked of it again. */
function lose(m: OnlineMember, error: string, unanswered: Unanswered | null = null): void {
  if (m.status === 'unreachable') return;
  m.status = 'unreachable';
  m.error = error;
  m.unanswered = unanswered;
}

/** `m` left a wait unanswered (`lost`: its session's connection was dropped as silent first). */
function silence(m: OnlineMember, step: string, ms: number, b: Budget, lost = false): void {
  const midAudit = b.reached.has(m);
  const unanswered = lost ? `no answer to ${step} in ${ms} ms (the client dropped the silent connection)` : `no answer to ${step} within ${ms} ms`;
  lose(
    m,
    midAudit
      ? `stopped answering: ${unanswered}, though it had answered earlier in the audit (paused or hung?); not asked again`
      : step === 'connect'
        ? `${m.address}: no answer within ${ms} ms`
        : `${unanswered}${step === 'srvr' ? ' (the port accepts: a paused or hung server?)' : ''}`,
    { step, waitedMs: ms, midAudit },
  );
}

/**
 * Runs one network wait for `m` and records it. The wait gets what the budget allows now and is
 * cut there whatever `run` does (a name lookup has no timeout of its own); a wait that is cut
 * puts the member out. A member already out is not asked.
 */
async function attempt<T>(m: OnlineMember, step: string, b: Budget, run: (ms: number) => Promise<T>, ok: (v: T) => boolean = () => true): Promise<T> {
  if (m.status === 'unreachable') throw new NotAsked(`${m.name} is out of the audit`);
  const ms = allowance(b);
  if (ms <= 0) {
    lose(m, `not asked ${step}: the audit's ${b.timeoutMs} ms (--timeout) ran out`, { step, waitedMs: 0, midAudit: b.reached.has(m) });
    throw new NotAsked('the audit ran out of time');
  }
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let cut = false;
  // Armed before `run` arms its own timer of the same length, so it fires first.
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      cut = true;
      reject(new NotAsked(`${step}: no answer within ${ms} ms`));
    }, ms);
  });
  const record = (good: boolean): void => {
    m.attempts.push({ step, outcome: good ? 'ok' : cut ? 'timeout' : 'failed', ms: Math.round(performance.now() - t0) });
  };
  try {
    const v = await Promise.race([run(ms), guard]);
    record(ok(v));
    return v;
  } catch (e) {
    if (!cut && e instanceof OperationTimeoutError) cut = true;
    record(false);
    if (cut) silence(m, step, ms, b);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

async function fourLetter(m: OnlineMember, cmd: string, b: Budget, tls: ClientOptions['tls']): Promise<string | null> {
  // Only asked of an address the probe reached, so it parses.
  const server = splitHostPort(m.address);
  if (!server) return null;
  try {
    return await attempt(m, cmd, b, (ms) => fourLetterWord(server.host, server.port, cmd, ms, tls));
  } catch {
    return null;
  }
}

/**
 * A request of the tree walk went unanswered: its own timeout, or the session's connection
 * given up as silent (the client's read timeout, shorter than the request's) — a paused server.
 */
class TreeWaitError extends Error {
  constructor(
    readonly step: string,
    readonly ms: number,
    readonly reason: Error,
  ) {
    super(`${step}: ${reason.message}`);
  }
}

/** Walks the whole tree with a bounded number of requests in flight, each given what the budget allows. */
async function readTree(client: ZooKeeperClient, b: Budget, concurrency: number): Promise<Map<string, Stat>> {
  const out = new Map<string, Stat>();
  const queue: string[] = ['/'];
  let active = 0;
  let failure: unknown = null;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      if (failure !== null || (queue.length === 0 && active === 0)) return resolve();
      while (active < concurrency && queue.length > 0) {
        const path = queue.pop()!;
        const timeoutMs = allowance(b);
        if (timeoutMs <= 0) {
          failure = new NotAsked(`not asked getChildren ${path}: the audit's ${b.timeoutMs} ms (--timeout) ran out`);
          return resolve();
        }
        active++;
        const sent = performance.now();
        client
          .getChildren(path, { timeoutMs })
          .then(
            ({ children, stat }) => {
              out.set(path, stat);
              for (const c of children) queue.push(path === '/' ? `/${c}` : `${path}/${c}`);
            },
            (e: unknown) => {
              // A node deleted between listing and reading is normal on a live server.
              if (e instanceof OperationTimeoutError || e instanceof ConnectionLossError)
                failure ??= new TreeWaitError(`getChildren ${path}`, Math.round(performance.now() - sent), e);
              else if (!(e instanceof NoNodeError)) failure ??= e;
            },
          )
          .finally(() => {
            active--;
            pump();
          });
      }
    };
    pump();
  });
  if (failure !== null) throw failure;
  return out;
}

async function srvrZxid(m: OnlineMember, b: Budget, tls: ClientOptions['tls']): Promise<SrvrInfo | null> {
  return parseSrvr((await fourLetter(m, 'srvr', b, tls)) ?? '');
}

function parseHash(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+): (-?\d+)$/.exec(line.trim());
    if (m) out.set(parseInt(m[1]!, 16), m[2]!);
  }
  return out;
}

const STAT_KEYS: (keyof Stat)[] = [
  'czxid',
  'mzxid',
  'ctime',
  'mtime',
  'version',
  'cversion',
  'aversion',
  'ephemeralOwner',
  'dataLength',
  'numChildren',
  'pzxid',
];

function variant(member: string, s: Stat | undefined, sessions: Set<bigint>): NodeVariant {
  if (!s) return { member, exists: false };
  return {
    member,
    exists: true,
    czxid: s.czxid,
    mzxid: s.mzxid,
    pzxid: s.pzxid,
    ctime: s.ctime,
    mtime: s.mtime,
    version: s.version,
    cversion: s.cversion,
    aversion: s.aversion,
    ephemeralOwner: sessionHex(s.ephemeralOwner),
    dataLength: s.dataLength,
    numChildren: s.numChildren,
    ...(s.ephemeralOwner !== 0n ? { sessionAlive: sessions.has(s.ephemeralOwner) } : {}),
  };
}

export async function auditOnline(addresses: string[], opts: OnlineOptions = {}): Promise<OnlineReport> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const waitMs = Math.min(timeoutMs, opts.waitMs ?? Math.max(1, Math.floor(timeoutMs / 4)));
  const start = performance.now();
  const b: Budget = { timeoutMs, waitMs, start, deadline: start + timeoutMs, reached: new Set() };
  const concurrency = opts.concurrency ?? 64;
  const tls = opts.security?.tls;
  const trees: (Map<string, Stat> | null)[] = addresses.map(() => null);
  const members: OnlineMember[] = addresses.map((address, i) => ({
    name: opts.names?.[i] ?? address,
    address,
    mode: null,
    zxidBefore: null,
    zxidAfter: null,
    stable: false,
    nodeCount: null,
    mntr: { znodes: null, ephemerals: null, digestMismatches: null },
    ephemeralsBySession: new Map(),
    sessions: new Set(),
    digests: new Map(),
    status: 'consistent',
    error: null,
    unanswered: null,
    attempts: [],
  }));
  // Phase 1: one session per server, opened before any zxid is taken. Creating and closing a
  // session are transactions themselves, so the reads are bracketed by zxids taken while all
  // our sessions are open.
  const clients: (ZooKeeperClient | null)[] = await Promise.all(
    addresses.map(async (address, i) => {
      const m = members[i]!;
      // An unresolvable name or a refused port is known at once: no srvr, no session timeout.
      let reach;
      try {
        reach = await attempt(
          m,
          'connect',
          b,
          (ms) => probe(address, ms),
          (r) => r.ok,
        );
      } catch {
        return null;
      }
      if (!reach.ok) {
        lose(m, reach.message);
        return null;
      }
      const info = await srvrZxid(m, b, tls);
      if (!info) {
        // A port that accepts but never answers is a paused or hung server (the kernel still
        // completes the handshake): named by the timed-out attempt.
        lose(m, 'not serving (no answer to srvr, or "not currently serving requests")');
        return null;
      }
      m.mode = info.mode;
      const client = createClient(address, { sessionTimeoutMs: Math.max(4000, waitMs), readOnly: true, shuffleServers: false, ...opts.security });
      try {
        await attempt(m, 'session', b, (ms) => client.connect({ timeoutMs: ms }));
        b.reached.add(m);
        return client;
      } catch (e) {
        lose(m, `cannot open a session: ${(e as Error).message}`);
        await client.close({ timeoutMs: 1 }).catch(() => undefined);
        return null;
      }
    }),
  );
  const reading = (): { m: OnlineMember; i: number }[] =>
    members.map((m, i) => ({ m, i })).filter(({ m, i }) => clients[i] !== null && m.status !== 'unreachable');
  try {
    await opts.onPhase?.('reached');
    // Phase 2: wait (briefly: 20 rounds, at most a quarter of the budget) for the servers to
    // agree on a zxid. A server that stops answering is out after its one wait, so the next
    // rounds ask only the others.
    for (let round = 0; round < 20; round++) {
      const live = reading();
      const z = await Promise.all(live.map(({ m }) => srvrZxid(m, b, tls)));
      live.forEach(({ m }, k) => {
        m.zxidBefore = z[k]?.zxid ?? null;
      });
      const zxids = reading().map(({ m }) => m.zxidBefore);
      if (new Set(zxids).size <= 1 || performance.now() - start > timeoutMs / 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // One that answers srvr without a zxid has stopped serving (lost its quorum, say).
    for (const { m } of reading())
      if (m.zxidBefore === null)
        lose(m, 'stopped serving during the audit (srvr gave no zxid: "not currently serving requests"?)', { step: 'srvr', waitedMs: 0, midAudit: true });
    await opts.onPhase?.('zxids');
    await Promise.all(
      reading().map(async ({ m, i }) => {
        const t0 = performance.now();
        try {
          trees[i] = await readTree(clients[i]!, b, concurrency);
          m.attempts.push({ step: 'tree', outcome: 'ok', ms: Math.round(performance.now() - t0) });
          m.nodeCount = trees[i]!.size;
        } catch (e) {
          m.attempts.push({ step: 'tree', outcome: e instanceof TreeWaitError ? 'timeout' : 'failed', ms: Math.round(performance.now() - t0) });
          if (e instanceof TreeWaitError) silence(m, e.step, e.ms, b, e.reason instanceof ConnectionLossError);
          else if (e instanceof NotAsked) lose(m, e.message, { step: 'getChildren', waitedMs: 0, midAudit: true });
          else lose(m, `tree read failed: ${(e as Error).message}`);
          return;
        }
        m.zxidAfter = (await srvrZxid(m, b, tls))?.zxid ?? null;
        m.stable = m.zxidAfter !== null && m.zxidAfter === m.zxidBefore;
      }),
    );
    await opts.onPhase?.('trees');
  } finally {
    // A server that went silent gets no wait for its closeSession: its session is left to expire.
    await Promise.all(
      clients.map((c, i) => c?.close({ timeoutMs: members[i]!.status === 'unreachable' ? 1 : Math.max(1, allowance(b)) }).catch(() => undefined)),
    );
  }
  // Phase 3: the server's own figures.
  await Promise.all(
    members.map(async (m) => {
      if (m.status === 'unreachable') return;
      const mntr = parseMntr((await fourLetter(m, 'mntr', b, tls)) ?? '');
      const num = (k: string): number | null => (mntr[k] !== undefined ? Number(mntr[k]) : null);
      m.mntr = { znodes: num('zk_znode_count'), ephemerals: num('zk_ephemerals_count'), digestMismatches: num('zk_digest_mismatches_count') };
      const dump = parseDump((await fourLetter(m, 'dump', b, tls)) ?? '');
      m.ephemeralsBySession = dump.ephemerals;
      m.sessions = dump.sessions;
      m.digests = parseHash((await fourLetter(m, 'hash', b, tls)) ?? '');
    }),
  );

  const notes: string[] = [];
  const signatures: Signature[] = [];
  const up = members.map((m, i) => ({ m, i })).filter(({ m }) => m.status !== 'unreachable');
  for (const m of members) {
    // An unreachable server is named once, in the headline.
    if (m.status !== 'unreachable' && !m.stable)
      notes.push(
        `${m.name}: its zxid moved during the read (${hexZxid(m.zxidBefore!)} → ${m.zxidAfter === null ? '?' : hexZxid(m.zxidAfter)}); its tree is not a state at one zxid`,
      );
    if ((m.mntr.digestMismatches ?? 0) > 0) {
      signatures.push({
        id: 'digest-mismatch',
        title: "the server's own tree digest disagreed with the leader's",
        member: m.name,
        source: 'mntr',
        evidence: [`zk_digest_mismatches_count ${m.mntr.digestMismatches}`],
      });
    }
  }

  // Digests at common zxids are comparable whatever the zxids the trees were read at.
  const digestConflicts: OnlineReport['digestConflicts'] = [];
  const allZxids = new Set<number>(up.flatMap(({ m }) => [...m.digests.keys()]));
  for (const z of [...allZxids].sort((a, b) => a - b)) {
    const d: Record<string, string> = {};
    for (const { m } of up) {
      const v = m.digests.get(z);
      if (v !== undefined) d[m.name] = v;
    }
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
        path: p,
        ephemeral: eph,
        kind:
          present.length < names.length
            ? `only on ${present.join(', ')} (missing on ${names.filter((n) => !present.includes(n)).join(', ')})`
            : `differ in ${[...fields].join(', ')}`,
        variants: up.map(({ m }, k) => variant(m.name, stats[k], sessionsAll)),
        fields: [...fields],
        odd: [],
        zxid: Math.min(...ex.map((s) => s.czxid)),
      });
    }
  }
  const findings: Finding[] = findingsOf(diffs);

  let cls: OnlineReport['class'];
  let verdict: string;
  if (digestConflicts.length > 0) {
    cls = 'diverged';
    const c = digestConflicts[0]!;
    verdict = `DIVERGED: the servers' own tree digests differ at ${hexZxid(c.zxid)} (${Object.entries(c.digests)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`;
  } else if (comparable && diffCount > 0) {
    cls = 'diverged';
    verdict = `DIVERGED: all trees read at ${hexZxid(zxids[0]!)} and ${diffCount} znode(s) differ`;
  } else if (comparable) {
    cls = members.some((m) => m.status === 'unreachable') ? 'lagging' : 'consistent';
    verdict =
      cls === 'consistent'
        ? `CONSISTENT: all ${up.length} servers at ${hexZxid(zxids[0]!)}, identical trees (${up[0]!.m.nodeCount} znodes)`
        : // The servers not read are named once, in the UNREACHABLE prefix below.
          `INCOMPLETE: the ${up.length} reachable servers agree at ${hexZxid(zxids[0]!)}, identical trees (${up[0]!.m.nodeCount} znodes)`;
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
  return {
    verdict,
    class: cls,
    comparable,
    members,
    unreachable: unreachable.map((m) => ({ name: m.name, address: m.address, error: m.error ?? '', unanswered: m.unanswered })),
    diffCount,
    findings,
    digestConflicts,
    signatures,
    notes,
    timeoutMs,
    waitMs,
    elapsedMs: Math.round(performance.now() - start),
  };
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
    out.push(
      `  ${m.name.padEnd(22)} ${(m.mode ?? '-').padEnd(10)} ${m.status.padEnd(11)} zxid ${m.zxidBefore === null ? '-' : hexZxid(m.zxidBefore)}${m.stable ? '' : m.zxidAfter !== null && m.zxidBefore !== null ? ` → ${hexZxid(m.zxidAfter)}` : ''}, ${m.nodeCount ?? '?'} znodes read (mntr ${m.mntr.znodes ?? '?'}, ephemerals ${m.mntr.ephemerals ?? '?'}, digest mismatches ${m.mntr.digestMismatches ?? '?'}), ${m.ephemeralsBySession.size} session(s) with ephemerals`,
    );
  }
  if (r.digestConflicts.length > 0) {
    out.push('', 'Digest conflicts:');
    for (const c of r.digestConflicts.slice(0, 10))
      out.push(
        `  ${hexZxid(c.zxid)}: ${Object.entries(c.digests)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
  }
  out.push('', `${r.diffCount} znode(s) differ${r.comparable ? '' : ' (not comparable: different zxids)'}.`);
  for (const f of r.findings.slice(0, 30)) out.push(`  - ${f.text}`);
  for (const s of r.signatures) out.push('', `${s.id} on ${s.member}: ${s.title}`, ...s.evidence.map((e) => `    ${e}`));
  if (r.notes.length > 0) out.push('', 'Notes:', ...r.notes.map((n) => `  ${n}`));
  out.push('', `Took ${r.elapsedMs} ms of its ${r.timeoutMs} ms bound; each wait at most ${r.waitMs} ms.`);
  return out.join('\n') + '\n';
}
