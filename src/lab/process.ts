/**
 * Processes that run on a lab node: the command line that puts a process in the node's cpu
 * cgroup and network namespace before it becomes the real program, and `LabProcess`, a handle
 * that reads its state from /proc and delivers the process faults (kill -9, SIGSTOP, SIGCONT).
 *
 * The wrapper is `sh -c 'echo $$ > cgroup.procs; exec nsenter --net=NS -- CMD…'`: the shell joins
 * the cgroup with its own pid, then execs nsenter, which enters the namespace and execs the
 * command — one pid throughout, in the cgroup before the real program's first instruction, so no
 * CPU limit can miss a moment of it. `nsenter --net` enters only the network namespace, unlike
 * `ip netns exec`, which also gives a private mount namespace that misses later mounts (a faultfs
 * mounted again after its daemon died).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CpuCgroup } from './cgroup.ts';
import { LabError, netnsPath } from './host.ts';
import {
  allThreadsStopped,
  cgroupOf,
  cpuTimeMs,
  identify,
  identityAlive,
  processState,
  signalPid,
  threadStates,
  type ProcessIdentity,
  type ProcState,
} from './proc.ts';

// $1 the cgroup's procs file, $2 the namespace, $3 a file for stdout and stderr, $4 a working directory ('' for none).
const ENTER_NODE =
  'echo $$ > "$1" || exit 125; ns="$2"; out="$3"; dir="$4"; shift 4; ' +
  'if [ -n "$dir" ]; then cd "$dir" || exit 125; fi; if [ -n "$out" ]; then exec >>"$out" 2>&1; fi; exec nsenter --net="$ns" -- "$@"';

/**
 * The command line that runs `command args` inside a node (its cgroup, then its namespace). The
 * output file and the working directory are opened by the process itself, never by the runner:
 * on a stalled node disk the open (or a spawn's chdir, which the parent waits for) would hang
 * whoever does it.
 */
export function nodeCommandLine(
  cgroupProcsFile: string,
  netns: string,
  command: string,
  args: string[],
  outputFile = '',
  cwd = '',
): { command: string; args: string[] } {
  return { command: '/bin/sh', args: ['-c', ENTER_NODE, 'zkwarden-node', cgroupProcsFile, netnsPath(netns), outputFile, cwd, command, ...args] };
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Where stdout and stderr go: a file (appended, opened by the process itself), 'pipe' (readable from `child`), 'inherit' or 'ignore' (default). */
  output?: string | 'pipe' | 'inherit' | 'ignore';
  /** Outlive this process (the CLI's detached labs). */
  detached?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class LabProcess {
  readonly pid: number;
  readonly node: string;
  readonly command: string;
  /** The ChildProcess when this process started it; null for one found again by pid. */
  readonly child: ChildProcess | null;
  readonly exited: Promise<ExitStatus>;
  private readonly identity: ProcessIdentity | null;
  /** The node's cgroup as /proc/PID/cgroup names it; null for a process found again (already in it). */
  private readonly cgroup: string | null;
  private exitStatus: ExitStatus | null = null;

  private constructor(node: string, command: string, pid: number, child: ChildProcess | null, cgroup: string | null) {
    this.node = node;
    this.cgroup = cgroup;
    this.command = command;
    this.pid = pid;
    this.child = child;
    const identity = identify(pid);
    this.identity = identity;
    if (child) {
      this.exited = new Promise((resolve) => {
        const done = (code: number | null, signal: NodeJS.Signals | null): void => {
          this.exitStatus = { code, signal };
          resolve(this.exitStatus);
        };
        if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode, child.signalCode);
        else child.once('exit', done);
      });
    } else {
      this.exited = (async () => {
        // Unref'd: watching a process found again must not keep a short CLI run alive.
        while (identity && identityAlive(identity)) await sleep(50, undefined, { ref: false });
        this.exitStatus = { code: null, signal: null };
        return this.exitStatus;
      })();
    }
  }

  static spawn(node: string, cgroup: CpuCgroup, netns: string, command: string, args: string[], opts: SpawnOptions = {}): LabProcess {
    const output = opts.output ?? 'ignore';
    const toFile = output !== 'pipe' && output !== 'inherit' && output !== 'ignore';
    const line = nodeCommandLine(cgroup.procsFile, netns, command, args, toFile ? output : '', opts.cwd ?? '');
    const stdio: StdioOptions = toFile ? 'ignore' : ['ignore', output, output];
    const child = spawn(line.command, line.args, { env: opts.env, stdio, detached: opts.detached ?? false });
    if (child.pid === undefined) throw new LabError(`${node}: could not start ${command}`);
    if (opts.detached) child.unref();
    return new LabProcess(node, [command, ...args].join(' '), child.pid, child, cgroup.hierarchyPath);
  }

  /** A handle on a process of a node found by pid (the CLI, clean-up). */
  static adopt(node: string, pid: number): LabProcess {
    return new LabProcess(node, '', pid, null, null);
  }

  get hasExited(): boolean {
    return this.exitStatus !== null || (this.identity !== null && !identityAlive(this.identity));
  }

  get exitCode(): number | null {
    return this.exitStatus?.code ?? null;
  }

  /** The main thread's state (R/S/D/T/Z…); null once the process is gone. */
  state(): ProcState | null {
    if (this.exitStatus) return null;
    return processState(this.pid);
  }

  /** Every thread's state: a service's main thread may sleep while a worker is stuck in D. */
  threads(): Map<number, ProcState> {
    return this.exitStatus ? new Map() : threadStates(this.pid);
  }

  /** True when any thread is in `state` (e.g. 'D': something of it waits on a hung disk). */
  anyThreadIn(state: ProcState): boolean {
    for (const s of this.threads().values()) if (s === state) return true;
    return false;
  }

  cpuTimeMs(): number | null {
    return this.exitStatus ? null : cpuTimeMs(this.pid);
  }

  signal(signal: NodeJS.Signals): boolean {
    if (this.hasExited) return false;
    return signalPid(this.pid, signal);
  }

  /** kill -9 and wait until it is gone. A process in D stays: then this throws, naming the state. */
  async kill(timeoutMs = 10_000): Promise<ExitStatus> {
    if (!this.hasExited) await this.joined().catch(() => undefined);
    this.signal('SIGKILL');
    return this.waitExit(timeoutMs);
  }

  async waitExit(timeoutMs = 10_000): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === null) throw new LabError(`${this.node}: process ${this.pid} still there ${timeoutMs} ms later (state ${this.state() ?? 'gone'})`);
    return r;
  }

  /**
   * Resolves once the process is in its node's cgroup (and so past the wrapper's first line): a
   * process stopped or killed before that would be outside the node, where clean-up does not look.
   */
  async joined(timeoutMs = 10_000): Promise<void> {
    const cgroup = this.cgroup;
    if (cgroup === null) return;
    await this.waitFor(`joining ${this.node}'s cgroup`, () => cgroupOf(this.pid, 'cpu') === cgroup, timeoutMs);
  }

  /** SIGSTOP; returns once every thread is stopped (a signal reaches threads one by one). */
  async stop(timeoutMs = 5000): Promise<void> {
    await this.joined();
    if (!this.signal('SIGSTOP')) throw new LabError(`${this.node}: process ${this.pid} is not running`);
    await this.waitFor('every thread stopped (T)', () => allThreadsStopped(this.pid), timeoutMs);
  }

  /** SIGCONT; returns once no thread is stopped any more. */
  async cont(timeoutMs = 5000): Promise<void> {
    if (!this.signal('SIGCONT')) throw new LabError(`${this.node}: process ${this.pid} is not running`);
    await this.waitFor('no thread stopped', () => ![...this.threads().values()].some((s) => s === 'T'), timeoutMs);
  }

  /** Waits for a fact about the process, e.g. `p.waitFor('D state', () => p.anyThreadIn('D'))`. */
  async waitFor(what: string, fact: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fact()) {
      if (this.hasExited) throw new LabError(`${this.node}: process ${this.pid} exited while waiting for ${what}`);
      if (Date.now() > deadline) throw new LabError(`${this.node}: process ${this.pid}: no ${what} after ${timeoutMs} ms (state ${this.state() ?? 'gone'})`);
      await sleep(5);
    }
  }
}
