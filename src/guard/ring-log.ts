/**
 * A log that never blocks the code that logs: lines go into a bounded in-memory ring, and a
 * separate writer drains the ring to a file descriptor with at most one write in flight. When
 * the sink stalls (the seed's watchdog wrote its log to the dead disk and stopped deciding),
 * the ring keeps the newest lines, drops the oldest, counts them, and says so in the log once
 * the sink moves again. `log()` is synchronous, allocates one string, and does no I/O.
 *
 * The writer uses `fs.write` (libuv's thread pool): a stalled sink holds one pool thread, never
 * the event loop; nothing else in a watchdog uses the pool.
 */
import { write } from 'node:fs';

export interface RingLogOptions {
  /** Lines held while the sink cannot take them; default 2000. */
  capacity?: number;
  /** Where lines go (an fd opened before anything can stall: stderr, or a log file opened at start); none keeps lines in memory only. */
  fd?: number | null;
  /** One JSON object per line instead of text. */
  json?: boolean;
  /** Lines kept for `recent()` (status), flushed or not; default 50. */
  keepRecent?: number;
  /** Prefix of text lines, e.g. "watchdog[meta]". */
  source?: string;
}

export type LogFields = Record<string, string | number | boolean | null | undefined>;

const RETRY_MS = 100;

export class RingLog {
  private readonly capacity: number;
  private readonly fd: number | null;
  private readonly json: boolean;
  private readonly source: string;
  private readonly keepRecent: number;
  private readonly ring: string[] = [];
  private readonly recentLines: string[] = [];
  private _dropped = 0;
  private droppedUnreported = 0;
  private _written = 0;
  private _writeErrors = 0;
  private inFlightSince: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: RingLogOptions = {}) {
    this.capacity = options.capacity ?? 2000;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RangeError(`capacity: expected a positive integer, got ${this.capacity}`);
    this.fd = options.fd ?? null;
    this.json = options.json ?? false;
    this.source = options.source ?? '';
    this.keepRecent = options.keepRecent ?? 50;
  }

  /** Lines dropped so far because the sink could not keep up (or stalled). */
  get dropped(): number {
    return this._dropped;
  }

  /** Lines handed to the sink. */
  get written(): number {
    return this._written;
  }

  get writeErrors(): number {
    return this._writeErrors;
  }

  /** Lines waiting in the ring. */
  get pending(): number {
    return this.ring.length;
  }

  /** How long the write in flight has been waiting (ms), or null: what `status` shows of a stalled sink. */
  writeStalledMs(now = Date.now()): number | null {
    return this.inFlightSince === null ? null : now - this.inFlightSince;
  }

  /** The last lines logged (flushed or not). */
  recent(): string[] {
    return [...this.recentLines];
  }

  log(event: string, fields: LogFields = {}): void {
    const at = new Date().toISOString();
    let line: string;
    if (this.json) {
      line = JSON.stringify({ at, source: this.source || undefined, event, ...fields });
    } else {
      let s = `${at} ${this.source ? `${this.source} ` : ''}${event}`;
      for (const [k, v] of Object.entries(fields))
        if (v !== undefined) s += ` ${k}=${typeof v === 'string' && /[\s"]/.test(v) ? JSON.stringify(v) : String(v)}`;
      line = s;
    }
    this.recentLines.push(line);
    if (this.recentLines.length > this.keepRecent) this.recentLines.shift();
    if (this.fd === null || this.closed) return;
    this.ring.push(line);
    if (this.ring.length > this.capacity) {
      this.ring.shift();
      this._dropped++;
      this.droppedUnreported++;
    }
    this.pump();
  }

  /**
   * Resolves true once every line logged so far has been handed to the sink, false after
   * timeoutMs (a stalled sink): for a process about to exit, never for a decision.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.fd !== null && !this.closed && (this.ring.length > 0 || this.inFlightSince !== null)) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  }

  /** Stops writing (lines still pending stay unwritten); a write in flight is left to finish. */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private pump(): void {
    if (this.inFlightSince !== null || this.retryTimer || this.closed || this.fd === null || this.ring.length === 0) return;
    const lines = this.ring.splice(0, this.ring.length);
    if (this.droppedUnreported > 0) {
      lines.unshift(
        this.json
          ? JSON.stringify({ at: new Date().toISOString(), event: 'log.dropped', lines: this.droppedUnreported })
          : `${new Date().toISOString()} ${this.source ? `${this.source} ` : ''}log.dropped lines=${this.droppedUnreported}`,
      );
      this.droppedUnreported = 0;
    }
    const buf = Buffer.from(lines.join('\n') + '\n');
    this.inFlightSince = Date.now();
    write(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.inFlightSince = null;
      if (err) {
        this._writeErrors++;
        // A non-blocking pipe that is full: the same bytes again shortly. Anything else (EIO,
        // ENOSPC): those lines are lost, counted as dropped.
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') this.ring.unshift(...lines);
        else {
          this._dropped += lines.length;
          this.droppedUnreported += lines.length;
        }
        this.retryLater();
        return;
      }
      this._written += lines.length;
      if (n < buf.length) {
        // A short write: the rest goes next, as one line.
        this.ring.unshift(buf.subarray(n).toString().replace(/\n$/, ''));
      }
      this.pump();
    });
  }

  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, RETRY_MS);
    this.retryTimer.unref();
  }
}
