/**
 * A node's disk: the directory every file of the node lives on (its ZooKeeper data and logs, its
 * services' logs and data). With `kind: 'faultfs'` (the default) it is a faultfs mount over a
 * backing directory (src/lab/faultfs.ts), whose faults — stall, delay, error, per operation class
 * and path — are the node's disk faults; with `kind: 'plain'` it is an ordinary directory, for
 * labs that need no disk faults.
 *
 * The runner never reads a file on a faulted disk itself (it would hang with the node): `readable`
 * says whether it may. The faultfs control socket and log live in the lab's state directory,
 * never on the mount.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FaultFs, FaultFsError, FaultFsInputError, faultFsMounts, releaseMount, type FaultFsStatus, type FaultRule, type OpClass } from './faultfs.ts';
import { LabEnvironmentError, LabUsageError } from './host.ts';
import type { EventSink } from './node.ts';
import type { DiskRecord } from './registry.ts';

export type DiskKind = DiskRecord['kind'];

/** Which requests a disk fault applies to: operation classes and a path glob relative to the disk root. */
export interface DiskScope {
  ops?: OpClass[];
  path?: string;
}

export interface NodeDiskOptions {
  /** Where the faultfs control socket and log go (the lab's state directory). */
  stateDir: string;
  /** The daemon outlives this process (a CLI lab). */
  detached: boolean;
  emit: EventSink;
}

export class NodeDisk {
  readonly node: string;
  readonly kind: DiskKind;
  /** Where the node's files go. */
  readonly root: string;
  readonly backing: string;
  private fs: FaultFs | null;
  private readonly record0: DiskRecord;
  private readonly emit: EventSink;
  /** A stall or delay rule is set, or requests stalled by one may still be pending. */
  private hanging = false;

  private constructor(node: string, record: DiskRecord, fs: FaultFs | null, emit: EventSink) {
    this.node = node;
    this.kind = record.kind;
    this.root = record.root;
    this.backing = record.backing;
    this.fs = fs;
    this.record0 = record;
    this.emit = emit;
  }

  static async create(node: string, record: DiskRecord, opts: NodeDiskOptions): Promise<NodeDisk> {
    if (record.kind === 'plain') {
      mkdirSync(record.root, { recursive: true });
      return new NodeDisk(node, record, null, opts.emit);
    }
    mkdirSync(record.backing, { recursive: true });
    let fs: FaultFs;
    try {
      fs = await FaultFs.mount({
        backing: record.backing,
        mountpoint: record.root,
        controlSocket: join(opts.stateDir, `${node}.faultfs.sock`),
        logFile: join(opts.stateDir, `${node}.faultfs.log`),
        detached: opts.detached,
      });
    } catch (e) {
      if (e instanceof FaultFsError && !(e instanceof FaultFsInputError)) throw new LabEnvironmentError('FUSE (faultfs)', e.message);
      throw e;
    }
    return new NodeDisk(node, { ...record, controlSocket: fs.controlSocket, daemonPid: fs.daemonPid }, fs, opts.emit);
  }

  /** A disk recorded by another process (the CLI): its faultfs is found again when first used. */
  static attach(node: string, record: DiskRecord, emit: EventSink): NodeDisk {
    const disk = new NodeDisk(node, record, null, emit);
    // Another process may have stalled it: assume the worst until we set the rules ourselves.
    disk.hanging = record.kind === 'faultfs';
    return disk;
  }

  record(): DiskRecord {
    return { ...this.record0 };
  }

  /** The disk's faultfs; a plain disk has none. */
  get faultfs(): FaultFs {
    if (this.kind === 'plain')
      throw new LabUsageError(`${this.node}'s disk is a plain directory (the lab was made with disk: 'plain'): it takes no disk faults`);
    this.fs ??= FaultFs.attach(this.root);
    return this.fs;
  }

  /** The runner may read the node's files without risking a hang. */
  get readable(): boolean {
    return !this.hanging;
  }

  /** Replaces the disk's fault rules (faultfs' rules: first match decides; [] is healthy). */
  async set(rules: FaultRule[] | FaultRule): Promise<void> {
    const list = Array.isArray(rules) ? rules : [rules];
    await this.faultfs.set(list);
    if (list.some((r) => r.mode === 'stall' || r.mode === 'delay')) this.hanging = true;
    this.emit({ kind: 'disk', action: 'set', target: this.node, detail: { rules: list } });
  }

  /** Requests in scope are never answered until released: their callers hang (S, and D once killed). */
  stall(scope: DiskScope = {}): Promise<void> {
    return this.set({ mode: 'stall', ...scope });
  }

  delay(delayMs: number, scope: DiskScope = {}): Promise<void> {
    return this.set({ mode: 'delay', delayMs, ...scope });
  }

  error(errno: string, scope: DiskScope = {}): Promise<void> {
    return this.set({ mode: 'error', errno, ...scope });
  }

  /** Answers every stalled request (or fails them with `errno`); the rules stay. Returns how many. */
  async release(opts: { errno?: string } = {}): Promise<number> {
    const n = await this.faultfs.release(opts);
    this.emit({ kind: 'disk', action: 'release', target: this.node, detail: { released: n, ...opts } });
    return n;
  }

  /**
   * Healthy again: no rules, and everything stalled answered — performed, or with `failPending`
   * failed with that errno (a controller reset loses what was in flight). Returns how many.
   */
  async heal(opts: { failPending?: string } = {}): Promise<number> {
    await this.faultfs.set([]);
    const n = await this.faultfs.release(opts.failPending !== undefined ? { errno: opts.failPending } : {});
    this.hanging = false;
    this.emit({ kind: 'disk', action: 'heal', target: this.node, detail: { released: n, ...(opts.failPending ? { failed: opts.failPending } : {}) } });
    return n;
  }

  /** The rules in force and the pending requests, from the faultfs daemon. */
  status(): Promise<FaultFsStatus> {
    return this.faultfs.status();
  }

  /** Unmounts (always works, even stalled); a plain disk has nothing to undo. */
  async close(): Promise<void> {
    if (this.fs) await this.fs.unmount();
  }
}

/** faultfs mounts at or below `dir` (from /proc/self/mountinfo, never by stat: a stalled mount would hang it), deepest first. */
export function mountsUnder(dir: string): { mountpoint: string; fstype: string }[] {
  if (!dir.startsWith('/') || dir === '/') return [];
  const base = dir.replace(/\/+$/, '');
  return faultFsMounts()
    .filter((m) => m.mountpoint === base || m.mountpoint.startsWith(base + '/'))
    .map((m) => ({ mountpoint: m.mountpoint, fstype: 'fuse.faultfs' }))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
}

/**
 * Releases every faultfs mount under `dir`, stalled or not, daemon alive, hung or dead. Returns the
 * mount points released and, for any that could not be, why (clean-up goes on with the rest).
 */
export async function releaseMountsUnder(dir: string, timeoutMs = 30_000): Promise<{ released: string[]; failed: string[] }> {
  const released: string[] = [];
  const failed: string[] = [];
  for (const m of mountsUnder(dir)) {
    try {
      await releaseMount(m.mountpoint, { timeoutMs });
      released.push(m.mountpoint);
    } catch (e) {
      failed.push(`mount ${m.mountpoint}: ${(e as Error).message}`);
    }
  }
  return { released, failed };
}

/** The exit hook's part: abort, detach and kill without waiting (needs the daemon alive to find the connection). */
export function releaseMountsUnderSync(dir: string): void {
  for (const m of mountsUnder(dir)) {
    try {
      FaultFs.attach(m.mountpoint).releaseSync();
    } catch {
      // its daemon is gone: the next clean-up's releaseMount finds the connection another way
    }
  }
}
