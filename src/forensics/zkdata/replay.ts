/**
 * The tree of one server at a zxid: the newest usable snapshot at or before it, then the logs
 * replayed from the snapshot's zxid + 1 up to the zxid, with ZooKeeper's fuzzy-snapshot rules
 * (DataTree.apply). A snapshot is fuzzy: it may already hold changes of transactions after the
 * zxid in its name. When such a snapshot holds changes beyond the asked zxid, an older snapshot
 * is used instead, so the tree is exact rather than ahead of the zxid.
 */
import { type DataDir, type DataFile } from './datadir.ts';
import { ZkDataError } from './errors.ts';
import { type HistoryEntry, type HistoryReport, history, newReport } from './history.ts';
import { DataTree } from './tree.ts';

export interface TreeAtOptions {
  force?: boolean;
  keepData?: boolean;
  /** Called for every transaction applied (the audit collects session and path facts). */
  onTxn?: (e: HistoryEntry) => void;
}

export interface TreeAtResult {
  tree: DataTree;
  snapshot: DataFile | null;
  /** Transactions replayed on top of the snapshot. */
  replayed: number;
  /** The zxid the tree is at: the asked zxid, or less when the server's history ends before it. */
  reached: number;
  report: HistoryReport;
  warnings: string[];
}

/** The tree every ZooKeeper server starts with before any snapshot or transaction. */
export function initialTree(keepData = false): DataTree {
  const t = new DataTree({ keepData });
  const base = {
    czxid: 0,
    mzxid: 0,
    ctime: 0,
    mtime: 0,
    version: 0,
    cversion: 0,
    aversion: 0,
    ephemeralOwner: 0n,
    pzxid: 0,
    data: null,
    acl: '31:world:anyone',
  };
  t.addNode('', { ...base, numChildren: 1 });
  t.addNode('/zookeeper', { ...base, numChildren: 2 });
  t.addNode('/zookeeper/quota', { ...base });
  t.addNode('/zookeeper/config', { ...base, aversion: -1, acl: '1:world:anyone' });
  return t;
}

export async function treeAt(dd: DataDir, target: number = Number.MAX_SAFE_INTEGER, opts: TreeAtOptions = {}): Promise<TreeAtResult> {
  const warnings: string[] = [];
  const candidates = dd.snapshots.filter((s) => s.zxid <= target).reverse();
  let tree: DataTree | null = null;
  let snapshot: DataFile | null = null;
  for (let i = 0; i < candidates.length; i++) {
    const s = candidates[i]!;
    let t: DataTree;
    try {
      t = await DataTree.fromSnapshot(s.path, { force: opts.force, keepData: opts.keepData, snapZxid: s.zxid });
    } catch (e) {
      if (!(e instanceof ZkDataError)) throw e;
      // ZooKeeper too falls back to an older snapshot when the newest is unreadable.
      warnings.push(`snapshot skipped: ${e.message}`);
      continue;
    }
    const ahead = t.snapshot!.maxNodeZxid;
    if (ahead > target && i < candidates.length - 1) {
      warnings.push(`${s.path} is fuzzy beyond 0x${target.toString(16)} (holds changes up to 0x${ahead.toString(16)}); using an older snapshot`);
      continue;
    }
    if (ahead > target)
      warnings.push(
        `${s.path} holds changes up to 0x${ahead.toString(16)}, beyond 0x${target.toString(16)}, and no older snapshot exists: the tree may be ahead`,
      );
    tree = t;
    snapshot = s;
    break;
  }
  if (!tree) {
    if (dd.logs.length === 0) throw new ZkDataError(dd.dir, 0, `a snapshot at or before 0x${target.toString(16)}`, 'there is none and no logs');
    tree = initialTree(opts.keepData);
    if (dd.logs[0]!.zxid > 1)
      warnings.push(
        `no snapshot at or before 0x${target.toString(16)} and the oldest log starts at 0x${dd.logs[0]!.zxid.toString(16)}: earlier transactions are missing`,
      );
  }
  const from = snapshot ? snapshot.zxid : 0;
  tree.lastZxid = from;
  const report = newReport();
  let replayed = 0;
  for await (const e of history(dd, report, { fromZxid: from, force: opts.force })) {
    if (e.header.zxid > target) break;
    tree.apply(e.header, e.record);
    if (!e.checksumOk) tree.suspect = true;
    opts.onTxn?.(e);
    replayed++;
  }
  if (report.checksumErrors > 0) tree.suspect = true;
  for (const g of report.gaps) {
    if (!g.coveredBy && g.next <= target) {
      warnings.push(
        `transactions missing between 0x${g.after.toString(16)} and 0x${g.next.toString(16)} with no snapshot covering them: the tree misses their changes`,
      );
    }
  }
  warnings.push(...report.warnings);
  return { tree, snapshot, replayed, reached: tree.lastZxid, report, warnings };
}
