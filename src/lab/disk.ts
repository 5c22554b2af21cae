/**
 * A node's disk: the directory every file of the node lives on (its ZooKeeper data and logs, its
 * services' logs and data). With `kind: 'faultfs'` it is a faultfs mount over a backing
 * directory, and its faults (stall, delay, error) are faultfs' rules; with `kind: 'plain'` it is
 * an ordinary directory, for labs that need no disk faults.
 *
 * The runner never reads a file on a faulted disk itself (that would hang the runner with the
 * node): `readable` says whether it may.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { LabError, run } from './host.ts';
import type { DiskRecord } from './registry.ts';

export type DiskKind = DiskRecord['kind'];

export class NodeDisk {
  readonly node: string;
  readonly kind: DiskKind;
  /** Where the node's files go. */
  readonly root: string;
  readonly backing: string;

  private constructor(node: string, record: DiskRecord) {
    this.node = node;
    this.kind = record.kind;
    this.root = record.root;
    this.backing = record.backing;
  }

  static async create(node: string, record: DiskRecord): Promise<NodeDisk> {
    if (record.kind === 'faultfs') {
      throw new LabError(`${node}: faultfs disks are not available in this build yet (src/lab/faultfs.ts is missing); start the lab with disk: 'plain'`);
    }
    mkdirSync(record.root, { recursive: true });
    return new NodeDisk(node, record);
  }

  /** A disk recorded by another process (the CLI), without creating anything. */
  static attach(node: string, record: DiskRecord): NodeDisk {
    return new NodeDisk(node, record);
  }

  record(): DiskRecord {
    return { kind: this.kind, root: this.root, backing: this.backing };
  }

  /** The runner may read the node's files without risking a hang. */
  get readable(): boolean {
    return true;
  }

  /** Unmounts (a faultfs disk); a plain disk has nothing to undo. */
  async close(): Promise<void> {
    // nothing mounted
  }
}

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  /** The device number's minor: for FUSE, the connection's number under /sys/fs/fuse/connections. */
  device: string;
}

/** Unescapes mountinfo's octal escapes (\040 is a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Mounts at or below `dir`, deepest first, read from /proc/self/mountinfo (never by stat, which
 * would hang on a stalled FUSE mount).
 */
export function mountsUnder(dir: string): MountEntry[] {
  if (!dir.startsWith('/') || dir === '/') return [];
  const base = dir.replace(/\/+$/, '');
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (f.length < 10 || sep < 0) continue;
    const mountpoint = unescapeMount(f[4]!);
    if (mountpoint !== base && !mountpoint.startsWith(base + '/')) continue;
    out.push({ mountpoint, fstype: f[sep + 1]!, device: f[2]! });
  }
  return out.sort((a, b) => b.mountpoint.length - a.mountpoint.length);
}

/** Releases every mount under `dir`, stalled or not; returns the mount points released. */
export async function releaseMountsUnder(dir: string): Promise<string[]> {
  const released: string[] = [];
  for (const m of mountsUnder(dir)) {
    await run('umount', ['-l', m.mountpoint], { allowFailure: true, timeoutMs: 10_000 });
    released.push(m.mountpoint);
  }
  return released;
}
