/**
 * The services' log: glog's line format (`I1124 16:32:09.244667  5366 meta_rpc.cc:1115] msg`,
 * local time, the thread id right-aligned in five columns), written to a file on the service's
 * own node disk.
 *
 * A Node service cannot log the way the seed's C++ services did (a write on the calling thread):
 * its one thread also runs the ZooKeeper client, and blocking it on a hung disk would stop the
 * heartbeats that, in the seed, kept the dead leader's session alive. So lines are written by one
 * `fs.write` in flight at a time (libuv's pool), and what a blocking logger's callers would have
 * done while its write hung — nothing — is what happens to lines made while a write has been in
 * flight longer than `stallMs`: they are dropped and counted, never written later with times from
 * inside the stall. When the disk takes writes again, one line says how many were lost.
 */
import { openSync, write, writeSync } from 'node:fs';

export type GlogLevel = 'I' | 'W' | 'E';

const p = (n: number, w = 2): string => String(n).padStart(w, '0');

/** One glog line (without the newline) for `at`, in local time. */
export function glogLine(level: GlogLevel, at: Date, tid: number, where: string, msg: string): string {
  const us = at.getMilliseconds() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
  return `${level}${p(at.getMonth() + 1)}${p(at.getDate())} ${p(at.getHours())}:${p(at.getMinutes())}:${p(at.getSeconds())}.${p(us, 6)} ${String(tid).padStart(5)} ${where}] ${msg}`;
}

export interface GlogFileOptions {
  /** A write in flight longer than this means the disk does not take writes: new lines are dropped. Default 2000. */
  stallMs?: number;
  /** Lines waiting behind the write in flight; beyond, the oldest are dropped. Default 1000. */
  capacity?: number;
  /** The thread id glog prints; default the process id. */
  tid?: number;
}

export class GlogFile {
  readonly path: string;
  private readonly fd: number;
  private readonly stallMs: number;
  private readonly capacity: number;
  private readonly tid: number;
  private queue: string[] = [];
  private inFlightSince: number | null = null;
  private droppedUnreported = 0;
  private _dropped = 0;

  /** Opens (appends to) the file now, before anything can stall. */
  constructor(path: string, opts: GlogFileOptions = {}) {
    this.path = path;
    this.fd = openSync(path, 'a');
    this.stallMs = opts.stallMs ?? 2000;
    this.capacity = opts.capacity ?? 1000;
    this.tid = opts.tid ?? process.pid;
  }

  get dropped(): number {
    return this._dropped;
  }

  info(where: string, msg: string): void {
    this.log('I', where, msg);
  }

  warn(where: string, msg: string): void {
    this.log('W', where, msg);
  }

  error(where: string, msg: string): void {
    this.log('E', where, msg);
  }

  log(level: GlogLevel, where: string, msg: string): void {
    if (this.inFlightSince !== null && performance.now() - this.inFlightSince > this.stallMs) {
      this.drop(1);
      return;
    }
    this.queue.push(glogLine(level, new Date(), this.tid, where, msg) + '\n');
    if (this.queue.length > this.capacity) this.drop(this.queue.splice(0, this.queue.length - this.capacity).length);
    this.flush();
  }

  /** Writes what is queued on the calling thread (a service about to exit on purpose). */
  flushSync(): void {
    if (this.inFlightSince !== null) return;
    const text = this.queue.join('');
    this.queue = [];
    if (text) {
      try {
        writeSync(this.fd, text);
      } catch {
        // exiting anyway
      }
    }
  }

  private drop(n: number): void {
    this._dropped += n;
    this.droppedUnreported += n;
  }

  private flush(): void {
    if (this.inFlightSince !== null || this.queue.length === 0) return;
    if (this.droppedUnreported > 0) {
      this.queue.unshift(
        glogLine('W', new Date(), this.tid, 'logging.cc:183', `dropped ${this.droppedUnreported} log line(s): the disk did not take writes`) + '\n',
      );
      this.droppedUnreported = 0;
    }
    const buf = Buffer.from(this.queue.join(''));
    this.queue = [];
    this.inFlightSince = performance.now();
    write(this.fd, buf, (err) => {
      this.inFlightSince = null;
      // EIO from a failing disk: the lines are gone, as they would be.
      if (err) this.drop(1);
      this.flush();
    });
  }
}
