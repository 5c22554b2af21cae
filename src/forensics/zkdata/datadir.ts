/**
 * A server's data directory: `snapshot.<hex zxid>[.gz|.snappy]` and `log.<hex zxid>` files in
 * `version-2/` (or given directly). Files are ordered by the zxid in their names, as
 * ZooKeeper's Util.sortDataDir does; files with other names are ignored.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DataDirError } from './errors.ts';

export interface DataFile {
  path: string;
  zxid: number;
  size: number;
}

export interface DataDir {
  /** As given by the user. */
  dir: string;
  /** The directory holding the files. */
  filesDir: string;
  snapshots: DataFile[];
  logs: DataFile[];
}

const NAME = /^(snapshot|log)\.([0-9a-fA-F]+)(\.gz|\.snappy)?$/;

export function zxidFromName(name: string, prefix: 'snapshot' | 'log'): number | null {
  const m = NAME.exec(basename(name));
  if (!m || m[1] !== prefix || (prefix === 'log' && m[3])) return null;
  return parseInt(m[2]!, 16);
}

function listIn(dir: string): { snapshots: DataFile[]; logs: DataFile[] } {
  const snapshots: DataFile[] = [];
  const logs: DataFile[] = [];
  for (const name of readdirSync(dir)) {
    const m = NAME.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    const f = { path, zxid: parseInt(m[2]!, 16), size: st.size };
    if (m[1] === 'snapshot') snapshots.push(f);
    else if (!m[3]) logs.push(f);
  }
  snapshots.sort((a, b) => a.zxid - b.zxid);
  logs.sort((a, b) => a.zxid - b.zxid);
  return { snapshots, logs };
}

/**
 * Accepts a dataDir (with version-2/ inside), the version-2 directory itself, or
 * "SNAPDIR:LOGDIR" for servers with a separate dataLogDir.
 */
export function openDataDir(dir: string): DataDir {
  const parts = dir.includes(':') && !existsSync(dir) ? dir.split(':') : [dir];
  const found: { snapshots: DataFile[]; logs: DataFile[] } = { snapshots: [], logs: [] };
  let filesDir = '';
  for (const p of parts) {
    if (!existsSync(p) || !statSync(p).isDirectory()) throw new DataDirError(p, 'not a directory');
    const v2 = join(p, 'version-2');
    const d = existsSync(v2) && statSync(v2).isDirectory() ? v2 : p;
    filesDir ||= d;
    const l = listIn(d);
    found.snapshots.push(...l.snapshots);
    found.logs.push(...l.logs);
  }
  found.snapshots.sort((a, b) => a.zxid - b.zxid);
  found.logs.sort((a, b) => a.zxid - b.zxid);
  if (found.snapshots.length === 0 && found.logs.length === 0) {
    throw new DataDirError(dir, 'no ZooKeeper snapshot.* or log.* files here or in version-2/');
  }
  return { dir, filesDir, ...found };
}
