/**
 * The offline ensemble audit: given the data directories of the members, decide whether they
 * are consistent, merely lagging (one member's history is a prefix of the others'), or diverged
 * (the same zxid carries different transactions, a transaction is missing from one history, or
 * the trees differ at a zxid every member reached), and show where and on which znodes.
 *
 * Two independent comparisons, both in bounded memory per member:
 *  - the transaction histories, merged by zxid across members (one log entry per member in
 *    memory at a time), compared by payload;
 *  - the trees rebuilt at the newest zxid all members reached, node by node, every Stat field,
 *    data (by CRC-32) and ACL.
 */
import { basename, dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { sessionHex } from '../../zk/records.ts';
import { type DataDir, type DataFile, openDataDir } from './datadir.ts';
import { describeTxn, hexZxid, isoTime } from './format.ts';
import { groupByPattern, type GroupItem } from './group.ts';
import { counterOf, describeRelog, epochOf, type Gap, history, type HistoryEntry, lastLoggedZxid, newReport, type Relog, txnFingerprint } from './history.ts';
import { treeAt } from './replay.ts';
import { detect3642, detect4394, detect4409, detectFromLog, detectOrphanEphemerals, type LogLine, scanServerLog, type Signature } from './signatures.ts';
import { COMPARED_FIELDS, type DataTree, type ZNode } from './tree.ts';
import { type LogEnd } from './txnlog.ts';

export type AuditClass = 'consistent' | 'lagging' | 'diverged';

export interface MemberInput {
  dir: string;
  name?: string;
  /** The member's ZooKeeper server log (log4j), for signatures. Found next to the data dir when omitted. */
  serverLog?: string;
}

export interface MemberFacts {
  name: string;
  dir: string;
  lastZxid: number;
  lastLoggedZxid: number | null;
  newestSnapshotZxid: number | null;
  snapshots: number;
  logs: number;
  logEnd: LogEnd | null;
  gaps: Gap[];
  /** Runs of transactions this member logged a second time (after a re-sync). */
  relogs: Relog[];
  /** Holes in this member's log that a later snapshot of its own may cover. */
  holes: LogHole[];
  serverLog: string | null;
  /** Proposals only this member logged, in an epoch the others left for a newer one (see UncommittedTail). */
  uncommitted: UncommittedTail[];
  /** Filled after the comparison. */
  status: AuditClass;
  behindBy: number;
  nodeCount: number | null;
  sessionCount: number | null;
  suspect: boolean;
  warnings: string[];
}

/**
 * Transactions missing from one member's log though a snapshot it wrote later exists. A
 * learner applies a committed transaction in memory without waiting for its own log write
 * (CommitProcessor and SyncRequestProcessor run apart); if its SyncThread dies before the write
 * (ZOOKEEPER-4409), the tree it serves and the snapshots it takes still hold the transaction,
 * and so does what it loads on restart (the newest snapshot, then the log after it). Whether
 * the snapshot really holds them is checked: the member's tree rebuilt from that snapshot must
 * equal the others' at a zxid they all reached. Verified, the hole is reported, not counted as
 * divergence; otherwise its transactions are missing like any others.
 */
export interface LogHole {
  /** Last zxid logged before the hole, first and last missing zxid (as the others have them). */
  after: number;
  from: number;
  to: number;
  count: number;
  snapshot: DataFile;
  /** Set by the audit: the zxid whose tree comparison showed the snapshot holds the missing changes, or null. */
  verifiedAt: number | null;
}

/**
 * An uncommitted tail: transactions of epoch E that only this member (or these members) logged,
 * while every member lacking them has moved on to a later epoch with nothing at or after them in
 * epoch E. A leader logs a proposal before a quorum acknowledges it; if it loses the quorum
 * first, the proposal is never committed, the next leader (elected by the others, whose history
 * is what counts) starts a new epoch without it, and ZooKeeper discards it when the member
 * rejoins: TRUNC when the new leader's log still holds that epoch after the tail, otherwise a
 * SNAP sync whose snapshot supersedes it (the log keeps it, but a restart loads the snapshot and
 * only later logs; seen on 3.8 in test/forensics/zkdata/uncommitted.test.ts).
 *
 * The rule, so that real divergence is not hidden:
 *  - every member either holds the zxid with the same transaction or lacks it (a zxid others
 *    also have with different content is a conflict as always);
 *  - every member lacking it either never reached it (its last zxid is lower) or has moved on:
 *    its next zxid after it is in a later epoch, and at least one has moved on (a tail in the
 *    newest epoch of all may just be ahead, and is counted so);
 *  - the holder's run ends its history ("pending": it has not rejoined since), or its next
 *    entry is in a later epoch with a snapshot of its own in between (the SNAP sync that
 *    superseded the tail). A holder that went on logging a later epoch on top of the tail with
 *    no snapshot between would serve a tree holding uncommitted changes: counted as conflicts.
 */
export interface UncommittedTail {
  from: number;
  to: number;
  count: number;
  epoch: number;
  /** The member's last zxid before the tail: what it holds as committed. */
  after: number;
  /** Still the end of the member's history (null), or the snapshot that superseded it on rejoin. */
  supersededBy: DataFile | null;
}

/** The newest zxid a member reached that counts: a pending uncommitted tail does not. */
export function reachedZxid(f: MemberFacts): number {
  const pending = f.uncommitted.find((t) => t.supersededBy === null && t.to === f.lastZxid);
  return pending ? pending.after : f.lastZxid;
}

export function describeTail(member: string, t: UncommittedTail): string {
  const n = `${t.count} uncommitted proposal${t.count === 1 ? '' : 's'} ${t.from === t.to ? hexZxid(t.from) : `${hexZxid(t.from)}–${hexZxid(t.to)}`} (epoch ${t.epoch})`;
  return t.supersededBy === null
    ? `${member} holds ${n}, which ZooKeeper discards when it rejoins (TRUNC, or a SNAP sync that supersedes them)`
    : `${member}'s log still holds ${n}, superseded by ${basename(t.supersededBy.path)} (a SNAP sync when it rejoined; ZooKeeper does not load them again)`;
}

export interface TxnConflict {
  zxid: number;
  kind: 'changed' | 'missing';
  /** Per member: the transaction as text, null when the member lacks it, undefined when not expected. */
  txns: (string | null | undefined)[];
  odd: string[];
}

export interface NodeVariant {
  member: string;
  exists: boolean;
  czxid?: number;
  mzxid?: number;
  pzxid?: number;
  ctime?: number;
  mtime?: number;
  version?: number;
  cversion?: number;
  aversion?: number;
  ephemeralOwner?: string;
  /** Whether the owner session is in this member's session table at the compared zxid. */
  sessionAlive?: boolean;
  dataLength?: number;
  numChildren?: number;
}

export interface NodeDiff extends GroupItem {
  variants: NodeVariant[];
  fields: string[];
  odd: string[];
  zxid: number;
}

export interface Finding {
  pattern: string;
  kind: string;
  ephemeral: boolean;
  count: number;
  text: string;
  paths: string[];
  example: NodeVariant[];
}

export interface AuditReport {
  verdict: string;
  class: AuditClass;
  comparedAt: number | null;
  /** When members ahead of the others disagree after comparedAt: the zxid their trees were also compared at. */
  alsoComparedAt: number | null;
  firstDivergence: { zxid: number; how: string } | null;
  members: MemberFacts[];
  txnsCompared: number;
  conflicts: TxnConflict[];
  conflictCount: number;
  nodesCompared: number;
  diffCount: number;
  findings: Finding[];
  signatures: Signature[];
  /** Re-logged transactions whose two copies differ: a member disagreeing with itself. */
  selfConflicts: { member: string; relog: Relog }[];
  warnings: string[];
}

export interface AuditOptions {
  force?: boolean;
  /** Most conflicts and diff paths kept in the report (counts stay exact). */
  limit?: number;
  /** Compare the trees at this zxid instead of the newest all members reached. */
  at?: number;
}

const STAT_FIELDS = COMPARED_FIELDS;

/** Most conflicts and differing znodes an audit keeps in its report (counts stay exact). */
export const DEFAULT_AUDIT_LIMIT = 2000;

/**
 * ephemeralOwner values that are not sessions (ZooKeeper's EphemeralType): a container node's
 * owner is Long.MIN_VALUE, a TTL node's has 0xFF in its top byte.
 */
const CONTAINER_OWNER = -(1n << 63n);
const TTL_OWNER_TAG = 0xffn;

/** Directory names that say nothing about which member it is (a bundle's node1/zookeeper/data). */
const GENERIC_DIRS: ReadonlySet<string> = new Set(['data', 'version-2', 'zookeeper']);

function memberName(dir: string): string {
  let d = dir.replace(/\/+$/, '');
  while (GENERIC_DIRS.has(basename(d)) && dirname(d) !== d) d = dirname(d);
  return basename(d) || basename(dir);
}

function findServerLog(dd: DataDir): string | null {
  for (const cand of [join(dd.dir, 'zookeeper.log'), join(dirname(dd.dir), 'zookeeper.log'), join(dd.dir, 'logs', 'zookeeper.log')]) {
    if (existsSync(cand)) return cand;
  }
  return null;
}

/**
 * The members outside a strict majority of equal values are the odd ones. Without a majority
 * (two members that disagree), the ones lacking the value are odd, or else all of them.
 */
function oddMembers(names: string[], keys: (string | null)[], ambiguous: 'all' | 'none' = 'all'): string[] {
  const count = new Map<string, number>();
  for (const k of keys) count.set(String(k), (count.get(String(k)) ?? 0) + 1);
  for (const [k, n] of count) if (n * 2 > keys.length) return names.filter((_n, i) => String(keys[i]) !== k);
  const lacking = names.filter((_n, i) => keys[i] === null);
  if (lacking.length > 0 && lacking.length < names.length) return lacking;
  return ambiguous === 'all' ? [...names] : [];
}

/** Merges the members' histories by zxid and compares them transaction by transaction. */
async function compareHistories(dds: DataDir[], names: string[], facts: MemberFacts[], opts: AuditOptions): Promise<{ compared: number; conflicts: TxnConflict[]; count: number; behind: number[]; deferred: DeferredConflict[] }> {
  const reports = dds.map(() => newReport());
  const its = dds.map((dd, i) => history(dd, reports[i]!, { force: opts.force }));
  const heads: (HistoryEntry | null)[] = await Promise.all(its.map(async (it) => (await it.next()).value ?? null));
  const prev: (number | null)[] = dds.map(() => null);
  const limit = opts.limit ?? DEFAULT_AUDIT_LIMIT;
  const conflicts: TxnConflict[] = [];
  // Conflicts that exist only because a member's log has a hole a later snapshot may cover.
  const deferred: DeferredConflict[] = [];
  let count = 0;
  let compared = 0;
  // Transactions others have after each member's last zxid: "behind" counted in transactions.
  const behind = dds.map(() => 0);
  const advance = async (z: number): Promise<void> => {
    await Promise.all(heads.map(async (h, i) => {
      if (h && h.header.zxid === z) {
        prev[i] = z;
        heads[i] = (await its[i]!.next()).value ?? null;
      }
    }));
    // A candidate tail ending here: what its holders log next decides it (see UncommittedTail).
    for (const run of runs) if (run.to === z) for (const j of run.holders) run.next.set(j, heads[j]?.header.zxid ?? null);
  };
  const runs: TailRun[] = [];
  /** Whether zxid z (the lowest head) belongs to an uncommitted tail; if so it is recorded, not compared. */
  const tailCandidate = (z: number): boolean => {
    const e = epochOf(z);
    const holders: number[] = [];
    for (let i = 0; i < heads.length; i++) if (heads[i]?.header.zxid === z) holders.push(i);
    if (holders.length === 0 || holders.length === heads.length) return false;
    let movedOn = 0;
    for (let i = 0; i < heads.length; i++) {
      if (holders.includes(i)) continue;
      const f = facts[i]!;
      // Never got this far: lag, not a witness either way.
      if (f.lastZxid < z) continue;
      // Moved on: its next zxid is in a later epoch, and no snapshot of its own lies between
      // z and that next zxid (a SNAP sync there may hold z's effects: z was then committed, and
      // this member is no witness against it; the usual comparison applies).
      const next = heads[i]?.header.zxid ?? f.lastZxid;
      if (epochOf(next) <= e || epochOf(f.lastZxid) <= e) return false;
      if (dds[i]!.snapshots.some((sn) => sn.zxid >= z && (heads[i] === null || sn.zxid < next))) return false;
      movedOn++;
    }
    if (movedOn === 0) return false;
    // Checked last: most zxids held by some members only are plain lag, settled above.
    const key = txnFingerprint(heads[holders[0]!]!);
    if (holders.some((j) => txnFingerprint(heads[j]!) !== key)) return false;
    const hk = holders.join();
    let run = runs.find((r) => r.holders.join() === hk && r.to === prev[holders[0]!] && holders.every((j) => prev[j] === r.to));
    if (!run) {
      const p = prev[holders[0]!];
      run = { holders, from: z, to: z, count: 0, epoch: e, after: p ?? z - 1, conflicts: [], next: new Map() };
      runs.push(run);
    }
    run.to = z;
    run.count++;
    if (run.conflicts.length < limit) {
      const txns = heads.map((h, i) => (holders.includes(i) ? describeTxn(h!) : facts[i]!.lastZxid < z ? undefined : null));
      const keyNames = names.filter((_n, i) => txns[i] !== undefined);
      const keys = txns.filter((t) => t !== undefined).map((t) => (t === null ? null : key));
      run.conflicts.push({ zxid: z, kind: 'missing', txns, odd: oddMembers(keyNames, keys) });
    }
    return true;
  };
  try {
    for (;;) {
      let z = Infinity;
      for (const h of heads) if (h && h.header.zxid < z) z = h.header.zxid;
      if (z === Infinity) break;
      for (let i = 0; i < facts.length; i++) if (z > facts[i]!.lastZxid) behind[i]!++;
      if (tailCandidate(z)) { await advance(z); continue; }
      const txns: (string | null | undefined)[] = [];
      const keys: (string | null)[] = [];
      const keyNames: string[] = [];
      const inHole: number[] = [];
      let present = 0;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h && h.header.zxid === z) {
          txns.push(describeTxn(h));
          keys.push(txnFingerprint(h));
          keyNames.push(names[i]!);
          present++;
          continue;
        }
        // Absent here. Expected only if this member's history spans z and no snapshot covers it.
        const p = prev[i];
        const lastKnown = facts[i]!.lastZxid;
        if (p === null || z > lastKnown) { txns.push(undefined); continue; }
        const covered = dds[i]!.snapshots.some((s) => s.zxid >= z && s.zxid > p && (h === null || s.zxid < h.header.zxid));
        if (covered) { txns.push(undefined); continue; }
        const later = dds[i]!.snapshots.find((s) => s.zxid >= z && s.zxid <= lastKnown);
        if (later) {
          const holes = facts[i]!.holes;
          const last = holes[holes.length - 1];
          if (last && last.after === p && last.snapshot === later) { last.to = z; last.count++; }
          else holes.push({ after: p, from: z, to: z, count: 1, snapshot: later, verifiedAt: null });
          inHole.push(i);
        }
        txns.push(null);
        keys.push(null);
        keyNames.push(names[i]!);
      }
      if (present > 1 || keys.length > 1) compared++;
      const distinct = new Set(keys.map(String));
      const holeNames = new Set(inHole.map((i) => names[i]!));
      const others = new Set(keys.filter((_k, n) => !holeNames.has(keyNames[n]!)).map(String));
      if (inHole.length > 0 && distinct.size > 1 && others.size <= 1) {
        // Kept up to the limit; the count is the holes' own.
        if (deferred.length < limit) deferred.push({ members: inHole.map((i) => names[i]!), conflict: { zxid: z, kind: 'missing', txns, odd: inHole.map((i) => names[i]!) } });
      } else if (distinct.size > 1) {
        count++;
        if (conflicts.length < limit) {
          conflicts.push({ zxid: z, kind: keys.includes(null) ? 'missing' : 'changed', txns, odd: oddMembers(keyNames, keys) });
        }
      }
      await advance(z);
    }
  } finally {
    await Promise.all(its.map((it) => it.return(undefined)));
  }
  // Candidate tails become uncommitted tails, or, when the holder went on logging on top of
  // them without a snapshot between, the conflicts they are.
  for (const run of runs) {
    const verdicts = run.holders.map((j) => {
      const next = run.next.get(j) ?? null;
      const snap = dds[j]!.snapshots.find((sn) => sn.zxid > run.to && epochOf(sn.zxid) > run.epoch && (next === null || sn.zxid < next));
      if (snap) return { ok: true, snap };
      return { ok: next === null, snap: null };
    });
    if (verdicts.every((v) => v.ok)) {
      run.holders.forEach((j, k) => facts[j]!.uncommitted.push({ from: run.from, to: run.to, count: run.count, epoch: run.epoch, after: run.after, supersededBy: verdicts[k]!.snap }));
    } else {
      count += run.count;
      conflicts.push(...run.conflicts.slice(0, Math.max(0, limit - conflicts.length)));
    }
  }
  for (let i = 0; i < facts.length; i++) {
    facts[i]!.gaps = reports[i]!.gaps;
    facts[i]!.relogs = reports[i]!.relogs;
    facts[i]!.warnings.push(...reports[i]!.warnings);
    if (reports[i]!.checksumErrors > 0) facts[i]!.suspect = true;
  }
  return { compared, conflicts, count, behind, deferred };
}

/** A run of zxids that may be an uncommitted tail of its holders (see UncommittedTail). */
interface TailRun {
  holders: number[];
  from: number;
  to: number;
  count: number;
  epoch: number;
  after: number;
  /** What each holder logs after the run (null: nothing). */
  next: Map<number, number | null>;
  /** The conflicts the run counts as if it is not a tail after all. */
  conflicts: TxnConflict[];
}

interface DeferredConflict {
  members: string[];
  conflict: TxnConflict;
}

function variantOf(member: string, n: ZNode | undefined, sessions: Map<bigint, number>): NodeVariant {
  if (!n) return { member, exists: false };
  const owner = n.ephemeralOwner;
  const isEph = isEphemeralOwner(owner);
  return {
    member, exists: true, czxid: n.czxid, mzxid: n.mzxid, pzxid: n.pzxid, ctime: n.ctime, mtime: n.mtime,
    version: n.version, cversion: n.cversion, aversion: n.aversion,
    ephemeralOwner: sessionHex(owner), ...(isEph ? { sessionAlive: sessions.has(owner) } : {}),
    dataLength: n.dataLength, numChildren: n.numChildren,
  };
}

/**
 * /zookeeper/config is written by each server from its own configuration file (its data, its
 * mtime), outside the transaction log, so it is not compared. Reconfig transactions, which do
 * change it through the log, are still compared with the histories.
 */
const LOCAL_PATHS: ReadonlySet<string> = new Set(['/zookeeper/config']);
const LOCAL_FIELDS = new Map<string, ReadonlySet<string>>([['/zookeeper/config', new Set(['mtime'])]]);

function differingFields(a: ZNode, b: ZNode, path: string): string[] {
  const local = LOCAL_FIELDS.get(path);
  const out: string[] = [];
  for (const f of STAT_FIELDS) if (a[f] !== b[f] && !local?.has(f)) out.push(f === 'dataCrc' ? 'data' : f);
  return out;
}

function statKey(n: ZNode, path: string): string {
  const local = LOCAL_FIELDS.get(path);
  return STAT_FIELDS.map((f) => (local?.has(f) ? '' : String(n[f]))).join('|');
}

function isEphemeralOwner(owner: bigint): boolean {
  return owner !== 0n && owner !== CONTAINER_OWNER && BigInt.asUintN(64, owner) >> 56n !== TTL_OWNER_TAG;
}

/**
 * The zxid at which a node's difference arose: the creation of a node one side lacks, or for
 * a differing field the newest value among the members (the change the others did not get).
 */
function diffZxid(variants: NodeVariant[], fields: string[]): number {
  const exist = variants.filter((v) => v.exists);
  if (exist.length < variants.length || fields.length === 0) return Math.min(...exist.map((v) => v.czxid!));
  let z = 0;
  for (const v of exist) {
    if (fields.includes('czxid')) z = Math.max(z, v.czxid!);
    if (fields.includes('mzxid') || fields.includes('version') || fields.includes('data')) z = Math.max(z, v.mzxid!);
    if (fields.includes('pzxid') || fields.includes('cversion') || fields.includes('numChildren')) z = Math.max(z, v.pzxid!);
  }
  return z;
}

function span(values: number[], fmt: (v: number) => string): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
}

export function describeGroup(g: { pattern: string; kind: string; ephemeral: boolean; items: NodeDiff[] }): string {
  const exist = g.items.flatMap((d) => d.variants.filter((v) => v.exists));
  const parts = [`${g.pattern} (${g.items.length} znode${g.items.length === 1 ? '' : 's'}) ${g.kind}`];
  if (exist.length > 0) {
    parts.push(g.ephemeral ? 'ephemeral' : 'persistent');
    parts.push(`created ${span(exist.map((v) => v.ctime!), isoTime)}`);
    parts.push(`cZxid ${span(exist.map((v) => v.czxid!), hexZxid)}`);
    if (g.ephemeral) {
      const owners = new Map<string, Set<string>>();
      for (const v of exist) {
        const s = owners.get(v.ephemeralOwner!) ?? new Set<string>();
        s.add(`${v.member}: ${v.sessionAlive ? 'alive' : 'not in session table'}`);
        owners.set(v.ephemeralOwner!, s);
      }
      parts.push(`owner session ${[...owners].map(([o, s]) => `${o} (${[...s].join(', ')})`).join('; ')}`);
    }
  }
  return parts.join(', ');
}

async function memberFacts(input: MemberInput, opts: AuditOptions): Promise<{ dd: DataDir; facts: MemberFacts }> {
  const dd = openDataDir(input.dir);
  const logged = await lastLoggedZxid(dd, { force: opts.force });
  const newestSnap = dd.snapshots.length > 0 ? dd.snapshots[dd.snapshots.length - 1]!.zxid : null;
  // A snapshot named epoch<<32 (taken when a new epoch starts) stands for no transaction of its
  // own; any other snapshot newer than the logs is a SNAP sync up to that zxid.
  const snapTxn = dd.snapshots.map((s) => s.zxid).filter((z) => counterOf(z) !== 0);
  const last = Math.max(logged.zxid ?? 0, snapTxn.length > 0 ? snapTxn[snapTxn.length - 1]! : 0);
  const serverLog = input.serverLog ?? findServerLog(dd);
  return {
    dd,
    facts: {
      name: input.name ?? memberName(input.dir), dir: input.dir, lastZxid: last, lastLoggedZxid: logged.zxid, newestSnapshotZxid: newestSnap,
      snapshots: dd.snapshots.length, logs: dd.logs.length, logEnd: logged.end, gaps: [], relogs: [], holes: [], serverLog, uncommitted: [], status: 'consistent', behindBy: 0,
      nodeCount: null, sessionCount: null, suspect: false, warnings: [],
    },
  };
}

export async function auditOffline(inputs: MemberInput[], opts: AuditOptions = {}): Promise<AuditReport> {
  if (inputs.length < 2) throw new Error('an audit needs the data directories of at least two members');
  const loaded = [];
  for (const i of inputs) loaded.push(await memberFacts(i, opts));
  const dds = loaded.map((l) => l.dd);
  const facts = loaded.map((l) => l.facts);
  const names = facts.map((f) => f.name);
  if (new Set(names).size !== names.length) names.forEach((_n, i) => { facts[i]!.name = names[i] = `${names[i]}#${i + 1}`; });
  const warnings: string[] = [];

  // 1. Transaction by transaction.
  const hist = await compareHistories(dds, names, facts, opts);

  // 2. Trees at the newest zxid all members reached.
  // A pending uncommitted tail is not a zxid its member reached: the trees are compared before it.
  const maxZxid = Math.max(...facts.map(reachedZxid));
  const comparedAt = opts.at ?? Math.min(...facts.map(reachedZxid));
  const limit = opts.limit ?? DEFAULT_AUDIT_LIMIT;
  const orphanSigs: Signature[] = [];

  /**
   * Rebuilds the trees of the selected members at `at` and compares each with the first, one
   * tree beside the reference at a time. The first pass (all members) also records each
   * member's figures and its ephemerals whose session is gone.
   */
  const compareTreesAt = async (sel: number[], at: number, firstPass: boolean): Promise<{ nodeDiffs: NodeDiff[]; diffCount: number; nodesCompared: number; snaps: (DataFile | null)[] }> => {
    const diffs = new Map<string, (ZNode | undefined | null)[]>();
    const snaps: (DataFile | null)[] = [];
    const sessionsOf: Map<bigint, number>[] = [];
    let ref: DataTree | null = null;
    let nodesCompared = 0;
    for (let k = 0; k < sel.length; k++) {
      const i = sel[k]!;
      const closes = new Map<bigint, number>();
      const res = await treeAt(dds[i]!, at, {
        force: opts.force,
        onTxn: (e) => { if (e.header.type === -11) closes.set(e.header.clientId, e.header.zxid); },
      });
      const t = res.tree;
      snaps.push(res.snapshot);
      if (t.suspect) facts[i]!.suspect = true;
      sessionsOf.push(t.sessions);
      if (firstPass) {
        facts[i]!.nodeCount = t.size;
        facts[i]!.sessionCount = t.sessions.size;
        // Re-logged runs are reported once, from the whole history; a replay from a snapshot sees only part of one.
        const partial = new Set(res.report.relogs.map(describeRelog));
        facts[i]!.warnings.push(...res.warnings.filter((w) => !partial.has(w) && !facts[i]!.warnings.includes(w)));
        // Ephemerals whose session is gone from this member's own session table.
        const orphans: { path: string; owner: string; closedAt: number | null }[] = [];
        for (const [owner, paths] of t.ephemerals) {
          if (paths.size === 0 || t.sessions.has(owner)) continue;
          for (const p of paths) orphans.push({ path: p, owner: sessionHex(owner), closedAt: closes.get(owner) ?? null });
        }
        const sig = detectOrphanEphemerals(names[i]!, orphans);
        if (sig) orphanSigs.push(sig);
      }
      if (k === 0) {
        ref = t;
        nodesCompared = t.size;
        continue;
      }
      const r = ref!;
      // Column by column over the slots: no object per node unless it differs.
      for (const [path, si] of r.slots()) {
        if (LOCAL_PATHS.has(path)) continue;
        const sj = t.slotOf(path);
        if (sj === undefined || r.differingFields(si, t, sj, LOCAL_FIELDS.get(path)).length > 0) {
          let row = diffs.get(path);
          if (!row) diffs.set(path, (row = new Array(sel.length).fill(undefined)));
          row[0] = r.node(si);
          row[k] = sj === undefined ? null : t.node(sj);
        }
      }
      for (const [path, sj] of t.slots()) {
        if (r.slotOf(path) !== undefined || LOCAL_PATHS.has(path)) continue;
        let row = diffs.get(path);
        if (!row) diffs.set(path, (row = new Array(sel.length).fill(undefined)));
        row[0] = null;
        row[k] = t.node(sj);
      }
    }
    const selNames = sel.map((i) => names[i]!);
    const nodeDiffs: NodeDiff[] = [];
    for (const [path, row] of diffs) {
      if (nodeDiffs.length >= limit) break;
      // undefined = same as the reference member.
      const nodes = row.map((n) => (n === undefined ? row[0] : n)) as (ZNode | null)[];
      const variants = nodes.map((n, k) => variantOf(selNames[k]!, n ?? undefined, sessionsOf[k]!));
      const keys = nodes.map((n) => (n ? statKey(n, path) : null));
      // A tree difference without a majority does not say who is wrong; the histories may.
      const odd = oddMembers(selNames, keys, 'none');
      const present = nodes.map((n, k) => (n ? selNames[k]! : null)).filter((x): x is string => x !== null);
      const fields = new Set<string>();
      const existing = nodes.filter((n): n is ZNode => n !== null);
      for (let k = 1; k < existing.length; k++) for (const f of differingFields(existing[0]!, existing[k]!, path)) fields.add(f);
      const kind = present.length < selNames.length
        ? `only on ${present.join(', ') || 'none'} (missing on ${selNames.filter((n) => !present.includes(n)).join(', ')})`
        : `differ in ${[...fields].join(', ')}`;
      const eph = existing.some((n) => isEphemeralOwner(n.ephemeralOwner));
      nodeDiffs.push({ path: path === '' ? '/' : path, kind, ephemeral: eph, variants, fields: [...fields], odd, zxid: diffZxid(variants, [...fields]) });
    }
    return { nodeDiffs, diffCount: diffs.size, nodesCompared, snaps };
  };

  const all = dds.map((_d, i) => i);
  const main = await compareTreesAt(all, comparedAt, true);
  const nodeDiffs = main.nodeDiffs;
  let diffCount = main.diffCount;
  const nodesCompared = main.nodesCompared;

  // Holes in a member's log with a later snapshot of its own: verified when the member's tree,
  // rebuilt from a snapshot taken after the hole, equals the others' at a zxid they reached.
  for (const i of all) {
    for (const h of facts[i]!.holes) {
      const used = main.snaps[i];
      if (main.diffCount === 0 && used && used.zxid >= h.to) { h.verifiedAt = comparedAt; continue; }
      if (opts.at !== undefined || comparedAt >= h.snapshot.zxid) continue;
      const sel = [i, ...all.filter((j) => j !== i && reachedZxid(facts[j]!) >= h.snapshot.zxid)];
      if (sel.length < 2) continue;
      const at = Math.min(...sel.map((j) => reachedZxid(facts[j]!)));
      const check = await compareTreesAt(sel, at, false);
      if (check.diffCount === 0 && (check.snaps[0]?.zxid ?? -1) >= h.to) h.verifiedAt = at;
    }
  }
  // Unverified holes are missing transactions after all.
  for (const f of facts) for (const h of f.holes) if (h.verifiedAt === null) hist.count += h.count;
  for (const d of hist.deferred) {
    const unverified = d.members.filter((m) => facts.find((f) => f.name === m)!.holes.some((h) => h.verifiedAt === null && d.conflict.zxid >= h.from && d.conflict.zxid <= h.to));
    if (unverified.length === 0) continue;
    d.conflict.odd = unverified;
    hist.conflicts.push(d.conflict);
  }
  hist.conflicts.sort((a, b) => a.zxid - b.zxid);
  if (hist.conflicts.length > (opts.limit ?? DEFAULT_AUDIT_LIMIT)) hist.conflicts.length = opts.limit ?? DEFAULT_AUDIT_LIMIT;
  for (const f of facts) {
    // A verified hole is no evidence of a lost transaction for the 3642 detector either.
    for (const g of f.gaps) {
      const h = f.holes.find((x) => x.after === g.after && x.verifiedAt !== null);
      if (h && !g.coveredBy) g.coveredLater = h.snapshot;
    }
  }
  // A re-logged transaction whose copies differ: the member disagrees with itself.
  const selfConflicts = facts.flatMap((f) => f.relogs.filter((r) => r.differing > 0).map((relog) => ({ member: f.name, relog })));
  // Conflicts after the zxid every member reached happened among the members ahead: compare
  // their trees too, at the newest zxid they all reached, to name the znodes.
  let secondAt: number | null = null;
  const later = hist.conflicts.find((c) => c.zxid > comparedAt);
  if (later && opts.at === undefined) {
    const ahead = all.filter((i) => reachedZxid(facts[i]!) >= later.zxid);
    if (ahead.length >= 2) {
      secondAt = Math.min(...ahead.map((i) => reachedZxid(facts[i]!)));
      const second = await compareTreesAt(ahead, secondAt, false);
      for (const d of second.nodeDiffs) { d.kind = `${d.kind} at ${hexZxid(secondAt)}`; nodeDiffs.push(d); }
      diffCount += second.diffCount;
    }
  }

  // 3. Classification.
  let firstDivergence: AuditReport['firstDivergence'] = null;
  const firstConflict = hist.conflicts[0];
  if (firstConflict) {
    firstDivergence = { zxid: firstConflict.zxid, how: firstConflict.kind === 'changed' ? `the transaction differs on ${firstConflict.odd.join(', ')}` : `the transaction is missing from ${firstConflict.odd.join(', ')}` };
  }
  const firstSelf = selfConflicts.map((c) => ({ member: c.member, zxid: c.relog.differences[0]?.zxid ?? c.relog.from })).sort((a, b) => a.zxid - b.zxid)[0];
  if (firstSelf && (!firstDivergence || firstSelf.zxid < firstDivergence.zxid)) {
    firstDivergence = { zxid: firstSelf.zxid, how: `${firstSelf.member} logged the transaction twice and the two copies differ` };
  }
  // A transaction conflict is the cause; tree differences are its consequences. Without one
  // (histories purged, or a hole covered by nothing), the trees date the divergence.
  if (!firstDivergence && nodeDiffs.length > 0) {
    const z = Math.min(...nodeDiffs.map((d) => d.zxid));
    firstDivergence = { zxid: z, how: `the trees at ${hexZxid(comparedAt)} differ; the earliest change involved is at ${hexZxid(z)}` };
  }
  const divergedMembers = new Set<string>([...hist.conflicts.flatMap((c) => c.odd), ...nodeDiffs.flatMap((d) => d.odd), ...selfConflicts.map((c) => c.member)]);
  for (const f of facts) {
    f.behindBy = hist.behind[facts.indexOf(f)]!;
    f.status = divergedMembers.has(f.name) ? 'diverged' : reachedZxid(f) < maxZxid ? 'lagging' : 'consistent';
  }
  const cls: AuditClass = firstDivergence ? 'diverged' : facts.some((f) => reachedZxid(f) < maxZxid) ? 'lagging' : 'consistent';

  // 4. Findings and signatures.
  const findings: Finding[] = groupByPattern(nodeDiffs).map((g) => ({
    pattern: g.pattern, kind: g.kind, ephemeral: g.ephemeral, count: g.items.length, text: describeGroup(g),
    paths: g.items.slice(0, 20).map((d) => d.path), example: g.items[0]!.variants,
  }));
  const signatures: Signature[] = [...orphanSigs];
  for (const f of facts) {
    let log: { file: string; lines: LogLine[] } | null = null;
    if (f.serverLog) {
      try { log = { file: f.serverLog, lines: scanServerLog(f.serverLog) }; } catch (e) { f.warnings.push(`cannot read server log ${f.serverLog}: ${(e as Error).message}`); }
    }
    const s = detect3642(f.name, f.gaps, log);
    if (s) signatures.push(s);
    const sync = detect4409(f.name, f.gaps, log);
    if (sync) signatures.push(sync);
    const relog = detect4394(f.name, f.relogs, log);
    if (relog) signatures.push(relog);
    for (const h of f.holes) {
      if (h.verifiedAt === null) continue;
      warnings.push(`${f.name}: its log lacks ${h.count} transaction(s) ${hexZxid(h.from)}–${hexZxid(h.to)} that ${basename(h.snapshot.path)}, written later, holds (its tree equals the others' at ${hexZxid(h.verifiedAt)}): not a divergence, but a restart from an older snapshot would lose them`);
    }
    if (log) signatures.push(...detectFromLog(f.name, log));
  }
  for (const f of facts) if (f.suspect) warnings.push(`${f.name}: checksum mismatches were passed with --force; its data is suspect`);

  const verdict = verdictLine(cls, facts, comparedAt, firstDivergence, hist.count + selfConflicts.reduce((n, c) => n + c.relog.differing, 0), diffCount);
  return {
    verdict, class: cls, comparedAt, alsoComparedAt: secondAt, firstDivergence, members: facts, txnsCompared: hist.compared, conflicts: hist.conflicts, conflictCount: hist.count,
    nodesCompared, diffCount, findings, signatures, selfConflicts, warnings,
  };
}

function verdictLine(cls: AuditClass, facts: MemberFacts[], at: number, first: AuditReport['firstDivergence'], conflicts: number, diffs: number): string {
  const n = facts.length;
  // Pending uncommitted tails are named on the verdict line: they explain the member's odd last zxid.
  const pending = facts.flatMap((f) => f.uncommitted.filter((t) => t.supersededBy === null).map((t) => `; ${describeTail(f.name, t)}`)).join('');
  if (cls === 'diverged') {
    const odd = facts.filter((f) => f.status === 'diverged').map((f) => f.name);
    return `DIVERGED: ${odd.join(', ') || 'members'} part from the others at ${hexZxid(first!.zxid)} (${first!.how}); ${conflicts} transaction conflict(s), ${diffs} znode(s) differ${pending}`;
  }
  if (cls === 'lagging') {
    const behind = facts.filter((f) => f.status === 'lagging').map((f) => `${f.name} at ${hexZxid(reachedZxid(f))} (${f.behindBy} transactions behind)`);
    return `LAGGING: ${behind.join(', ')}; every history is a prefix of the newest${pending ? ' but for uncommitted proposals' : ''} and the trees agree at ${hexZxid(at)}${pending}`;
  }
  return `CONSISTENT: all ${n} members at ${hexZxid(at)}, same transactions, identical trees (${facts[0]!.nodeCount} znodes)${pending}`;
}
