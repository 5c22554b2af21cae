/**
 * What ZooKeeper's own data says about the services: read from the bundle's transaction logs
 * (and the newest snapshot, for what was there before the logs begin), kept only for the
 * znodes of the services' coordination: election candidates (`…/__mj_j/0000000042`, any
 * parent named like an election), members (`…/__mj_cluster/IP:PORT`), the term claims a
 * leader writes into the election parent ({epoch, endpoint}), and the sessions that own them.
 *
 * This is ZooKeeper's view, by its own clock: when the leader's session was created, which
 * endpoint held the election and from which zxid (the epoch), and when that session was closed
 * or expired — the moment the election could move on.
 */
import { basename, dirname } from 'node:path';
import { sessionHex } from '../../zk/records.ts';
import type { TxnEntry, TxnRecord } from '../../zk/txn.ts';
import { openDataDir } from '../zkdata/datadir.ts';
import { readSnapshot } from '../zkdata/snapshot.ts';
import { TxnLogReader } from '../zkdata/txnlog.ts';
import type { DataDir } from './bundle.ts';

/** A parent whose sequential children are election candidates. */
const ELECTION_PARENT = /(?:^|\/)(?:__mj_j|election|leader|leader_election|le|__election)$/i;
const CANDIDATE = /^[^/]*\d{10}$/;
const MEMBER = /\/(?:__\w*cluster|cluster|members)\/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[\w.-]+):(\d{2,5})$/;
/** Bounded: a bundle's history can hold millions of transactions; these are the few that matter. */
const MAX_EVENTS = 20_000;

export interface Candidate {
  path: string;
  sequence: number;
  session: string;
  endpoint: string | null;
  created: number;
  createdZxid: number;
  deleted: number | null;
}

export interface MemberZnode {
  path: string;
  endpoint: string;
  role: string;
  session: string;
  created: number;
  deleted: number | null;
}

export interface SessionLife {
  id: string;
  created: number | null;
  timeoutMs: number | null;
  /** closeSession transaction time: a client close or a server expiry (the server log tells which). */
  ended: number | null;
  endedZxid: number | null;
}

export interface Claim {
  time: number;
  zxid: number;
  electionPath: string;
  epoch: number | null;
  endpoint: string | null;
  znode: string | null;
  session: string;
}

/** A term as ZooKeeper's data shows it: the lowest candidate from when it became lowest. */
export interface DataTerm {
  electionPath: string;
  role: string;
  endpoint: string | null;
  session: string;
  /** The candidate's czxid: the recipe's fencing epoch. */
  epoch: number;
  from: number;
  to: number | null;
  /** How it ended: the owner session closed/expired, the znode deleted, or still held. */
  end: 'session-ended' | 'deleted' | 'held';
}

export interface DataTrail {
  source: string[];
  candidates: Candidate[];
  members: MemberZnode[];
  sessions: Map<string, SessionLife>;
  claims: Claim[];
  terms: DataTerm[];
  /** Time of the newest transaction read. */
  lastTime: number | null;
  warnings: string[];
}

function roleOf(path: string): string {
  // /zbs/meta/__mj_cluster/IP:PORT → meta; /svc/members/… → svc
  const parts = path.split('/').filter(Boolean);
  const i = parts.findIndex((p) => /^(?:__\w*cluster|cluster|members|__mj_j|election|leader|leader_election|le|__election)$/i.test(p));
  return i > 0 ? parts[i - 1]! : (parts[0] ?? 'service');
}

function endpointIn(data: Buffer | null): string | null {
  if (!data || data.length === 0 || data.length > 64 * 1024) return null;
  const text = data.toString('utf8');
  try {
    const v = JSON.parse(text) as { endpoint?: unknown };
    if (typeof v.endpoint === 'string') return v.endpoint;
  } catch {
    // not JSON: an address in plain text
  }
  const m = /(\d{1,3}(?:\.\d{1,3}){3}:\d{2,5})/.exec(text);
  return m ? m[1]! : null;
}

function claimIn(data: Buffer | null): { epoch: number | null; endpoint: string | null; znode: string | null } | null {
  if (!data || data.length === 0 || data.length > 64 * 1024) return null;
  try {
    const v = JSON.parse(data.toString('utf8')) as { epoch?: unknown; endpoint?: unknown; znode?: unknown };
    if (typeof v !== 'object' || v === null || (v.epoch === undefined && v.endpoint === undefined)) return null;
    return {
      epoch: typeof v.epoch === 'number' ? v.epoch : null,
      endpoint: typeof v.endpoint === 'string' ? v.endpoint : null,
      znode: typeof v.znode === 'string' ? v.znode : null,
    };
  } catch {
    return null;
  }
}

class TrailBuilder {
  readonly trail: DataTrail = { source: [], candidates: [], members: [], sessions: new Map(), claims: [], terms: [], lastTime: null, warnings: [] };
  /** Newest zxid taken so far: another member's copy of the same history adds only what is newer. */
  maxZxid = -1;
  private floor = -1;
  private readonly livePath = new Map<string, Candidate | MemberZnode>();
  private events = 0;
  /** Transactions at or below the snapshot read first are in it already. */
  fromZxid = -1;

  session(id: string): SessionLife {
    let s = this.trail.sessions.get(id);
    if (!s) {
      s = { id, created: null, timeoutMs: null, ended: null, endedZxid: null };
      if (this.trail.sessions.size < MAX_EVENTS) this.trail.sessions.set(id, s);
    }
    return s;
  }

  node(path: string, ephemeralOwner: bigint, data: Buffer | null, time: number, zxid: number): void {
    if (ephemeralOwner === 0n || this.livePath.has(path) || this.events++ > MAX_EVENTS) return;
    const session = sessionHex(ephemeralOwner);
    const parent = dirname(path);
    const name = basename(path);
    if (ELECTION_PARENT.test(parent) && CANDIDATE.test(name)) {
      const c: Candidate = { path, sequence: Number(name.slice(-10)), session, endpoint: endpointIn(data), created: time, createdZxid: zxid, deleted: null };
      this.trail.candidates.push(c);
      this.livePath.set(path, c);
      return;
    }
    const m = MEMBER.exec(path);
    if (m) {
      const z: MemberZnode = { path, endpoint: `${m[1]}:${m[2]}`, role: roleOf(path), session, created: time, deleted: null };
      this.trail.members.push(z);
      this.livePath.set(path, z);
    }
  }

  txn(e: TxnEntry): void {
    const h = e.header;
    if (h.zxid <= this.fromZxid || h.zxid <= this.floor) return;
    if (h.zxid > this.maxZxid) this.maxZxid = h.zxid;
    if (this.trail.lastTime === null || h.time > this.trail.lastTime) this.trail.lastTime = h.time;
    this.record(e.record, h.clientId, h.time, h.zxid);
  }

  private record(r: TxnRecord | null, client: bigint, time: number, zxid: number): void {
    if (!r) return;
    switch (r.kind) {
      case 'createSession': {
        const s = this.session(sessionHex(client));
        s.created = time;
        s.timeoutMs = r.timeOut;
        return;
      }
      case 'closeSession': {
        const id = sessionHex(client);
        if (!this.trail.sessions.has(id) && ![...this.livePath.values()].some((z) => z.session === id)) return;
        const s = this.session(id);
        s.ended = time;
        s.endedZxid = zxid;
        for (const [p, z] of this.livePath) {
          if (z.session === id) {
            z.deleted = time;
            this.livePath.delete(p);
          }
        }
        return;
      }
      case 'create':
        if (r.ephemeral) this.node(r.path, client, r.data, time, zxid);
        return;
      case 'delete': {
        const z = this.livePath.get(r.path);
        if (z) {
          z.deleted = time;
          this.livePath.delete(r.path);
        }
        return;
      }
      case 'setData': {
        if (!ELECTION_PARENT.test(r.path)) return;
        const c = claimIn(r.data);
        if (c && this.trail.claims.length < MAX_EVENTS) this.trail.claims.push({ time, zxid, electionPath: r.path, ...c, session: sessionHex(client) });
        return;
      }
      case 'multi':
        for (const t of r.txns) this.record(t.record, client, time, zxid);
        return;
      default:
    }
  }

  /** A new member's logs begin: only what is newer than everything read so far counts. */
  nextMember(): void {
    this.floor = this.maxZxid;
  }

  /** Terms: walk candidates in time; the lowest live one of each election holds it. */
  settle(): void {
    const byElection = new Map<string, Candidate[]>();
    for (const c of this.trail.candidates) byElection.set(dirname(c.path), [...(byElection.get(dirname(c.path)) ?? []), c]);
    const sessions = this.trail.sessions;
    for (const [electionPath, cands] of byElection) {
      const times = [...new Set(cands.flatMap((c) => [c.created, ...(c.deleted !== null ? [c.deleted] : [])]))].sort((a, b) => a - b);
      let cur: DataTerm | null = null;
      for (const t of times) {
        const live = cands.filter((c) => c.created <= t && (c.deleted === null || c.deleted > t)).sort((a, b) => a.sequence - b.sequence);
        const low = live[0];
        if (cur && (!low || low.path !== this.pathOf(cur, cands))) {
          cur.to = t;
          const owner = sessions.get(cur.session);
          cur.end = owner?.ended === t ? 'session-ended' : 'deleted';
          cur = null;
        }
        if (low && !cur) {
          const endpoint = low.endpoint ?? this.trail.members.find((m) => m.session === low.session)?.endpoint ?? null;
          cur = { electionPath, role: roleOf(electionPath), endpoint, session: low.session, epoch: low.createdZxid, from: t, to: null, end: 'held' };
          this.trail.terms.push(cur);
        }
      }
    }
    this.trail.terms.sort((a, b) => a.from - b.from);
  }

  private pathOf(term: DataTerm, cands: Candidate[]): string | undefined {
    return cands.find((c) => c.createdZxid === term.epoch && c.session === term.session)?.path;
  }
}

/**
 * Reads every data directory's transaction logs (one copy of each zxid is enough: the members
 * share a history) and the newest snapshot of the first directory that has one.
 */
export async function readDataTrail(dirs: DataDir[]): Promise<DataTrail> {
  const b = new TrailBuilder();
  let snapDone = false;
  // The member with the most logs first: the others then add only what it lacks at the end.
  for (const d of [...dirs].sort((x, y) => y.txnLogs.length - x.txnLogs.length)) {
    b.nextMember();
    let dd;
    try {
      dd = openDataDir(d.path);
    } catch (e) {
      b.trail.warnings.push(`${d.rel}: ${(e as Error).message}`);
      continue;
    }
    if (!snapDone && dd.snapshots.length > 0 && dd.logs.length > 0) {
      const snap = dd.snapshots[0]!;
      try {
        await readSnapshot(snap.path, {
          session: (id, timeoutMs) => {
            const s = b.session(sessionHex(id));
            s.timeoutMs = timeoutMs;
          },
          node: (n) => b.node(n.path, n.stat.ephemeralOwner, n.data ? Buffer.from(n.data) : null, n.stat.ctime, n.stat.czxid),
        });
        snapDone = true;
        b.fromZxid = snap.zxid;
        b.trail.source.push(`${d.node}: ${basename(snap.path)}`);
      } catch (e) {
        b.trail.warnings.push(`${d.rel}: ${(e as Error).message}`);
      }
    }
    for (const log of dd.logs) {
      const reader = new TxnLogReader(log.path, { force: true });
      try {
        for await (const e of reader.entries()) b.txn(e);
        b.trail.source.push(`${d.node}: ${basename(log.path)}`);
      } catch (e) {
        b.trail.warnings.push(`${d.rel}/${basename(log.path)}: ${(e as Error).message} (entries before it are kept)`);
      }
    }
  }
  b.settle();
  return b.trail;
}
