/**
 * The offline ensemble audit: given the data directories of the members, decide whether they
 * are consistent, merely lagging (one member's history is a prefix of the others'), or diverged
 * (the same zxid carries different transactions, a transaction is missing from one history, or
 * the trees differ at a zxid every member reached), and show where and on which znodes.
 *
 * Two independent comparisons, both in bounded memory per member:
 *  - the transaction histories, merged by zxid across members (one log entry per member in
 *    memory at a time), compared by payload (audit-txns.ts);
 *  - the trees rebuilt at the newest zxid all members reached, node by node, every Stat field,
 *    data (by CRC-32) and ACL (audit-trees.ts).
 *
 * `auditOffline` runs them as named steps: load the members, compare the transactions,
 * choose the zxid to compare the trees at, compare the trees, verify the members' holes
 * against them, settle the conflicts, compare the members ahead, classify, and read the
 * signatures. Rendering is src/forensics/report/audit.ts.
 */
import { basename, dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { compareTreesAt, findingsOf, type TreeComparison, type TreeContext } from './audit-trees.ts';
import { type AuditMembers, compareTxns, type TxnComparison } from './audit-txns.ts';
import { type DataDir, type DataFile, openDataDir } from './datadir.ts';
import { hexZxid } from './format.ts';
import { type GroupItem } from './group.ts';
import { counterOf, type Gap, lastLoggedZxid, type Relog } from './history.ts';
import { detect3642, detect4394, detect4409, detectFromLog, type LogLine, scanServerLog, type Signature } from './signatures.ts';
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

/** Most conflicts and differing znodes an audit keeps in its report (counts stay exact). */
export const DEFAULT_AUDIT_LIMIT = 2000;

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
      name: input.name ?? memberName(input.dir),
      dir: input.dir,
      lastZxid: last,
      lastLoggedZxid: logged.zxid,
      newestSnapshotZxid: newestSnap,
      snapshots: dd.snapshots.length,
      logs: dd.logs.length,
      logEnd: logged.end,
      gaps: [],
      relogs: [],
      holes: [],
      serverLog,
      uncommitted: [],
      status: 'consistent',
      behindBy: 0,
      nodeCount: null,
      sessionCount: null,
      suspect: false,
      warnings: [],
    },
  };
}

/** Each member's data directory opened and its facts read; names made unique. */
async function loadMembers(inputs: MemberInput[], opts: AuditOptions): Promise<AuditMembers> {
  const loaded = [];
  for (const i of inputs) loaded.push(await memberFacts(i, opts));
  const dds = loaded.map((l) => l.dd);
  const facts = loaded.map((l) => l.facts);
  const names = facts.map((f) => f.name);
  if (new Set(names).size !== names.length)
    names.forEach((_n, i) => {
      facts[i]!.name = names[i] = `${names[i]}#${i + 1}`;
    });
  return { dds, facts, names };
}

/**
 * The zxid the trees are compared at: the one asked, else the newest all members
 * reached (a pending uncommitted tail is not a zxid its member reached: the trees are compared
 * before it).
 */
function chooseCompareZxid(facts: MemberFacts[], opts: AuditOptions): number {
  return opts.at ?? Math.min(...facts.map(reachedZxid));
}

/**
 * Holes in a member's log with a later snapshot of its own, verified when the member's
 * tree, rebuilt from a snapshot taken after the hole, equals the others' at a zxid they reached.
 */
async function verifyHoles(ctx: TreeContext, main: TreeComparison, comparedAt: number, opts: AuditOptions): Promise<void> {
  const { facts } = ctx;
  const all = facts.map((_f, i) => i);
  for (const i of all) {
    for (const h of facts[i]!.holes) {
      const used = main.snaps[i];
      if (main.diffCount === 0 && used && used.zxid >= h.to) {
        h.verifiedAt = comparedAt;
        continue;
      }
      if (opts.at !== undefined || comparedAt >= h.snapshot.zxid) continue;
      const sel = [i, ...all.filter((j) => j !== i && reachedZxid(facts[j]!) >= h.snapshot.zxid)];
      if (sel.length < 2) continue;
      const at = Math.min(...sel.map((j) => reachedZxid(facts[j]!)));
      const check = await compareTreesAt(ctx, sel, at, false);
      if (check.diffCount === 0 && (check.snaps[0]?.zxid ?? -1) >= h.to) h.verifiedAt = at;
    }
  }
}

/**
 * The transaction conflicts made final once the holes are verified: an unverified
 * hole's transactions are missing after all (counted, and their deferred conflicts reported);
 * a verified one is no evidence of a lost transaction for the 3642 detector either.
 */
function settleConflicts(hist: TxnComparison, facts: MemberFacts[], limit: number): void {
  for (const f of facts) for (const h of f.holes) if (h.verifiedAt === null) hist.count += h.count;
  for (const d of hist.deferred) {
    const unverified = d.members.filter((m) =>
      facts.find((f) => f.name === m)!.holes.some((h) => h.verifiedAt === null && d.conflict.zxid >= h.from && d.conflict.zxid <= h.to),
    );
    if (unverified.length === 0) continue;
    d.conflict.odd = unverified;
    hist.conflicts.push(d.conflict);
  }
  hist.conflicts.sort((a, b) => a.zxid - b.zxid);
  if (hist.conflicts.length > limit) hist.conflicts.length = limit;
  for (const f of facts) {
    for (const g of f.gaps) {
      const h = f.holes.find((x) => x.after === g.after && x.verifiedAt !== null);
      if (h && !g.coveredBy) g.coveredLater = h.snapshot;
    }
  }
}

/**
 * Conflicts after the zxid every member reached happened among the members ahead:
 * their trees are compared too, at the newest zxid they all reached, to name the znodes.
 */
async function compareAhead(
  ctx: TreeContext,
  conflicts: TxnConflict[],
  comparedAt: number,
  opts: AuditOptions,
): Promise<{ at: number | null; nodeDiffs: NodeDiff[]; diffCount: number }> {
  const later = conflicts.find((c) => c.zxid > comparedAt);
  if (!later || opts.at !== undefined) return { at: null, nodeDiffs: [], diffCount: 0 };
  const ahead = ctx.facts.map((_f, i) => i).filter((i) => reachedZxid(ctx.facts[i]!) >= later.zxid);
  if (ahead.length < 2) return { at: null, nodeDiffs: [], diffCount: 0 };
  const at = Math.min(...ahead.map((i) => reachedZxid(ctx.facts[i]!)));
  const second = await compareTreesAt(ctx, ahead, at, false);
  for (const d of second.nodeDiffs) d.kind = `${d.kind} at ${hexZxid(at)}`;
  return { at, nodeDiffs: second.nodeDiffs, diffCount: second.diffCount };
}

/**
 * The class and where the divergence starts. A transaction conflict is the cause; tree
 * differences are its consequences. Without one (histories purged, or a hole covered by
 * nothing), the trees date the divergence. Sets each member's status and how far behind it is.
 */
function classify(
  facts: MemberFacts[],
  hist: TxnComparison,
  nodeDiffs: NodeDiff[],
  selfConflicts: AuditReport['selfConflicts'],
  comparedAt: number,
): { cls: AuditClass; firstDivergence: AuditReport['firstDivergence'] } {
  const maxZxid = Math.max(...facts.map(reachedZxid));
  let firstDivergence: AuditReport['firstDivergence'] = null;
  const firstConflict = hist.conflicts[0];
  if (firstConflict) {
    firstDivergence = {
      zxid: firstConflict.zxid,
      how:
        firstConflict.kind === 'changed'
          ? `the transaction differs on ${firstConflict.odd.join(', ')}`
          : `the transaction is missing from ${firstConflict.odd.join(', ')}`,
    };
  }
  const firstSelf = selfConflicts.map((c) => ({ member: c.member, zxid: c.relog.differences[0]?.zxid ?? c.relog.from })).sort((a, b) => a.zxid - b.zxid)[0];
  if (firstSelf && (!firstDivergence || firstSelf.zxid < firstDivergence.zxid)) {
    firstDivergence = { zxid: firstSelf.zxid, how: `${firstSelf.member} logged the transaction twice and the two copies differ` };
  }
  if (!firstDivergence && nodeDiffs.length > 0) {
    const z = Math.min(...nodeDiffs.map((d) => d.zxid));
    firstDivergence = { zxid: z, how: `the trees at ${hexZxid(comparedAt)} differ; the earliest change involved is at ${hexZxid(z)}` };
  }
  const divergedMembers = new Set<string>([...hist.conflicts.flatMap((c) => c.odd), ...nodeDiffs.flatMap((d) => d.odd), ...selfConflicts.map((c) => c.member)]);
  facts.forEach((f, i) => {
    f.behindBy = hist.behind[i]!;
    f.status = divergedMembers.has(f.name) ? 'diverged' : reachedZxid(f) < maxZxid ? 'lagging' : 'consistent';
  });
  const cls: AuditClass = firstDivergence ? 'diverged' : facts.some((f) => reachedZxid(f) < maxZxid) ? 'lagging' : 'consistent';
  return { cls, firstDivergence };
}

/**
 * The known bugs' signatures, from each member's data and its server log; the
 * warnings a verified hole and a forced read deserve.
 */
function readSignatures(facts: MemberFacts[], orphanSigs: Signature[], warnings: string[]): Signature[] {
  const signatures: Signature[] = [...orphanSigs];
  for (const f of facts) {
    let log: { file: string; lines: LogLine[] } | null = null;
    if (f.serverLog) {
      try {
        log = { file: f.serverLog, lines: scanServerLog(f.serverLog) };
      } catch (e) {
        f.warnings.push(`cannot read server log ${f.serverLog}: ${(e as Error).message}`);
      }
    }
    const s = detect3642(f.name, f.gaps, log);
    if (s) signatures.push(s);
    const sync = detect4409(f.name, f.gaps, log);
    if (sync) signatures.push(sync);
    const relog = detect4394(f.name, f.relogs, log);
    if (relog) signatures.push(relog);
    for (const h of f.holes) {
      if (h.verifiedAt === null) continue;
      warnings.push(
        `${f.name}: its log lacks ${h.count} transaction(s) ${hexZxid(h.from)}–${hexZxid(h.to)} that ${basename(h.snapshot.path)}, written later, holds (its tree equals the others' at ${hexZxid(h.verifiedAt)}): not a divergence, but a restart from an older snapshot would lose them`,
      );
    }
    if (log) signatures.push(...detectFromLog(f.name, log));
  }
  for (const f of facts) if (f.suspect) warnings.push(`${f.name}: checksum mismatches were passed with --force; its data is suspect`);
  return signatures;
}

export async function auditOffline(inputs: MemberInput[], opts: AuditOptions = {}): Promise<AuditReport> {
  if (inputs.length < 2) throw new Error('an audit needs the data directories of at least two members');
  const limit = opts.limit ?? DEFAULT_AUDIT_LIMIT;
  const members = await loadMembers(inputs, opts);
  const { facts } = members;
  const hist = await compareTxns(members, { force: opts.force, limit });
  const comparedAt = chooseCompareZxid(facts, opts);
  const ctx: TreeContext = { ...members, force: opts.force, limit, orphanSigs: [] };
  const main = await compareTreesAt(
    ctx,
    facts.map((_f, i) => i),
    comparedAt,
    true,
  );
  await verifyHoles(ctx, main, comparedAt, opts);
  settleConflicts(hist, facts, limit);
  // A re-logged transaction whose copies differ: the member disagrees with itself.
  const selfConflicts = facts.flatMap((f) => f.relogs.filter((r) => r.differing > 0).map((relog) => ({ member: f.name, relog })));
  const ahead = await compareAhead(ctx, hist.conflicts, comparedAt, opts);
  const nodeDiffs = [...main.nodeDiffs, ...ahead.nodeDiffs];
  const diffCount = main.diffCount + ahead.diffCount;
  const { cls, firstDivergence } = classify(facts, hist, nodeDiffs, selfConflicts, comparedAt);
  const warnings: string[] = [];
  const signatures = readSignatures(facts, ctx.orphanSigs, warnings);
  const conflictTotal = hist.count + selfConflicts.reduce((n, c) => n + c.relog.differing, 0);
  return {
    verdict: verdictLine(cls, facts, comparedAt, firstDivergence, conflictTotal, diffCount),
    class: cls,
    comparedAt,
    alsoComparedAt: ahead.at,
    firstDivergence,
    members: facts,
    txnsCompared: hist.compared,
    conflicts: hist.conflicts,
    conflictCount: hist.count,
    nodesCompared: main.nodesCompared,
    diffCount,
    findings: findingsOf(nodeDiffs),
    signatures,
    selfConflicts,
    warnings,
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
