/**
 * A lab node: a host in miniature. Its own network namespace and address, its own disk, its own
 * CPU (a cgroup that can be starved), and the processes that run on it — each of which enters
 * the node's cgroup and namespace before it execs (process.ts).
 */
import { CpuCgroup, type CpuQuota, type CpuThrottling } from './cgroup.ts';
import type { NodeDisk } from './disk.ts';
import { LabUsageError, run, type RunResult } from './host.ts';
import { portFreeIn } from './network.ts';
import { LabProcess, nodeCommandLine, type SpawnOptions } from './process.ts';
import { cgroupOf } from './proc.ts';
import type { NodeRecord } from './registry.ts';

/** Where a node reports what is done to it (the lab's record of injections). */
export type EventSink = (e: { kind: string; action: string; target: string; detail?: Record<string, unknown> }) => void;

export class NodeCpu {
  private readonly node: string;
  private readonly cgroup: CpuCgroup;
  private readonly emit: EventSink;
  private timer: NodeJS.Timeout | undefined;

  constructor(node: string, cgroup: CpuCgroup, emit: EventSink) {
    this.node = node;
    this.cgroup = cgroup;
    this.emit = emit;
  }

  /**
   * Starves the node: all its processes together get `fraction` of one core (0.1 = 10 %). With
   * `durationMs`, the limit is lifted by itself afterwards (as long as this process runs).
   */
  limit(fraction: number, opts: { durationMs?: number; periodUs?: number } = {}): CpuQuota {
    clearTimeout(this.timer);
    const q = this.cgroup.limit(fraction, opts.periodUs);
    this.emit({
      kind: 'cpu',
      action: 'limit',
      target: this.node,
      detail: { fraction: q.fraction, quotaUs: q.quotaUs, periodUs: q.periodUs, durationMs: opts.durationMs ?? null },
    });
    if (opts.durationMs !== undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.cgroup.exists()) this.unlimit();
      }, opts.durationMs);
    }
    return q;
  }

  unlimit(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.cgroup.unlimit();
    this.emit({ kind: 'cpu', action: 'unlimit', target: this.node });
  }

  /** The quota in force, read back from the cgroup. */
  quota(): CpuQuota {
    return this.cgroup.quota();
  }

  throttling(): CpuThrottling {
    return this.cgroup.throttling();
  }

  /** Drops a pending timed lift (the lab is closing). */
  dispose(): void {
    clearTimeout(this.timer);
  }
}

export class Node {
  readonly name: string;
  /** 1-based: node N hosts ZooKeeper server N. */
  readonly index: number;
  readonly ip: string;
  readonly netns: string;
  readonly hostVeth: string;
  readonly disk: NodeDisk;
  readonly cpu: NodeCpu;
  readonly cgroup: CpuCgroup;
  private readonly spawned = new Set<LabProcess>();
  private readonly emit: EventSink;

  constructor(record: NodeRecord, disk: NodeDisk, emit: EventSink) {
    this.name = record.name;
    this.index = record.index;
    this.ip = record.ip;
    this.netns = record.netns;
    this.hostVeth = record.hostVeth;
    this.disk = disk;
    this.emit = emit;
    this.cgroup = new CpuCgroup(record.cgroup);
    this.cpu = new NodeCpu(record.name, this.cgroup, emit);
  }

  /** The command line that runs `command args` on this node (for callers that spawn themselves, like the ensemble). */
  command(command: string, args: string[], outputFile?: string): { command: string; args: string[] } {
    return nodeCommandLine(this.cgroup.procsFile, this.netns, command, args, outputFile);
  }

  /** Starts a process on the node. */
  spawn(command: string, args: string[] = [], opts: SpawnOptions = {}): LabProcess {
    const p = LabProcess.spawn(this.name, this.cgroup, this.netns, command, args, opts);
    this.spawned.add(p);
    void p.exited.then(() => this.spawned.delete(p));
    return p;
  }

  /** Runs a command on the node to completion (bounded) and returns its output. */
  async exec(command: string, args: string[] = [], opts: { input?: string; timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
    const line = this.command(command, args);
    return run(line.command, line.args, opts);
  }

  /** Every process on the node now (whoever started it), from its cgroup. */
  pids(): number[] {
    return this.cgroup.pids();
  }

  /** Processes this lab object started and that still run. */
  processes(): LabProcess[] {
    return [...this.spawned].filter((p) => !p.hasExited);
  }

  /** True when pid is a process of this node (it is in the node's cgroup). */
  owns(pid: number): boolean {
    return cgroupOf(pid, 'cpu') === this.cgroup.hierarchyPath;
  }

  /** A handle on one of the node's processes by pid (refuses any other process). */
  process(pid: number): LabProcess {
    for (const p of this.spawned) if (p.pid === pid && !p.hasExited) return p;
    if (!this.owns(pid)) throw new LabUsageError(`pid ${pid} is not a process of ${this.name} (not in its cgroup ${this.cgroup.path})`);
    return LabProcess.adopt(this.name, pid);
  }

  /** kill -9 of every process on the node (a crash, the first half of a reboot); returns the pids. */
  killAll(): number[] {
    const pids = this.pids();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.emit({ kind: 'process', action: 'kill-all', target: this.name, detail: { pids } });
    return pids;
  }

  /** Nothing listens on the node's port (a stopped server's port is free again). */
  portFree(port: number): Promise<boolean> {
    return portFreeIn(this.netns, this.ip, port);
  }
}
