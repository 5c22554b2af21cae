/**
 * A server's transaction history: its log files read in zxid order as one sequence, with the
 * holes in it. ZooKeeper numbers transactions epoch<<32 | counter; within an epoch the counter
 * grows by one, and a new epoch starts its counter at 1, so a hole is visible in one server's
 * files alone (except for whole epochs, which only a comparison with other servers shows).
 */
import { type DataDir, type DataFile } from './datadir.ts';
import { type LogEnd, type LogEntry, TxnLogReader, type TxnLogOptions } from './txnlog.ts';

export interface HistoryEntry extends LogEntry {
  file: string;
}

export interface Gap {
  /** The last zxid present before the hole (0 if none). */
  after: number;
  /** The first zxid present after it. */
  next: number;
  /** The snapshot that covers the hole (a SNAP sync), if any. */
  coveredBy: DataFile | null;
}

export interface HistoryReport {
  logEnds: { file: string; end: LogEnd | null; count: number }[];
  gaps: Gap[];
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
  return { logEnds: [], gaps: [], warnings: [], checksumErrors: 0, first: null, last: null };
}

/** The snapshot that makes a hole legitimate: written between the two zxids (a SNAP sync). */
function coveringSnapshot(dd: DataDir, after: number, next: number): DataFile | null {
  for (const s of dd.snapshots) if (s.zxid > after && s.zxid < next) return s;
  for (const s of dd.snapshots) if (s.zxid === after && follows(after, next)) return s;
  return null;
}

/**
 * Every transaction with zxid > fromZxid, in file order. Log files wholly before fromZxid are
 * not opened. Entries that go backwards (a zxid already seen) are skipped with a warning.
 */
export async function* history(dd: DataDir, report: HistoryReport, opts: TxnLogOptions & { fromZxid?: number } = {}): AsyncGenerator<HistoryEntry> {
  const from = opts.fromZxid ?? 0;
  const logs = dd.logs;
  let start = 0;
  for (let i = 0; i < logs.length; i++) if (logs[i]!.zxid <= from + 1) start = i;
  // The snapshot replay starts from is the first link: its successor must be the first entry.
  let prev: number | null = from > 0 ? from : null;
  for (let i = start; i < logs.length; i++) {
    const f = logs[i]!;
    const reader = new TxnLogReader(f.path, opts);
    for await (const e of reader.entries()) {
      const z = e.header.zxid;
      if (z <= from) continue;
      if (prev !== null && z <= prev) {
        report.warnings.push(`${f.path}: zxid 0x${z.toString(16)} at offset ${e.offset} does not follow 0x${prev.toString(16)}; skipped`);
        continue;
      }
      if (prev !== null && !follows(prev, z)) {
        report.gaps.push({ after: prev, next: z, coveredBy: coveringSnapshot(dd, prev, z) });
      }
      report.first ??= z;
      report.last = z;
      prev = z;
      yield { ...e, file: f.path };
    }
    report.logEnds.push({ file: f.path, end: reader.end, count: reader.count });
    report.checksumErrors += reader.checksumErrors;
    for (const w of reader.warnings) report.warnings.push(w);
    if (reader.end?.kind === 'torn' && i < logs.length - 1) {
      report.warnings.push(`${f.path}: torn entry at offset ${reader.end.offset} (${reader.end.detail}) but later logs exist`);
    }
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
