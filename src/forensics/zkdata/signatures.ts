/**
 * Known ZooKeeper divergence bugs, recognised from what they leave behind: holes in a server's
 * transaction history, ephemerals of closed sessions, and lines in the server's own log.
 * Each signature names the issue and quotes its evidence; none is claimed without evidence.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { hexZxid } from './format.ts';
import { describeRelog, type Gap, type Relog } from './history.ts';

export interface Signature {
  id: string;
  title: string;
  member: string;
  /** "data", "log" or "data+log": where the evidence came from. */
  source: string;
  evidence: string[];
}

export interface LogLine {
  lineNo: number;
  text: string;
}

/** Reads a server log, keeping only lines that mention sync, digests or session refusals. */
export function scanServerLog(file: string): LogLine[] {
  const interesting =
    /Getting a (snapshot|diff) from (the )?leader|Snapshotting: 0x|Exception when following the leader|Truncating log|digest mismatch|Digest mismatch|Refusing session request|has seen zxid|NEWLEADER|Got zxid 0x|Learner received NEWLEADER|ZooKeeper state changed|Unexpected extra paths under session|Severe unrecoverable error|NullPointerException|proposed zxid=0x|Current zxid \d+ is <= \d+/;
  const out: LogLine[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) if (interesting.test(lines[i]!)) out.push({ lineNo: i + 1, text: lines[i]! });
  return out;
}

const cite = (file: string, l: LogLine): string => `${file}:${l.lineNo}: ${l.text.trim().slice(0, 240)}`;

/**
 * ZOOKEEPER-3642 (fixed in 3.5.10/3.6.3/3.7.0): a learner took a SNAP sync, failed before
 * persisting the snapshot, then on the next sync got a DIFF from the zxid it had only in
 * memory. On disk: a hole in its log with no snapshot covering it. In its log: "Getting a
 * snapshot from leader 0xX", then an exception, with no "Snapshotting: 0xX", then a diff.
 */
export function detect3642(member: string, gaps: Gap[], log: { file: string; lines: LogLine[] } | null): Signature | null {
  const holes = gaps.filter((g) => !g.coveredBy && !g.coveredLater);
  const evidence: string[] = holes.map(
    (g) => `transaction log jumps from ${hexZxid(g.after)} to ${hexZxid(g.next)} and no snapshot between them exists on disk`,
  );
  let logHit = false;
  if (log) {
    const L = log.lines;
    for (let i = 0; i < L.length; i++) {
      const m = /Getting a snapshot from leader (0x[0-9a-f]+)/.exec(L[i]!.text);
      if (!m) continue;
      const snapZxid = m[1]!;
      let persisted = false;
      let failed: LogLine | null = null;
      let diff: LogLine | null = null;
      for (let j = i + 1; j < L.length; j++) {
        const t = L[j]!.text;
        // The learner snapshots at NEWLEADER at its last processed zxid, which is past the SNAP's
        // zxid when commits arrived in between (3.8 applies them before NEWLEADER): any snapshot
        // at or after it persists the SNAP.
        const snap = /Snapshotting: (0x[0-9a-f]+)/.exec(t);
        if (snap && parseInt(snap[1]!, 16) >= parseInt(snapZxid, 16)) persisted = true;
        if (/Getting a snapshot from leader/.test(t)) break;
        if (!failed && t.includes('Exception when following the leader')) failed = L[j]!;
        if (failed && /Getting a diff from (the )?leader/.test(t)) {
          diff = L[j]!;
          break;
        }
      }
      if (!persisted && failed && diff) {
        logHit = true;
        evidence.push(cite(log.file, L[i]!), cite(log.file, failed), cite(log.file, diff), `no "Snapshotting: 0x…" at or after ${snapZxid} between them`);
      }
    }
  }
  if (holes.length === 0 && !logHit) return null;
  if (holes.length > 0 && !logHit) {
    evidence.push(
      log
        ? `${log.file} shows no SNAP sync cut short before a DIFF: the hole may have another cause (lost or removed log writes)`
        : 'no server log given: the SNAP-then-DIFF sequence cannot be confirmed (pass --server-logs)',
    );
  }
  return {
    id: 'ZOOKEEPER-3642',
    title: 'DIFF sync after a partial SNAP sync (fixed in 3.5.10, 3.6.3, 3.7.0)',
    member,
    source: holes.length > 0 && logHit ? 'data+log' : holes.length > 0 ? 'data' : 'log',
    evidence,
  };
}

/** Ephemerals kept by a member after their session closed (ZOOKEEPER-2355, ZOOKEEPER-5010). */
export function detectOrphanEphemerals(member: string, orphans: { path: string; owner: string; closedAt: number | null }[]): Signature | null {
  if (orphans.length === 0) return null;
  const evidence = orphans
    .slice(0, 10)
    .map(
      (o) =>
        `${o.path} owned by session ${o.owner}, which is not in the session table${o.closedAt !== null ? ` (closeSession at ${hexZxid(o.closedAt)})` : ''}`,
    );
  if (orphans.length > 10) evidence.push(`… and ${orphans.length - 10} more`);
  return {
    id: 'ZOOKEEPER-2355/ZOOKEEPER-5010',
    title: 'ephemeral znodes of a closed session survive on one member',
    member,
    source: 'data',
    evidence,
  };
}

/** Lines ZooKeeper itself writes when it sees divergence (digest checks, 3.6+) or refuses sessions (ZOOKEEPER-3911). */
export function detectFromLog(member: string, log: { file: string; lines: LogLine[] }): Signature[] {
  const out: Signature[] = [];
  const digest = log.lines.filter((l) => /digest mismatch/i.test(l.text));
  if (digest.length > 0) {
    out.push({
      id: 'digest-mismatch',
      title: "ZooKeeper's own tree digest disagreed with the leader's (3.6+ digest check)",
      member,
      source: 'log',
      evidence: digest.slice(0, 5).map((l) => cite(log.file, l)),
    });
  }
  const refused = log.lines.filter((l) => /Refusing session request/.test(l.text) && /has seen zxid/.test(l.text));
  if (refused.length > 0) {
    out.push({
      id: 'ZOOKEEPER-3911',
      title: 'clients had seen zxids this server does not have: acknowledged writes lost',
      member,
      source: 'log',
      evidence: refused.slice(0, 5).map((l) => cite(log.file, l)),
    });
  }
  return out;
}

/** The first kept line after L[at] that matches `re`, if it is within `within` lines of the file. */
function nextMatch(L: LogLine[], at: number, re: RegExp, within = 3): LogLine | null {
  for (let j = at + 1; j < L.length && L[j]!.lineNo <= L[at]!.lineNo + within; j++) if (re.test(L[j]!.text)) return L[j]!;
  return null;
}

/**
 * ZOOKEEPER-4409 (fixed in 3.9.3): when the connection to the leader breaks, the learner's
 * SyncThread can die on a NullPointerException in SendAckRequestProcessor ("this.learner.sock"
 * is null): "Severe unrecoverable error, from thread : SyncThread". Transactions it had queued
 * were already committed and applied in memory (commits do not wait for the learner's own log
 * write) but are never written to its log: a hole the next DIFF sync does not fill, as it
 * starts from the last *processed* zxid (the one the learner's election vote proposes). The
 * tree it serves holds them, and so do snapshots it takes later; until then a restart loses them.
 */
export function detect4409(member: string, gaps: Gap[], log: { file: string; lines: LogLine[] } | null): Signature | null {
  if (!log) return null;
  const L = log.lines;
  const evidence: string[] = [];
  for (let i = 0; i < L.length; i++) {
    if (!/Severe unrecoverable error, from thread : SyncThread/.test(L[i]!.text)) continue;
    const npe = nextMatch(L, i, /NullPointerException.*learner\.sock/);
    if (!npe) continue;
    evidence.push(cite(log.file, L[i]!), cite(log.file, npe));
    // The election vote it casts right after (threads interleave: it may be logged just before)
    // proposes the zxid it had processed, the one its next DIFF sync starts after.
    const near = L.filter((l) => /proposed zxid=0x/.test(l.text) && Math.abs(l.lineNo - L[i]!.lineNo) <= 40);
    const vote = near.sort((a, b) => Math.abs(a.lineNo - L[i]!.lineNo) - Math.abs(b.lineNo - L[i]!.lineNo))[0];
    if (vote) evidence.push(`${cite(log.file, vote)} (the zxid it had processed, which its next DIFF sync starts after)`);
  }
  if (evidence.length === 0) return null;
  // Holes a SNAP sync's snapshot covers are not this bug's trace.
  const holes = gaps.filter((g) => !g.coveredBy);
  if (holes.length === 0) evidence.push('no transaction is missing from its log: nothing it had applied was left unwritten this time');
  for (const h of holes) {
    evidence.push(
      `its log jumps from ${hexZxid(h.after)} to ${hexZxid(h.next)}; ${h.coveredLater ? `${basename(h.coveredLater.path)}, written later from memory, holds the missing transactions` : 'no snapshot holds the missing transactions: a restart loses them'}`,
    );
  }
  return {
    id: 'ZOOKEEPER-4409',
    title: 'SyncThread died on a NullPointerException in SendAckRequestProcessor: transactions applied in memory were never logged (fixed in 3.9.3)',
    member,
    source: holes.length > 0 ? 'data+log' : 'log',
    evidence,
  };
}

/**
 * ZOOKEEPER-4394 (fixed, with ZOOKEEPER-4646, in 3.9.3): a learner in a DIFF sync logs the
 * proposals it got before NEWLEADER and clears its list of them; a COMMIT for one of them that
 * arrives before UPTODATE then finds no packet: NullPointerException ("pif" is null), the
 * sync breaks off with the proposals logged but not applied, and the next DIFF sync (from the
 * last processed zxid) logs them again. FileTxnLog warns "Current zxid N is <= M" for each.
 */
export function detect4394(member: string, relogs: Relog[], log: { file: string; lines: LogLine[] } | null): Signature | null {
  const npe = log ? log.lines.filter((l) => /NullPointerException.*"pif" is null/.test(l.text)) : [];
  if (npe.length === 0) return null;
  const evidence = npe.slice(0, 5).map((l) => cite(log!.file, l));
  const again = log!.lines.filter((l) => /Current zxid \d+ is <= \d+/.test(l.text));
  if (again.length > 0) evidence.push(`${cite(log!.file, again[0]!)} (FileTxnLog warned ${again.length} time(s) of a zxid logged again)`);
  for (const r of relogs) evidence.push(describeRelog(r));
  return {
    id: 'ZOOKEEPER-4394',
    title:
      'NullPointerException in Learner.syncWithLeader (a COMMIT after NEWLEADER): the sync breaks off and the next one logs the same transactions again (fixed with ZOOKEEPER-4646 in 3.9.3)',
    member,
    source: relogs.length > 0 ? 'data+log' : 'log',
    evidence,
  };
}
