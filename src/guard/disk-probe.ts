/**
 * The disk probe: open, write, fsync, close and unlink a small file on the service's data disk,
 * on a dedicated worker thread with synchronous calls, so that a hung disk holds that one
 * thread and nothing else. Through `fs.promises` or callbacks the same calls would run on
 * libuv's pool of four threads, which `fs`, `dns.lookup` and `crypto` share: four hung
 * probes, or one hung probe beside the service's own hung writes, and the whole process stops
 * doing file, DNS and crypto work.
 *
 * The probe's file is reached through an open descriptor of its directory (`/proc/self/fd/N/name`,
 * opened by the worker at its first check and again after a failed one, so that a directory made
 * anew or a disk mounted again over the path is the one probed), so a check costs the operations on that file alone,
 * not a lookup of every directory above it: through FUSE, whose kernel cache keeps names for a
 * second, each of those lookups is a request to the disk, and on a disk that takes 500 ms per
 * request the plain path's open alone took 2 s (four requests), a slow disk judged dead. Where
 * /proc is not mounted the plain path is used.
 *
 * The worker's code is a string evaluated in the thread (no module file to read: the worker
 * starts, and starts again after a crash, without touching a disk), created when the gate
 * opens. At most one check is in flight. The worker reports every step, so a check is judged by
 * the age of its current step: a disk that is slow (each operation takes 500 ms) makes
 * progress, a stalled one does not. A hung worker is abandoned, never joined: the gate goes on
 * judging it by age, and if the disk comes back its late answers are taken as they come.
 *
 * The limit is the kernel's: a thread blocked in a stalled disk operation cannot be stopped,
 * and Node joins its worker threads when the process exits, so a process whose probe is stuck
 * cannot finish exiting until that I/O returns (nor can the kernel reap it). The guard resigns
 * over the network before that matters; ending the process is the watchdog's business.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { GuardConfigError } from './errors.ts';
import type { CheckContext, Probe, ProbeVerdict } from './probes.ts';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
let base = null;
let dirFd = -1;
parentPort.on('message', (m) => {
  const step = (s) => parentPort.postMessage({ seq: m.seq, step: s });
  let fd = -1;
  try {
    if (base === null) {
      dirFd = fs.openSync(m.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      const viaFd = '/proc/self/fd/' + dirFd;
      base = fs.existsSync(viaFd) ? viaFd : m.dir;
    }
    const path = base + '/' + m.name;
    const data = Buffer.alloc(m.bytes, 0x5a);
    fd = fs.openSync(path, 'w', 0o600);
    step('write');
    fs.writeSync(fd, data, 0, data.length, 0);
    step('fsync');
    fs.fsyncSync(fd);
    step('close');
    fs.closeSync(fd);
    fd = -1;
    step('unlink');
    fs.unlinkSync(path);
    parentPort.postMessage({ seq: m.seq, done: true });
  } catch (e) {
    if (fd >= 0) { try { fs.closeSync(fd); } catch {} }
    // The held directory may be the wrong one now (removed and made again, a disk mounted anew
    // over the path): after a failure the next check opens the directory by its path again.
    if (dirFd >= 0) { try { fs.closeSync(dirFd); } catch {} }
    dirFd = -1;
    base = null;
    parentPort.postMessage({ seq: m.seq, done: true, error: String((e && e.code) || '') + ' ' + String((e && e.message) || e) });
  }
});
`;

let probesMade = 0;

export interface DiskProbeOptions {
  /** A directory on the disk the service writes its data to. */
  dir: string;
  name?: string;
  /** Size of the probe's write; default 4096 (one page, one block). */
  bytes?: number;
  /** File name inside `dir`; default `.zkwarden-disk-probe-<pid>-<n>` (one per probe of this process). */
  fileName?: string;
  /** The longest one step may take before the disk counts as stalled (default: the timing's probeTimeoutMs). */
  timeoutMs?: number;
}

interface Pending {
  seq: number;
  step: string;
  progressAt: number;
  resolve: (v: ProbeVerdict) => void;
}

export class DiskProbe implements Probe {
  readonly name: string;
  readonly path: string;
  private readonly dir: string;
  private readonly fileName: string;
  readonly timeoutMs: number | undefined;
  private readonly bytes: number;
  private worker: Worker | null = null;
  private pending: Pending | null = null;
  private seq = 0;
  private _restarts = 0;
  private _completed = 0;

  constructor(o: DiskProbeOptions) {
    if (typeof o.dir !== 'string' || o.dir === '') throw new GuardConfigError('diskProbe.dir', 'expected a directory on the service data disk');
    this.bytes = o.bytes ?? 4096;
    if (!Number.isInteger(this.bytes) || this.bytes < 1 || this.bytes > 1 << 20)
      throw new GuardConfigError('diskProbe.bytes', `expected 1 to 1048576, got ${this.bytes}`);
    this.dir = o.dir;
    this.fileName = o.fileName ?? `.zkwarden-disk-probe-${process.pid}-${++probesMade}`;
    if (this.fileName === '' || this.fileName.includes('/'))
      throw new GuardConfigError('diskProbe.fileName', `expected a file name without '/', got '${this.fileName}'`);
    this.path = join(o.dir, this.fileName);
    this.name = o.name ?? `disk ${o.dir}`;
    this.timeoutMs = o.timeoutMs;
  }

  /** Checks that have answered (healthy or not). */
  get completed(): number {
    return this._completed;
  }

  /** Workers started again after one crashed (not after a hang: a hung worker is waited out). */
  get restarts(): number {
    return this._restarts;
  }

  async open(): Promise<void> {
    if (this.worker) return;
    const w = this.spawn();
    await new Promise<void>((resolve, reject) => {
      w.once('online', resolve);
      w.once('error', reject);
    });
  }

  check(_ctx: CheckContext): Promise<ProbeVerdict> {
    if (this.pending) return Promise.resolve({ ok: false, detail: 'internal: a check is already in flight' });
    const w = this.worker ?? this.spawn();
    const seq = ++this.seq;
    return new Promise<ProbeVerdict>((resolve) => {
      this.pending = { seq, step: 'open', progressAt: performance.now(), resolve };
      w.postMessage({ seq, dir: this.dir, name: this.fileName, bytes: this.bytes });
    });
  }

  lastProgressAt(): number | null {
    return this.pending?.progressAt ?? null;
  }

  currentStep(): string | null {
    return this.pending?.step ?? null;
  }

  close(): void {
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    // Not awaited: a worker blocked in the kernel would never confirm.
    void w.terminate().catch(() => undefined);
  }

  private spawn(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 } });
    this.worker = w;
    // The guard's own timers decide whether the process stays up, not an idle probe thread.
    w.unref();
    w.on('message', (m: { seq: number; step?: string; done?: boolean; error?: string }) => {
      const p = this.pending;
      if (!p || p.seq !== m.seq) return;
      p.progressAt = performance.now();
      if (m.step) p.step = m.step;
      if (!m.done) return;
      this.pending = null;
      this._completed++;
      p.resolve(m.error ? { ok: false, detail: `${p.step}: ${m.error.trim()}` } : { ok: true });
    });
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = null;
      this._restarts++;
      const p = this.pending;
      this.pending = null;
      p?.resolve({ ok: false, detail: `probe thread ${why}` });
    };
    w.on('error', (e) => lost(`failed: ${e.message}`));
    w.on('exit', (code) => lost(`exited (${code})`));
    return w;
  }
}

export function diskProbe(o: DiskProbeOptions): DiskProbe {
  return new DiskProbe(o);
}
