/**
 * A client in a process of its own, driven one slice at a time over a line protocol on its
 * stdin/stdout (bench/client/java/JavaClientDriver.java documents it; node-driver.ts speaks it
 * too). The runner keeps the schedule, so such a client's slices take their turns in the same
 * rounds and orders as the in-process clients'.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { CLOCK_TICK_US } from './proc.ts';

export interface SliceRequest {
  op: 'create' | 'getData' | 'setData' | 'delete';
  base: string;
  from: number;
  to: number;
  concurrency: number;
  dataBytes: number;
}

export interface SliceResult {
  wallMs: number;
  /** When the slice's first request was sent, in ms on the monotonic clock. */
  t0Ms: number;
  /** The driver process's CPU time (all threads) over the slice, in µs; 10 ms resolution (/proc's clock ticks). */
  cpuUs: number;
  /** Per request, in index order: latency in ms, and start in ms on the monotonic clock (CLOCK_MONOTONIC, as process.hrtime). */
  latencies: number[];
  starts: number[];
}

/** One driver process; commands are answered in order, one line each. */
export class SliceDriver {
  /** From the driver's "ready" line: the client's version, its runtime, the runtime's garbage collectors. */
  info = { version: '?', runtime: '?', gcs: '?' };
  private readonly pending: { resolve(line: string): void; reject(e: Error): void; timer: NodeJS.Timeout }[] = [];
  private stderr = '';
  private exited = false;
  /** No driver outlives the runner, even when it fails in the middle of a slice. */
  private readonly killOnExit = (): void => {
    this.child.kill('SIGKILL');
  };

  private constructor(
    private readonly name: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    process.once('exit', this.killOnExit);
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.once('error', (e) => this.fail(`could not start (${e.message})`));
    // Writing to a driver that has died fails with EPIPE; its exit is what gets reported.
    child.stdin.on('error', () => {});
    child.once('exit', (code, signal) => {
      this.exited = true;
      process.removeListener('exit', this.killOnExit);
      this.fail(`exited (${signal ?? `code ${code}`})`);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (!p) return;
      clearTimeout(p.timer);
      p.resolve(line);
    });
  }

  /** The driver's process id (its threads are in /proc/PID/task). */
  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Starts the driver and waits for its "ready" line. */
  static async start(name: string, [command, args]: [string, string[]], timeoutMs = 60_000): Promise<SliceDriver> {
    const d = new SliceDriver(name, spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      const ready = await d.answer(timeoutMs, 'start');
      if (!ready.startsWith('ready\t')) throw new Error(`${name} driver: expected "ready", got ${ready.slice(0, 200)}`);
      const [, version = '?', runtime = '?', gcs = '?'] = ready.split('\t');
      d.info = { version, runtime, gcs };
      return d;
    } catch (e) {
      d.child.kill('SIGKILL');
      throw e;
    }
  }

  private fail(why: string): void {
    const tail = this.stderr.trim().split('\n').slice(-3).join(' / ');
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new Error(`${this.name} driver ${why}${tail ? `: ${tail}` : ''}`));
    }
  }

  /** The next line the driver prints. */
  private answer(timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.pending.findIndex((p) => p.timer === timer);
        if (i >= 0) this.pending.splice(i, 1);
        // A late answer would be taken for the next command's: this driver is done.
        this.child.kill('SIGKILL');
        reject(new Error(`${this.name} driver: no answer to ${what} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.push({ resolve, reject, timer });
    });
  }

  /** Sends one command; resolves with the words after "ok", rejects on "error ...". */
  private async command(line: string, timeoutMs: number): Promise<string[]> {
    if (this.exited) throw new Error(`${this.name} driver is not running${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}`);
    const answer = this.answer(timeoutMs, line.split(' ')[0]);
    this.child.stdin.write(line + '\n');
    const reply = await answer;
    if (reply === 'ok' || reply.startsWith('ok ')) return reply.split(' ').slice(1);
    throw new Error(`${this.name}: ${reply.replace(/^error /, '')}`);
  }

  async connect(connectString: string, sessionMs: number): Promise<void> {
    await this.command(`connect ${connectString} ${sessionMs}`, 30_000);
  }

  async run(s: SliceRequest): Promise<SliceResult> {
    const n = s.to - s.from;
    // Generous: a slice at 1 outstanding on a loaded machine is a few ms per request.
    const words = await this.command(`run ${s.op} ${s.base} ${s.from} ${s.to} ${s.concurrency} ${s.dataBytes}`, 60_000 + 20 * n);
    const v = words.map(Number);
    if (v.length !== 3 + 2 * n || v.some((x) => !Number.isFinite(x)))
      throw new Error(`${this.name}: a malformed reply to run (${words.length} words for ${n} requests)`);
    const t0 = v[2];
    const latencies = new Array<number>(n);
    const starts = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      latencies[i] = v[3 + 2 * i] / 1e6;
      starts[i] = (t0 + v[4 + 2 * i]) / 1e6;
    }
    return { wallMs: v[0] / 1e6, t0Ms: t0 / 1e6, cpuUs: v[1] * CLOCK_TICK_US, latencies, starts };
  }

  /** Closes the session, then the driver (it exits at the end of its stdin); killed if it does not. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await this.command('close', 20_000);
    } finally {
      this.child.stdin.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
  }
}
