/**
 * What a run measured and whether it was safe, Jepsen-style: the clients' history (every write a
 * chunk saw acknowledged, with the epoch of the term that acknowledged it) checked against the
 * database's own history (ZooKeeper's transaction logs: every term's claim and every journal
 * write, in zxid order) and its final state.
 *
 * Safety, always checked:
 * - no acknowledged write lost: every acknowledged key is in the final journal, with the epoch that acknowledged it;
 * - epochs only increase: term claims in zxid order, the leader ZooKeeper named in the observer's
 *   samples, and the epochs each chunk was acknowledged by, in its order;
 * - no write of a deposed leader accepted after its successor's claim: each journal write lies in
 *   its own term (after its epoch's claim, before the next claim).
 *
 * Measured from the fault (the first injected): detection (ZooKeeper stops naming the faulted
 * leader), failover (first chunk request served by a later leader), the unavailability window (the
 * longest time without any chunk request served, across the fault), overlapping leaders (metas
 * acting as leader at once).
 */
import { openDataDir } from '../../forensics/zkdata/datadir.ts';
import { TxnLogReader } from '../../forensics/zkdata/txnlog.ts';
import type { TxnRecord } from '../../zk/txn.ts';
import type { ServiceProc } from '../cluster/cluster.ts';
import { PATHS, type ClusterTimings } from '../cluster/config.ts';
import type { NamedLeader, Sample, ZkDrop } from './observer.ts';
import { resolveDuration, type Expectations } from './spec.ts';

export interface Claim {
  zxid: number;
  at: number;
  epoch: number;
  endpoint: string;
}

export interface JournalWrite {
  zxid: number;
  at: number;
  epoch: number;
  key: string;
}

export interface ZkHistory {
  claims: Claim[];
  writes: JournalWrite[];
  /** The data directory the history was read from (the longest one), and its last zxid. */
  source: string | null;
  lastZxid: number;
}

function json(data: Buffer | null): Record<string, unknown> | null {
  if (!data) return null;
  try {
    const v: unknown = JSON.parse(data.toString('utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Claims and journal writes from ZooKeeper's transaction logs. Every server's directory is read
 * and the copies merged by zxid (a server that was down, or re-synced by snapshot, lacks some).
 */
export async function readZkHistory(dataDirs: string[]): Promise<ZkHistory> {
  const claims = new Map<number, Claim>();
  const writes = new Map<number, JournalWrite>();
  let source: string | null = null;
  let lastZxid = 0;
  for (const dir of dataDirs) {
    let logs;
    try {
      logs = openDataDir(dir).logs;
    } catch {
      continue;
    }
    let last = 0;
    for (const f of logs) {
      const reader = new TxnLogReader(f.path);
      try {
        for await (const e of reader.entries()) {
          const zxid = e.header.zxid;
          last = Math.max(last, zxid);
          const subs: TxnRecord[] = e.record?.kind === 'multi' ? e.record.txns.map((t) => t.record) : e.record ? [e.record] : [];
          for (const r of subs) {
            if (r.kind === 'setData' && r.path === PATHS.election) {
              const d = json(r.data);
              if (d && typeof d.epoch === 'number') claims.set(zxid, { zxid, at: e.header.time, epoch: d.epoch, endpoint: String(d.endpoint) });
            } else if (r.kind === 'create' && r.path.startsWith(`${PATHS.journal}/`)) {
              const d = json(r.data);
              if (d && typeof d.epoch === 'number') writes.set(zxid, { zxid, at: e.header.time, epoch: d.epoch, key: r.path.slice(PATHS.journal.length + 1) });
            }
          }
        }
      } catch {
        // a torn or unreadable log: what was read counts
      }
    }
    if (last > lastZxid) {
      lastZxid = last;
      source = dir;
    }
  }
  return {
    claims: [...claims.values()].sort((a, b) => a.zxid - b.zxid),
    writes: [...writes.values()].sort((a, b) => a.zxid - b.zxid),
    source,
    lastZxid,
  };
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface FaultInfo {
  at: number;
  /** When the fault ended: its heal, the node's reboot or the remedy (null: it lasted to the end). */
  endAt: number | null;
  kind: string;
  node: string | null;
  /** The meta leader ZooKeeper named when the fault began. */
  leader: NamedLeader | null;
}

export interface RunData {
  timings: ClusterTimings;
  samples: Sample[];
  drops: ZkDrop[];
  services: ServiceProc[];
  fault: FaultInfo | null;
  /** The end of the last heal, reboot or remedy step. */
  repairedAt: number | null;
  history: ZkHistory;
  /** The journal read at the end: key → epoch. */
  finalJournal: Map<string, number>;
  endedAt: number;
}

export interface Metrics {
  /** Fault → ZooKeeper no longer names the faulted leader. */
  detectMs: number | null;
  /** Fault → the first chunk request served by a later leader. */
  failoverMs: number | null;
  failoverBy: { node: string | null; epoch: number } | null;
  /** Fault → the first failed chunk request. */
  firstErrorMs: number | null;
  /** The longest time without any chunk request served, across the fault. */
  unavailableMs: number | null;
  unavailable: { from: number; to: number | null } | null;
  /** The most metas acting as leader at once, and how long more than one did. */
  maxLeaders: number;
  overlapMs: number;
  /** Terms claimed after the fault (ZooKeeper's history). */
  newTerms: number;
  requests: { ok: number; failed: number };
  acknowledged: number;
}

type Ack = { at: number; key: string; epoch: number; endpoint: string; node: string };

function acks(data: RunData): Ack[] {
  const out: Ack[] = [];
  for (const s of data.services) {
    if (s.kind !== 'chunk') continue;
    for (const e of s.events) if (e.ev === 'ack') out.push({ at: e.at, key: e.key, epoch: e.epoch, endpoint: e.endpoint, node: s.node.name });
  }
  return out.sort((a, b) => a.at - b.at);
}

function requests(data: RunData): { at: number; ok: boolean; node: string; endpoint: string; error?: string }[] {
  const out: { at: number; ok: boolean; node: string; endpoint: string; error?: string }[] = [];
  for (const s of data.services) {
    if (s.kind !== 'chunk') continue;
    for (const e of s.events)
      if (e.ev === 'request') out.push({ at: e.at, ok: e.ok, node: s.node.name, endpoint: e.endpoint, ...(e.error ? { error: e.error } : {}) });
  }
  return out.sort((a, b) => a.at - b.at);
}

export function measure(data: RunData): Metrics {
  const all = acks(data);
  const reqs = requests(data);
  const f = data.fault;
  const faultEpoch = f?.leader?.epoch ?? null;
  let detectMs: number | null = null;
  let failoverMs: number | null = null;
  let failoverBy: Metrics['failoverBy'] = null;
  let firstErrorMs: number | null = null;
  let unavailable: Metrics['unavailable'] = null;
  let newTerms = 0;
  if (f) {
    const later = all.find((a) => a.at >= f.at && faultEpoch !== null && a.epoch > faultEpoch);
    if (later) {
      failoverMs = later.at - f.at;
      failoverBy = { node: nodeOfEndpoint(data, later.endpoint), epoch: later.epoch };
    }
    const moved = data.samples.find((s) => s.at >= f.at && s.namedFresh && faultEpoch !== null && (s.named === null || s.named.epoch !== faultEpoch));
    if (moved) detectMs = moved.at - f.at;
    const err = reqs.find((r) => r.at >= f.at && !r.ok);
    if (err) firstErrorMs = err.at - f.at;
    newTerms = data.history.claims.filter((c) => c.at >= f.at - 50).length;
    // The longest gap between served requests that overlaps the fault window.
    const faultEnd = f.endAt ?? data.endedAt;
    const times = all.map((a) => a.at);
    const before = times.filter((t) => t < f.at);
    let prev = before.length ? before[before.length - 1]! : f.at;
    let best: { from: number; to: number | null } | null = null;
    const longer = (from: number, to: number): boolean => !best || to - from > (best.to ?? data.endedAt) - best.from;
    for (const t of times.filter((x) => x >= f.at)) {
      if (prev < faultEnd && longer(prev, t)) best = { from: prev, to: t };
      prev = t;
    }
    // Never served again before the run ended (past a request timeout: not just the run's end).
    if (prev < faultEnd && data.endedAt - prev > data.timings.chunkTimeoutMs && longer(prev, data.endedAt)) best = { from: prev, to: null };
    unavailable = best;
  }
  let maxLeaders = 0;
  let overlapMs = 0;
  for (let i = 0; i < data.samples.length; i++) {
    const s = data.samples[i]!;
    maxLeaders = Math.max(maxLeaders, s.leaders);
    if (s.leaders > 1) overlapMs += (data.samples[i + 1]?.at ?? s.at) - s.at;
  }
  return {
    detectMs,
    failoverMs,
    failoverBy,
    firstErrorMs,
    unavailableMs: unavailable ? (unavailable.to ?? data.endedAt) - unavailable.from : null,
    unavailable,
    maxLeaders,
    overlapMs,
    newTerms,
    requests: { ok: reqs.filter((r) => r.ok).length, failed: reqs.filter((r) => !r.ok).length },
    acknowledged: all.length,
  };
}

function nodeOfEndpoint(data: RunData, endpoint: string): string | null {
  for (const s of data.services) if (s.kind === 'meta' && s.events.some((e) => e.ev === 'hello' && e.endpoint === endpoint)) return s.node.name;
  return null;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const list = (xs: string[], max = 5): string => `${xs.slice(0, max).join('; ')}${xs.length > max ? `; … ${xs.length - max} more` : ''}`;

export function checkSafety(data: RunData): Check[] {
  const out: Check[] = [];
  const all = acks(data);

  const lost: string[] = [];
  for (const a of all) {
    const e = data.finalJournal.get(a.key);
    if (e === undefined) lost.push(`${a.key} (acknowledged to ${a.node} by epoch ${hex(a.epoch)} at ${new Date(a.at).toISOString()}) is not in the journal`);
    else if (e !== a.epoch) lost.push(`${a.key} was acknowledged by epoch ${hex(a.epoch)} but the journal has it from epoch ${hex(e)}`);
  }
  out.push({
    name: 'no acknowledged write lost',
    ok: lost.length === 0,
    detail: lost.length ? list(lost) : `${all.length} acknowledged write(s), all in the final journal with their epoch`,
  });

  const claims = data.history.claims;
  const backwards: string[] = [];
  for (let i = 1; i < claims.length; i++) {
    if (claims[i]!.epoch <= claims[i - 1]!.epoch)
      backwards.push(`claim of ${hex(claims[i]!.epoch)} (zxid ${hex(claims[i]!.zxid)}) after ${hex(claims[i - 1]!.epoch)}`);
  }
  let named = 0;
  for (const s of data.samples) {
    if (!s.namedFresh || !s.named) continue;
    if (s.named.epoch < named) backwards.push(`ZooKeeper named epoch ${hex(s.named.epoch)} at ${new Date(s.at).toISOString()} after ${hex(named)}`);
    named = Math.max(named, s.named.epoch);
  }
  const perChunk = new Map<string, number>();
  for (const a of all) {
    const prev = perChunk.get(a.node) ?? 0;
    if (a.epoch < prev) backwards.push(`${a.node}'s chunk was acknowledged by epoch ${hex(a.epoch)} after ${hex(prev)} (${a.key})`);
    perChunk.set(a.node, Math.max(prev, a.epoch));
  }
  out.push({
    name: 'epochs only increase',
    ok: backwards.length === 0,
    detail: backwards.length
      ? list(backwards)
      : `${claims.length} term claim(s) in increasing epochs; named leaders and every chunk's acknowledgements never went back`,
  });

  const stale: string[] = [];
  for (const w of data.history.writes) {
    const term = [...claims].reverse().find((c) => c.zxid < w.zxid);
    if (!term) stale.push(`${w.key} (epoch ${hex(w.epoch)}, zxid ${hex(w.zxid)}) before any claim`);
    else if (term.epoch !== w.epoch)
      stale.push(`${w.key} of epoch ${hex(w.epoch)} accepted at zxid ${hex(w.zxid)}, in the term of ${hex(term.epoch)} (claimed at ${hex(term.zxid)})`);
  }
  out.push({
    name: "no write of a deposed leader after its successor's claim",
    ok: stale.length === 0,
    detail: stale.length
      ? list(stale)
      : `${data.history.writes.length} journal write(s), each inside its own term (ZooKeeper's transaction log, ${data.history.source ?? 'no data directory'})`,
  });
  if (data.history.source === null)
    out.push({ name: "ZooKeeper's history was read", ok: false, detail: 'no transaction log could be read: the checks above are void' });
  return out;
}

export interface ExpectationResult {
  name: keyof Expectations;
  expected: unknown;
  ok: boolean;
  detail: string;
}

/** Each expectation against what was measured and observed. */
export function checkExpectations(exp: Expectations, data: RunData, m: Metrics): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  const f = data.fault;
  const faultEnd = f ? (f.endAt ?? data.endedAt) : data.endedAt;
  const during = f ? data.samples.filter((s) => s.at >= f.at && s.at < faultEnd) : [];
  const off = f ? data.services.filter((s) => s.kind === 'chunk' && s.node.name !== f.node) : [];
  const offNodes = [...new Set(off.map((s) => s.node.name))];
  const add = (name: keyof Expectations, ok: boolean, detail: string): void => {
    out.push({ name, expected: exp[name], ok, detail });
  };
  const needFault = (name: keyof Expectations): boolean => {
    if (f) return true;
    add(name, false, 'the scenario injected no fault');
    return false;
  };
  for (const name of Object.keys(exp) as (keyof Expectations)[]) {
    const v = exp[name];
    if (v === undefined || !needFault(name)) continue;
    switch (name) {
      case 'failoverWithinMs': {
        const bound = resolveDuration(v as number | string, data.timings);
        add(
          name,
          m.failoverMs !== null && m.failoverMs <= bound,
          m.failoverMs === null ? `no failover (bound ${bound} ms)` : `failover after ${m.failoverMs} ms (bound ${bound} ms)`,
        );
        break;
      }
      case 'noFailoverDuringFault': {
        const early = m.failoverMs !== null && f!.at + m.failoverMs < faultEnd;
        add(
          name,
          v === !early,
          early
            ? `a later leader served ${m.failoverMs} ms after the fault, before it ended`
            : `no later leader served before the fault ended (${faultEnd - f!.at} ms)`,
        );
        break;
      }
      case 'noFailover':
        add(
          name,
          v === (m.newTerms === 0 && m.failoverMs === null),
          `${m.newTerms} term(s) after the fault; ${m.failoverMs === null ? 'no chunk served by a later leader' : `a later leader served after ${m.failoverMs} ms`}`,
        );
        break;
      case 'newTerms':
        add(name, m.newTerms === v, `${m.newTerms} term(s) claimed after the fault`);
        break;
      case 'faultedLeaderKept': {
        const fresh = during.filter((s) => s.namedFresh);
        const other = fresh.find((s) => s.named?.epoch !== f!.leader?.epoch);
        const kept = f!.leader !== null && fresh.length > 0 && !other;
        add(
          name,
          v === kept,
          kept
            ? `ZooKeeper named ${f!.leader!.node}'s meta (epoch ${hex(f!.leader!.epoch)}) in all ${fresh.length} reads over ${faultEnd - f!.at} ms`
            : other
              ? `at ${other.at - f!.at} ms ZooKeeper named ${other.named ? `${other.named.node}'s meta (epoch ${hex(other.named.epoch)})` : 'no leader'}`
              : 'no read of ZooKeeper during the fault',
        );
        break;
      }
      case 'zkDropped': {
        const d = data.drops.find((x) => x.peer === f!.node && x.at >= f!.at - 1000);
        add(
          name,
          v === (d?.reason === 'transaction timeout'),
          d
            ? `server ${d.by} dropped ${f!.node}'s server (${d.reason}) ${d.at - f!.at} ms after the fault`
            : `no drop of ${f!.node}'s server in ZooKeeper's logs`,
        );
        break;
      }
      case 'zkQuorumKept': {
        const lost = during.filter((s) => s.zkLeader === null);
        add(
          name,
          v === (lost.length === 0),
          lost.length ? `no ZooKeeper leader in ${lost.length} of ${during.length} samples` : `a ZooKeeper leader in all ${during.length} samples`,
        );
        break;
      }
      case 'chunksTimedOut': {
        const ep = f!.leader?.endpoint;
        const missing = offNodes.filter(
          (n) =>
            !off.some(
              (s) => s.node.name === n && s.events.some((e) => e.ev === 'request' && !e.ok && e.error === 'ETimedOut' && e.endpoint === ep && e.at >= f!.at),
            ),
        );
        add(
          name,
          v === (missing.length === 0 && offNodes.length > 0),
          missing.length ? `no timeout against ${ep} from ${missing.join(', ')}` : `${offNodes.join(', ')} timed out against ${ep}`,
        );
        break;
      }
      case 'chunksExpired': {
        const missing = offNodes.filter(
          (n) => !off.some((s) => s.node.name === n && s.events.some((e) => e.ev === 'state' && e.state === 'expired' && e.at >= f!.at && e.at < faultEnd)),
        );
        add(
          name,
          v === (missing.length === 0 && offNodes.length > 0),
          missing.length ? `no "Session expired" from ${missing.join(', ')} during the fault` : `${offNodes.join(', ')} went to "Session expired"`,
        );
        break;
      }
      case 'recovered': {
        const since = data.repairedAt ?? f!.endAt ?? f!.at;
        const nodes = [...new Set(data.services.filter((s) => s.kind === 'chunk').map((s) => s.node.name))];
        const missing = nodes.filter((n) => !acks(data).some((a) => a.node === n && a.at >= since));
        add(
          name,
          v === (missing.length === 0),
          missing.length ? `no request of ${missing.join(', ')} served after the repair` : `every chunk (${nodes.join(', ')}) served after the repair`,
        );
        break;
      }
      case 'metaInD': {
        const seen = during.find((s) => f!.node !== null && s.metas[f!.node]?.proc === 'D');
        add(
          name,
          v === !!seen,
          seen
            ? `${f!.node}'s meta in D (${seen.metas[f!.node!]!.threadsInD} thread(s)) ${seen.at - f!.at} ms after the fault`
            : `${f!.node}'s meta never seen in D`,
        );
        break;
      }
      case 'lateWriteRefused': {
        const late = data.services.flatMap((s) => (s.kind === 'meta' ? s.events.filter((e) => e.ev === 'lateWrite') : []));
        const refused = late.filter((e) => e.ev === 'lateWrite' && e.outcome === 'refused');
        add(
          name,
          v === refused.length > 0,
          refused.length
            ? `${refused.length} late write(s) refused by ZooKeeper's check (${late.length} late in all)`
            : `${late.length} late write(s), none refused`,
        );
        break;
      }
    }
  }
  return out;
}
