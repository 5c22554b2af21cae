/** Shared pieces of the guard tests: guarded services in their own processes, under `zkwarden guard run` or alone. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { connect, createConnection } from 'node:net';
import type { GuardOptions, WatchdogStatus } from '../../src/guard/index.ts';

export { until } from '../until.ts';
export { nextElected } from '../recipes/helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
export const SERVICE = join(import.meta.dirname, 'fixtures', 'service.ts');
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');
/** tsx's loader by absolute URL: `--import tsx` would resolve from the working directory, which a test may put on another disk. */
export const TSX = import.meta.resolve('tsx');

export type Line = Record<string, unknown>;

/** A child process whose stdout is JSON lines (non-JSON lines are kept as { raw }). */
export class Proc {
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as Line);
      } catch {
        this.lines.push({ raw: l });
      }
    });
    createInterface({ input: this.child.stderr! }).on('line', (l) => void this.stderr.push(l));
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** The first line (after `from`) that matches; fails naming `what` with the lines seen. */
  async line(what: string, pred: (l: Line) => boolean, timeoutMs = 30_000, from = 0): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; stdout: ${JSON.stringify(this.lines.slice(-15))}; stderr: ${this.stderr.slice(-15).join(' | ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }
}

export interface ServiceConfig {
  connectString: string;
  path: string;
  name: string;
  node: string;
  host: string;
  port: number;
  logPath?: string;
  probes?: string[];
  gate?: boolean;
  deposition?: GuardOptions['deposition'];
  timing?: GuardOptions['timing'];
  watchdog?: 'env' | null;
}

export function serviceArgs(cfg: ServiceConfig): string[] {
  return ['--import', TSX, SERVICE, JSON.stringify(cfg)];
}

/** The fixture service alone (no watchdog). */
export function startService(cfg: ServiceConfig): Proc {
  return new Proc(process.execPath, serviceArgs({ watchdog: null, ...cfg }));
}

/** PING → PONG at HOST:PORT within timeoutMs (the fixture services' and the test servers' protocol). */
export function ping(address: string, timeoutMs = 2000): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = createConnection({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => s.write('PING\n'));
    s.on('data', (d: Buffer) => d.toString().includes('PONG') && done(true));
    s.on('error', () => done(false));
  });
}

/** An address for a service on the ensemble's own loopback subnet (127.a.b.1NN → 127.a.b.2NN). */
export function serviceHost(ensembleHost: string, n: number): string {
  return ensembleHost.replace(/\.\d+$/, `.${200 + n}`);
}

/** `zkwarden guard run [watchdogArgs] -- CMD...` */
export function guardRun(watchdogArgs: string[], command: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Proc {
  return new Proc(process.execPath, ['--import', TSX, CLI, 'guard', 'run', ...watchdogArgs, '--', ...command], env, cwd);
}

/** One STATUS round trip to a watchdog's control socket. */
export function watchdogStatus(address: string): Promise<WatchdogStatus> {
  return new Promise((resolve, reject) => {
    const sock = address.startsWith('@') ? connect(`\0${address.slice(1)}`) : connect({ host: address.split(':')[0], port: Number(address.split(':')[1]) });
    let buf = '';
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no status from ${address}`));
    }, 5000);
    sock.on('connect', () => sock.write('STATUS\n'));
    sock.on('data', (c: Buffer) => {
      buf += c.toString();
      if (!buf.includes('\n')) return;
      clearTimeout(t);
      sock.destroy();
      resolve(JSON.parse(buf.slice(0, buf.indexOf('\n'))) as WatchdogStatus);
    });
    sock.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}
