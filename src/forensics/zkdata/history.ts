/**
 * A server's transaction history: its log files read in zxid order as one sequence, with the
 * holes in it. ZooKeeper numbers transactions epoch<<32 | counter; within an epoch the counter
 * grows by one, and a new epoch starts its counter at 1, so a hole is visible in one server's
 * files alone (except for whole epochs, which only a comparison with other servers shows).
 */
import { crc32 } from 'node:zlib';
import { type DataDir, type DataFile } from './datadir.ts';
import { describeTxn, hexZxid } from './format.ts';
import { type LogEnd, type LogEntry, TxnLogReader, type TxnLogOptions } from './txnlog.ts';

export interface HistoryEntry extends LogEntry {
  file: string;
}

/** Where one copy of a transaction sits, and what it says. */
export interface TxnCopy {
  file: string;
  offset: number;
  text: string;
}

/**
 * A run of transactions one server logged a second time: its zxids go back to ones it already
 * logged and repeat them. A learner re-synced with a DIFF from its last *processed* zxid
 * (Learner.syncWithLeader) logs again every transaction it had logged but not yet applied, for
 * instance when a sync broke off after NEWLEADER (ZOOKEEPER-4394's NullPointerException); its
 * FileTxnLog then warns "Current zxid N is <= M". Each re-logged entry is compared with the
 * first copy, read again from the files (bounded memory: one entry of each copy at a time).
 */
export interface Relog {
  /** First and last zxid logged again. */
  from: number;
  to: number;
  count: number;
  /** Where the repeated run starts and ends (it may run on into the next log file). */
  start: { file: string; offset: number };
  end: { file: string; offset: number };
  /** Re-logged entries equal to their first copy. */
  identical: number;
  /** Entries whose first copy differs: counted exactly, the first few kept with both versions. */
  differing: number;
  differences: { zxid: number; first: TxnCopy; again: TxnCopy }[];
  /**
   * Re-logged entries whose first copy could not be read again (skipped under --force), or
   * written out of order after the files were indexed (a live data directory): they cannot be
   * compared. An entry with no earlier copy at all is not re-logged: it is the member's only
   * copy of that transaction (see history).
   */
  unmatched: number;
}

/**
 * What must be equal for two copies of a transaction to count as the same one. A failed multi
 * changes nothing, and ZooKeeper does not log it the same way everywhere: members that logged
 * the proposal keep the sub-transactions before the failing one as they were, while another can
 * log a copy in which DataTree.processTxn has already retyped them as errors but kept their
 * original bytes (so they decode as ErrorTxn with a meaningless code). Seen on 3.8.0 ensembles
 * in the audit tests, on one member at random: the request object that is logged is the one
 * the tree applies.
 * Such a multi is compared by its header and its number of operations alone.
 */
export function txnFingerprint(e: LogEntry): string {
  const rec = e.record;
  if (rec?.kind === 'multi' && rec.txns.some((t) => t.type === TXN_ERROR)) {
    const h = e.header;
    return `failed-multi:${h.clientId}:${h.cxid}:${h.time}:${rec.txns.length}`;
  }
  return `${e.payload.length}:${crc32(e.payload)}:${e.storedChecksum}`;
}

/** OpCode.error, the type of a multi's failed (and, once processed, of every) sub-transaction. */
const TXN_ERROR = -1;

/** Most differing re-logged entries kept with both versions (the count stays exact). */
const MAX_DIFFERENCES = 10;

export interface Gap {
  /** The last zxid present before the hole (0 if none). */
  after: number;
  /** The first zxid present after it. */
  next: number;
  /** The snapshot that covers the hole (a SNAP sync), if any. */
  coveredBy: DataFile | null;
  /** Set by the audit: a snapshot written after the hole that was shown to hold its transactions. */
  coveredLater?: DataFile;
}

export interface HistoryReport {
  logEnds: { file: string; end: LogEnd | null; count: number }[];
  gaps: Gap[];
  relogs: Relog[];
  warnings: string[];
  checksumErrors: number;
  first: number | null;
  last: number | null;
}

export const epochOf = (zxid: number): number => Math.floor(zxid / 0x100000000);
export const counterOf = (zxid: number): number => zxid % 0x100000000;

/** True when `next` can follow `prev` with no transaction between them. */
export function follows(prev: number, next: number): boolean {
  if (next === prev + 1) return true;
  return epochOf(next) > epochOf(prev) && counterOf(next) === 1;
}

export function newReport(): HistoryReport {
  return { logEnds: [], gaps: [], relogs: [], warnings: [], checksumErrors: 0, first: null, last: null };
}

/**
 * The snapshot that makes a hole legitimate (a SNAP sync): written between the two zxids, at
 * the one `next` follows. A learner in a SNAP sync applies what is committed before NEWLEADER
 * in memory, snapshots at its last processed zxid and logs from the next one on
 * (Learner.syncWithLeader), so its log resumes right after the snapshot. A snapshot further
 * back covers only the zxids up to its own: the ones after it are missing from the log and
 * from the snapshot alike, as the audit's merge counts them (compareTxns), and the gap stays
 * uncovered here too, so that the gaps, the holes and the signatures tell one story.
 */
function coveringSnapshot(dd: DataDir, after: number, next: number): DataFile | null {
  for (const s of dd.snapshots) if (s.zxid > after && s.zxid < next && follows(s.zxid, next)) return s;
  return null;
}

/** A set of zxids kept as sorted, disjoint runs of consecutive values (a log's zxids come in few long runs). */
class ZxidSet {
  private readonly runs: { from: number; to: number }[] = [];

  /** Index of the last run starting at or before z, or -1. */
  private find(z: number): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.runs[mid]!.from <= z) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi;
  }

  has(z: number): boolean {
    const k = this.find(z);
    return k >= 0 && z <= this.runs[k]!.to;
  }

  add(z: number): void {
    const k = this.find(z);
    const at = this.runs[k];
    if (at && z <= at.to) return;
    const next = this.runs[k + 1];
    if (at && at.to + 1 === z) {
      at.to = z;
      if (next && next.from === z + 1) {
        at.to = next.to;
        this.runs.splice(k + 1, 1);
      }
    } else if (next && next.from === z + 1) next.from = z;
    else this.runs.splice(k + 1, 0, { from: z, to: z });
  }
}

/**
 * A stretch of one log file holding the first copies (in file order) of consecutive zxids:
 * offsets of its first and last entry.
 */
interface FirstCopyStretch {
  index: number;
  offset: number;
  lastOffset: number;
  from: number;
  to: number;
}

/**
 * Indexes the logs (zxids and offsets only, see TxnLogReader.zxids): which entries are the
 * first copy of their zxid in file order, as stretches, and whether those come in zxid order.
 */
async function indexFirstCopies(
  logs: DataFile[],
  start: number,
  from: number,
  opts: TxnLogOptions,
): Promise<{ stretches: FirstCopyStretch[][]; ordered: boolean }> {
  const seen = new ZxidSet();
  const stretches: FirstCopyStretch[][] = logs.map(() => []);
  let ordered = true;
  let highest = -Infinity;
  for (let i = start; i < logs.length; i++) {
    let cur: FirstCopyStretch | null = null;
    for await (const { offset, zxid: z } of new TxnLogReader(logs[i]!.path, opts).zxids()) {
      if (z <= from || seen.has(z)) {
        cur = null;
        continue;
      }
      seen.add(z);
      if (z < highest) ordered = false;
      highest = Math.max(highest, z);
      if (cur && z === cur.to + 1) {
        cur.to = z;
        cur.lastOffset = offset;
        continue;
      }
      cur = { index: i, offset, lastOffset: offset, from: z, to: z };
      stretches[i]!.push(cur);
    }
  }
  return { stretches, ordered };
}

/**
 * The first copies of a re-logged run, read again from the files, up to where the run starts.
 * They are normally consecutive in one stretch, so the cursor moves forward through them; when
 * a copy is not where the last one left off (a re-sync can roll the log into a file named after
 * the re-logged zxid, so files sorted by name interleave two syncs), the cursor reopens at the
 * first file whose zxid range holds it and looks for its first occurrence.
 */
class FirstCopies {
  private it: AsyncGenerator<HistoryEntry> | null = null;
  private head: HistoryEntry | null = null;

  constructor(
    private readonly logs: DataFile[],
    /** First file, in iteration order, whose zxids span this one (null: none does). */
    private readonly locate: (zxid: number) => number | null,
    private readonly stop: { index: number; offset: number },
    private readonly opts: TxnLogOptions,
  ) {}

  private async open(fromIndex: number): Promise<void> {
    const { logs, stop, opts } = this;
    await this.it?.return(undefined);
    this.it = (async function* (): AsyncGenerator<HistoryEntry> {
      for (let j = fromIndex; j <= stop.index; j++) {
        const f = logs[j]!;
        for await (const e of new TxnLogReader(f.path, { ...opts, force: true }).entries()) {
          if (j === stop.index && e.offset >= stop.offset) return;
          yield { ...e, file: f.path };
        }
      }
    })();
    this.head = null;
  }

  private async advance(): Promise<void> {
    const n = await this.it!.next();
    this.head = n.done ? null : n.value;
  }

  async find(zxid: number): Promise<HistoryEntry | null> {
    // The common case: the next first copy follows the previous one.
    if (this.head && this.head.header.zxid <= zxid) {
      while (this.head && this.head.header.zxid < zxid) await this.advance();
      if (this.head?.header.zxid === zxid) return this.take();
    }
    const from = this.locate(zxid);
    if (from === null) return null;
    await this.open(from);
    for (await this.advance(); this.head; await this.advance()) if (this.head.header.zxid === zxid) return this.take();
    return null;
  }

  private async take(): Promise<HistoryEntry> {
    const hit = this.head!;
    await this.advance();
    return hit;
  }

  async close(): Promise<void> {
    await this.it?.return(undefined);
  }
}

/** The one warning line a re-logged run gets. */
export function describeRelog(r: Relog): string {
  const where =
    r.start.file === r.end.file
      ? `at offsets ${r.start.offset}–${r.end.offset} of ${r.start.file}`
      : `from offset ${r.start.offset} of ${r.start.file} to offset ${r.end.offset} of ${r.end.file}`;
  const span = r.from === r.to ? `zxid ${hexZxid(r.from)}` : `zxids ${hexZxid(r.from)}–${hexZxid(r.to)}`;
  const verdict =
    r.differing > 0
      ? `${r.differing} DIFFERENT from the first copy`
      : r.unmatched > 0
        ? `${r.identical} identical to the first copy, ${r.unmatched} whose first copy could not be read again`
        : 'all identical to the first copy';
  return `${span} logged again ${where} after a re-sync (${r.count} entr${r.count === 1 ? 'y' : 'ies'}, ${verdict})`;
}

/**
 * Every transaction with zxid > fromZxid, each once, in zxid order. Log files wholly before
 * fromZxid are not opened (as ZooKeeper's FileTxnLog.getLogFiles). An entry whose zxid an
 * earlier entry in file order already holds is a re-logged copy (see Relog): compared with the
 * first copy and reported once per run in `report.relogs`, not yielded.
 *
 * File order is ZooKeeper's own: on restart FileTxnSnapLog.fastForwardFromEdits applies every
 * entry of the files sorted by name, repeats included (it logs "highestZxid > next log" and
 * processes the entry anyway). So the first copy in file order is the one yielded, and the
 * comparison across members and the replay use it. For identical copies applying the later
 * one again is the same tree: replaying a run of transactions the tree already holds changes
 * nothing under processTxn's idempotent replay rules (a create finds its node, cversion and
 * pzxid only move forward). Copies that differ are the server disagreeing with itself: the
 * audit reports both versions and counts the member as diverged.
 *
 * Re-syncs make files whose names interleave (log.A holds A… and then an older run, log.B with
 * A < B holds B… and more): an entry can go back below zxids already read and still be the
 * only copy of its zxid on disk. ZooKeeper applies it on restart like any other, so it is part
 * of the history, not a hole: a first pass indexes the files' zxids (offsets only, no decoding)
 * to tell first copies from re-logged ones, and when first copies do not come in zxid order the
 * history is yielded stretch by stretch in zxid order after the file-order pass that compares
 * the re-logged copies. Gaps are judged on what is yielded, so they are the zxids no log file
 * holds at all.
 */
export async function* history(dd: DataDir, report: HistoryReport, opts: TxnLogOptions & { fromZxid?: number } = {}): AsyncGenerator<HistoryEntry> {
  const from = opts.fromZxid ?? 0;
  const logs = dd.logs;
  let start = 0;
  for (let i = 0; i < logs.length; i++) if (logs[i]!.zxid <= from + 1) start = i;
  const { stretches, ordered } = await indexFirstCopies(logs, start, from, opts);
  // The snapshot replay starts from is the first link: its successor must be the first entry.
  let prev: number | null = from > 0 ? from : null;
  /** Bookkeeping for an entry about to be yielded: the gap before it, the history's ends. */
  const yielding = (z: number): void => {
    if (prev !== null && !follows(prev, z)) report.gaps.push({ after: prev, next: z, coveredBy: coveringSnapshot(dd, prev, z) });
    report.first ??= z;
    report.last = z;
    prev = z;
  };
  // Which zxids this pass has read: an entry is a first copy or a re-logged one by it.
  const seen = new ZxidSet();
  let run: Relog | null = null;
  let firsts: FirstCopies | null = null;
  // The zxid range each file read so far holds: where a re-logged zxid's first copy can be.
  const ranges: { min: number; max: number }[] = [];
  const locate = (zxid: number): number | null => {
    for (let k = start; k < ranges.length; k++) if (ranges[k] && ranges[k]!.min <= zxid && zxid <= ranges[k]!.max) return k;
    return null;
  };
  const endRun = async (): Promise<void> => {
    if (!run) return;
    report.relogs.push(run);
    report.warnings.push(describeRelog(run));
    run = null;
    await firsts?.close();
    firsts = null;
  };
  try {
    for (let i = start; i < logs.length; i++) {
      const f = logs[i]!;
      const reader = new TxnLogReader(f.path, opts);
      for await (const e of reader.entries()) {
        const z = e.header.zxid;
        if (z <= from) continue;
        const range = ranges[i];
        if (range) {
          range.min = Math.min(range.min, z);
          range.max = Math.max(range.max, z);
        } else ranges[i] = { min: z, max: z };
        const first = !seen.has(z);
        seen.add(z);
        // A first copy below what was yielded, in files indexed as in order: written since the
        // index was made (a live data directory). It is counted as a re-logged entry that has
        // no readable first copy, and not yielded: the merge needs zxid order.
        if (first && (!ordered || prev === null || z > prev)) {
          await endRun();
          if (ordered) {
            yielding(z);
            yield { ...e, file: f.path };
          }
          continue;
        }
        if (!run || z !== run.to + 1) {
          await endRun();
          firsts = new FirstCopies(logs, locate, { index: i, offset: e.offset }, opts);
          run = {
            from: z,
            to: z,
            count: 0,
            start: { file: f.path, offset: e.offset },
            end: { file: f.path, offset: e.offset },
            identical: 0,
            differing: 0,
            differences: [],
            unmatched: 0,
          };
        }
        const r: Relog = run;
        r.to = z;
        r.count++;
        r.end = { file: f.path, offset: e.offset };
        const copy = await firsts!.find(z);
        if (!copy) r.unmatched++;
        else if (txnFingerprint(copy) === txnFingerprint(e)) r.identical++;
        else {
          r.differing++;
          if (r.differences.length < MAX_DIFFERENCES) {
            r.differences.push({
              zxid: z,
              first: { file: copy.file, offset: copy.offset, text: describeTxn(copy) },
              again: { file: f.path, offset: e.offset, text: describeTxn(e) },
            });
          }
        }
      }
      report.logEnds.push({ file: f.path, end: reader.end, count: reader.count });
      report.checksumErrors += reader.checksumErrors;
      for (const w of reader.warnings) report.warnings.push(w);
      if (reader.end?.kind === 'torn' && i < logs.length - 1) {
        report.warnings.push(`${f.path}: torn entry at offset ${reader.end.offset} (${reader.end.detail}) but later logs exist`);
      }
    }
    await endRun();
    if (ordered) return;
    // First copies out of zxid order: read again, stretch by stretch, in zxid order (the
    // entries the file-order pass took for first copies, by offset).
    for (const st of stretches.flat().sort((a, b) => a.from - b.from)) {
      const f = logs[st.index]!;
      for await (const e of new TxnLogReader(f.path, { ...opts, force: true }).entries()) {
        if (e.offset < st.offset) continue;
        if (e.offset > st.lastOffset) break;
        if (e.header.zxid <= from) continue;
        yielding(e.header.zxid);
        yield { ...e, file: f.path };
      }
    }
  } finally {
    await (firsts as FirstCopies | null)?.close();
  }
}

/** The last zxid of a server's logs, reading only from the newest non-empty log backwards. */
export async function lastLoggedZxid(dd: DataDir, opts: TxnLogOptions = {}): Promise<{ zxid: number | null; end: LogEnd | null; file: string | null }> {
  for (let i = dd.logs.length - 1; i >= 0; i--) {
    const f = dd.logs[i]!;
    const reader = new TxnLogReader(f.path, opts);
    let last: number | null = null;
    for await (const e of reader.entries()) last = Math.max(last ?? 0, e.header.zxid);
    if (last !== null) return { zxid: last, end: reader.end, file: f.path };
  }
  return { zxid: null, end: null, file: null };
}
