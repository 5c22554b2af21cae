/**
 * Known ZooKeeper divergence bugs, recognised from what they leave behind: holes in a server's
 * transaction history, ephemerals of closed sessions, and lines in the server's own log.
 * Each signature names the issue and quotes its evidence; none is claimed without evidence.
 */
import { readFileSync } from 'node:fs';
import { hexZxid } from './format.ts';
import { type Gap } from './history.ts';

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
  const interesting = /Getting a (snapshot|diff) from (the )?leader|Snapshotting: 0x|Exception when following the leader|Truncating log|digest mismatch|Digest mismatch|Refusing session request|has seen zxid|NEWLEADER|Got zxid 0x|Learner received NEWLEADER|ZooKeeper state changed|Unexpected extra paths under session/;
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
  const holes = gaps.filter((g) => !g.coveredBy);
  const evidence: string[] = holes.map((g) => `transaction log jumps from ${hexZxid(g.after)} to ${hexZxid(g.next)} and no snapshot between them exists on disk`);
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
        if (t.includes(`Snapshotting: ${snapZxid}`)) persisted = true;
        if (/Getting a snapshot from leader/.test(t)) break;
        if (!failed && t.includes('Exception when following the leader')) failed = L[j]!;
        if (failed && /Getting a diff from (the )?leader/.test(t)) { diff = L[j]!; break; }
      }
      if (!persisted && failed && diff) {
        logHit = true;
        evidence.push(cite(log.file, L[i]!), cite(log.file, failed), cite(log.file, diff), `no "Snapshotting: ${snapZxid}" between them`);
      }
    }
  }
  if (holes.length === 0 && !logHit) return null;
  if (holes.length > 0 && !logHit) {
    evidence.push(log
      ? `${log.file} shows no SNAP sync cut short before a DIFF: the hole may have another cause (lost or removed log writes)`
      : 'no server log given: the SNAP-then-DIFF sequence cannot be confirmed (pass --server-logs)');
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
  const evidence = orphans.slice(0, 10).map((o) => `${o.path} owned by session ${o.owner}, which is not in the session table${o.closedAt !== null ? ` (closeSession at ${hexZxid(o.closedAt)})` : ''}`);
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
    out.push({ id: 'digest-mismatch', title: 'ZooKeeper\'s own tree digest disagreed with the leader\'s (3.6+ digest check)', member, source: 'log', evidence: digest.slice(0, 5).map((l) => cite(log.file, l)) });
  }
  const refused = log.lines.filter((l) => /Refusing session request/.test(l.text) && /has seen zxid/.test(l.text));
  if (refused.length > 0) {
    out.push({ id: 'ZOOKEEPER-3911', title: 'clients had seen zxids this server does not have: acknowledged writes lost', member, source: 'log', evidence: refused.slice(0, 5).map((l) => cite(log.file, l)) });
  }
  return out;
}
