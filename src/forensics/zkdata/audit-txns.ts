/**
 * The audit's transaction comparison: the members' histories merged by zxid (one log entry per
 * member in memory at a time), then compared zxid by zxid by payload. Besides the conflicts it
 * finds the members' holes (transactions a later snapshot of their own may cover) and their
 * uncommitted tails (see UncommittedTail in audit.ts).
 */
import type { MemberFacts, TxnConflict } from './audit.ts';
import { type DataDir } from './datadir.ts';
import { describeTxn } from './format.ts';
import { epochOf, history, type HistoryEntry, type HistoryReport, newReport, txnFingerprint } from './history.ts';

/** The members the audit reads: their data directories, facts and (unique) names, by index. */
export interface AuditMembers {
  dds: DataDir[];
  facts: MemberFacts[];
  names: string[];
}

export interface TxnComparison {
  compared: number;
  conflicts: TxnConflict[];
  count: number;
  /** Per member: transactions the others have after its last zxid ("behind" in transactions). */
  behind: number[];
  /** Conflicts that exist only because a member's log has a hole a later snapshot may cover. */
  deferred: DeferredConflict[];
}

export interface DeferredConflict {
  members: string[];
  conflict: TxnConflict;
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

/**
 * The members outside a strict majority of equal values are the odd ones. Without a majority
 * (two members that disagree), the ones lacking the value are odd, or else all of them.
 */
export function oddMembers(names: string[], keys: (string | null)[], ambiguous: 'all' | 'none' = 'all'): string[] {
  const count = new Map<string, number>();
  for (const k of keys) count.set(String(k), (count.get(String(k)) ?? 0) + 1);
  for (const [k, n] of count) if (n * 2 > keys.length) return names.filter((_n, i) => String(keys[i]) !== k);
  const lacking = names.filter((_n, i) => keys[i] === null);
  if (lacking.length > 0 && lacking.length < names.length) return lacking;
  return ambiguous === 'all' ? [...names] : [];
}

/** The members' histories merged by zxid: each member's next entry (its head) and the zxid before it. */
class HistoryMerge {
  readonly reports: HistoryReport[];
  readonly heads: (HistoryEntry | null)[];
  /** Each member's last zxid before its head; null before its first. */
  readonly prev: (number | null)[];
  private readonly its: AsyncGenerator<HistoryEntry>[];

  private constructor(dds: DataDir[], force: boolean | undefined) {
    this.reports = dds.map(() => newReport());
    this.its = dds.map((dd, i) => history(dd, this.reports[i]!, { force }));
    this.heads = dds.map(() => null);
    this.prev = dds.map(() => null);
  }

  static async open(dds: DataDir[], force: boolean | undefined): Promise<HistoryMerge> {
    const m = new HistoryMerge(dds, force);
    const first = await Promise.all(m.its.map(async (it) => (await it.next()).value ?? null));
    first.forEach((h, i) => {
      m.heads[i] = h;
    });
    return m;
  }

  /** The lowest zxid any member holds next; null when every history has ended. */
  lowest(): number | null {
    let z = Infinity;
    for (const h of this.heads) if (h && h.header.zxid < z) z = h.header.zxid;
    return z === Infinity ? null : z;
  }

  /** Whether member i's head is at z. */
  holds(i: number, z: number): boolean {
    return this.heads[i]?.header.zxid === z;
  }

  /** Moves every member whose head is at z to its next entry. */
  async advance(z: number): Promise<void> {
    await Promise.all(
      this.heads.map(async (h, i) => {
        if (h && h.header.zxid === z) {
          this.prev[i] = z;
          this.heads[i] = (await this.its[i]!.next()).value ?? null;
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.its.map((it) => it.return(undefined)));
  }
}

/** Merges the members' histories by zxid and compares them transaction by transaction. */
export async function compareTxns(members: AuditMembers, opts: { force?: boolean; limit: number }): Promise<TxnComparison> {
  const { dds, facts, names } = members;
  const limit = opts.limit;
  const merge = await HistoryMerge.open(dds, opts.force);
  const { heads, prev } = merge;
  const conflicts: TxnConflict[] = [];
  const deferred: DeferredConflict[] = [];
  let count = 0;
  let compared = 0;
  const behind = dds.map(() => 0);
  const runs: TailRun[] = [];

  /** Whether zxid z (the lowest head) belongs to an uncommitted tail; if so it is recorded, not compared. */
  const tailCandidate = (z: number): boolean => {
    const e = epochOf(z);
    const holders: number[] = [];
    for (let i = 0; i < heads.length; i++) if (merge.holds(i, z)) holders.push(i);
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

  /** Compares the members' transactions at zxid z: same payload, or a conflict (or a hole). */
  const compareAt = (z: number): void => {
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
      if (p === null || z > lastKnown) {
        txns.push(undefined);
        continue;
      }
      const covered = dds[i]!.snapshots.some((s) => s.zxid >= z && s.zxid > p && (h === null || s.zxid < h.header.zxid));
      if (covered) {
        txns.push(undefined);
        continue;
      }
      const later = dds[i]!.snapshots.find((s) => s.zxid >= z && s.zxid <= lastKnown);
      if (later) {
        const holes = facts[i]!.holes;
        const last = holes[holes.length - 1];
        if (last && last.after === p && last.snapshot === later) {
          last.to = z;
          last.count++;
        } else holes.push({ after: p, from: z, to: z, count: 1, snapshot: later, verifiedAt: null });
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
      if (deferred.length < limit)
        deferred.push({ members: inHole.map((i) => names[i]!), conflict: { zxid: z, kind: 'missing', txns, odd: inHole.map((i) => names[i]!) } });
    } else if (distinct.size > 1) {
      count++;
      if (conflicts.length < limit) {
        conflicts.push({ zxid: z, kind: keys.includes(null) ? 'missing' : 'changed', txns, odd: oddMembers(keyNames, keys) });
      }
    }
  };

  try {
    for (let z = merge.lowest(); z !== null; z = merge.lowest()) {
      for (let i = 0; i < facts.length; i++) if (z > facts[i]!.lastZxid) behind[i]!++;
      if (!tailCandidate(z)) compareAt(z);
      await merge.advance(z);
      // A candidate tail ending here: what its holders log next decides it (see UncommittedTail).
      for (const run of runs) if (run.to === z) for (const j of run.holders) run.next.set(j, heads[j]?.header.zxid ?? null);
    }
  } finally {
    await merge.close();
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
      run.holders.forEach((j, k) =>
        facts[j]!.uncommitted.push({ from: run.from, to: run.to, count: run.count, epoch: run.epoch, after: run.after, supersededBy: verdicts[k]!.snap }),
      );
    } else {
      count += run.count;
      conflicts.push(...run.conflicts.slice(0, Math.max(0, limit - conflicts.length)));
    }
  }
  for (let i = 0; i < facts.length; i++) {
    const report = merge.reports[i]!;
    facts[i]!.gaps = report.gaps;
    facts[i]!.relogs = report.relogs;
    facts[i]!.warnings.push(...report.warnings);
    if (report.checksumErrors > 0) facts[i]!.suspect = true;
  }
  return { compared, conflicts, count, behind, deferred };
}
