/**
 * A process's scheduler state from /proc, read without touching any disk: the stat file is
 * opened once, when the watchdog learns the pid (before the first heartbeat), and re-read at
 * offset 0 whenever needed. procfs answers from the kernel's task table, so a target stuck in
 * `D` state does not stall the read (stat takes no lock the target may hold, unlike cmdline).
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** R running, S sleeping, D uninterruptible (disk), T stopped, t traced, Z zombie, X dead, I idle; 'gone' once reaped. */
export type ProcState = 'R' | 'S' | 'D' | 'T' | 't' | 'Z' | 'X' | 'I' | 'gone';

export class ProcWatch {
  readonly pid: number;
  private fd: number | null;
  private readonly buf = Buffer.alloc(1024);

  /** Opens /proc/PID/stat now; a pid that does not exist reads as 'gone'. */
  constructor(pid: number) {
    this.pid = pid;
    try {
      this.fd = openSync(`/proc/${pid}/stat`, 'r');
    } catch {
      this.fd = null;
    }
  }

  state(): ProcState {
    if (this.fd === null) return 'gone';
    let n: number;
    try {
      n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    } catch {
      this.close();
      return 'gone';
    }
    // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
    const text = this.buf.toString('latin1', 0, n);
    const s = text[text.lastIndexOf(')') + 2];
    return s === 'R' || s === 'S' || s === 'D' || s === 'T' || s === 't' || s === 'Z' || s === 'X' || s === 'I' ? s : 'gone';
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
