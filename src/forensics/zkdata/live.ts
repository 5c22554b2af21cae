/**
 * Is a data directory in use by a running server? ZooKeeper keeps its current transaction log
 * open, so a process with an open file inside the directory is the sign (read from /proc; on
 * systems without it nothing is reported). The audit still runs — a live member's files move
 * while they are read — but says so.
 */
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

/** The pids holding a file open under `dir` (its real path), at most a few. */
export function processesUsing(dir: string, max = 4): number[] {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return [];
  }
  const prefix = real.endsWith('/') ? real : `${real}/`;
  const out: number[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return [];
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(join('/proc', pid, 'fd'));
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(join('/proc', pid, 'fd', fd));
      } catch {
        continue;
      }
      if (target.startsWith(prefix)) {
        out.push(Number(pid));
        break;
      }
    }
    if (out.length >= max) break;
  }
  return out;
}
