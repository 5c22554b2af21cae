/**
 * The fault lab: nodes that behave like hosts (own network namespace and address in
 * 198.18.0.0/15, own disk, own CPU), a real ZooKeeper ensemble placed inside them, and the faults
 * to inject between assertions — network (netfaults.ts), CPU (a cgroup quota), process (kill -9,
 * SIGSTOP/SIGCONT) and disk (faultfs).
 *
 * Every lab has its own id and /24 and names everything it creates after its id, recorded with
 * its owner's pid under /run/zkwarden/labs/<id>/ before it is created. Labs therefore run side by
 * side (two test files, two engineers), and clean-up — close(), the exit and signal hooks, the
 * start of the next lab, `zkwarden lab clean` — finds everything of a lab whose owner died and
 * never touches a lab whose owner lives.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CpuCgroup, labCgroupRoot, type CpuQuota } from './cgroup.ts';
import { cleanLabs, teardown, teardownSync, type CleanupReport } from './cleanup.ts';
import { NodeDisk, type DiskKind } from './disk.ts';
import { Ensemble, type EnsembleOptions, type EnsemblePlacement } from './ensemble.ts';
import { onExitSync, onSignalAsync } from './exit-hooks.ts';
import { LabError, LabUsageError, checkCapabilities } from './host.ts';
import { NetFaults, describeFault, type NetFault, type NetFaultSpec } from './netfaults.ts';
import { checkReachable, createBridge, createNodeNetwork, labNames, subnetsInUse } from './network.ts';
import { Node, type EventSink } from './node.ts';
import { checkReach, EchoServer, type ReachResult } from './probe.ts';
import { commandLines, identify, processState, signalPid, type ProcState } from './proc.ts';
import type { LabProcess } from './process.ts';
import { claimSubnet, createRecord, labDir, newLabId, ownerAlive, parseSubnet, readRecord, writeRecord, type LabRecord } from './registry.ts';

export interface LabOptions {
  /** 1-8 lowercase letters/digits; default a random one. */
  id?: string;
  /** How many nodes (node1…nodeN at .101…); default 3. */
  nodes?: number;
  /** A /24 inside 198.18.0.0/15 as 'a.b.c'; default a free one (the CLI uses 198.18.88). */
  subnet?: string;
  /** 'faultfs' (disks that can hang; the default) or 'plain' directories. */
  disk?: DiskKind;
  /** Where the nodes' files go; default a new directory in the system's temporary directory. */
  baseDir?: string;
  /** Keep the nodes' files after close (a run's evidence). */
  keepFiles?: boolean;
  /** The lab outlives this process (the CLI): a keeper process stands in as its owner. */
  detached?: boolean;
  /** Remove labs whose owner died before starting (default true). */
  cleanStale?: boolean;
}

export interface LabEvent {
  /** ms since the epoch. */
  at: number;
  kind: string;
  action: string;
  target: string;
  detail?: Record<string, unknown>;
}

/** A node by name ('node1'), number (1), address ('198.18.88.101', only the lab's own) or object. */
export type NodeRef = Node | string | number;

export const MAX_NODES = 20;

export interface LabStatus {
  id: string;
  subnet: string;
  hostIp: string;
  owner: { pid: number; alive: boolean };
  detached: boolean;
  baseDir: string;
  nodes: {
    name: string;
    ip: string;
    netns: string;
    cgroup: string;
    cpu: CpuQuota | null;
    disk: { kind: DiskKind; root: string; readable: boolean };
    processes: { pid: number; state: ProcState | null; command: string }[];
  }[];
  faults: NetFault[];
}

export class LabNet {
  private readonly lab: Lab;
  private readonly faults: NetFaults;
  private readonly emit: EventSink;

  constructor(lab: Lab, faults: NetFaults, emit: EventSink) {
    this.lab = lab;
    this.faults = faults;
    this.emit = emit;
  }

  private async inject(spec: NetFaultSpec): Promise<NetFault> {
    const f = await this.faults.inject(spec);
    this.emit({ kind: 'net', action: 'inject', target: describeFault(f), detail: { ...f } });
    return f;
  }

  /**
   * Cuts a from b: both ways (every packet), or `oneWay` (a cannot open or use connections to b;
   * b still reaches a); with `port`, only connections to that port.
   */
  async cut(a: NodeRef, b: NodeRef, opts: { oneWay?: boolean; port?: number } = {}): Promise<NetFault> {
    return this.inject({ kind: 'cut', a: this.lab.node(a).name, b: this.lab.node(b).name, ...opts });
  }

  /** The node hears but is not heard: its replies are dropped (on `port` only, to `peers` only). */
  async deaf(node: NodeRef, opts: { port?: number; peers?: NodeRef[] } = {}): Promise<NetFault> {
    const peers = opts.peers?.map((p) => this.lab.node(p).name);
    return this.inject({ kind: 'deaf', node: this.lab.node(node).name, ...(opts.port !== undefined ? { port: opts.port } : {}), ...(peers ? { peers } : {}) });
  }

  /** The node loses every peer, and the root namespace too unless `keepHost`. */
  async isolate(node: NodeRef, opts: { keepHost?: boolean } = {}): Promise<NetFault> {
    return this.inject({ kind: 'isolate', node: this.lab.node(node).name, ...opts });
  }

  /** Removes one fault's rules, or every rule of the lab's chains; returns what was healed. */
  async heal(fault?: NetFault | string): Promise<NetFault[]> {
    const healed = await this.faults.heal(typeof fault === 'string' ? fault : fault?.id);
    for (const f of healed) this.emit({ kind: 'net', action: 'heal', target: describeFault(f), detail: { id: f.id } });
    return healed;
  }

  /** The faults in force, read back from the nodes' iptables. */
  list(): Promise<NetFault[]> {
    return this.faults.list();
  }

  /** Packets the lab's rules dropped (for one fault, or all). */
  dropped(fault?: NetFault | string): Promise<number> {
    return this.faults.dropped(typeof fault === 'string' ? fault : fault?.id);
  }

  rules(): ReturnType<NetFaults['listRules']> {
    return this.faults.listRules();
  }

  /**
   * A real connection from `from` to `to`:`port`, with an echo server the check starts there:
   * open, refused, dropped (by the lab's rules) or deaf (heard, answer dropped).
   */
  async check(from: NodeRef, to: NodeRef, port: number, timeoutMs = 20_000): Promise<ReachResult> {
    return (await this.checkAll([{ from, to, port }], timeoutMs))[0]!;
  }

  /** Several checks at once (one echo server per destination and port), results in order. */
  async checkAll(cases: { from: NodeRef; to: NodeRef; port: number }[], timeoutMs = 20_000): Promise<ReachResult[]> {
    const resolved = cases.map((c) => ({ from: this.lab.node(c.from), to: this.lab.node(c.to), port: c.port }));
    const servers = new Map<string, Promise<EchoServer>>();
    for (const c of resolved) {
      const key = `${c.to.name}:${c.port}`;
      if (!servers.has(key)) servers.set(key, EchoServer.start(c.to, c.port));
    }
    try {
      return await Promise.all(
        resolved.map(async (c) => checkReach(c.from, c.to, c.port, () => this.faults.dropped(), await servers.get(`${c.to.name}:${c.port}`)!, timeoutMs)),
      );
    } finally {
      await Promise.all(
        [...servers.values()].map((s) =>
          s.then(
            (x) => x.close(),
            () => undefined,
          ),
        ),
      );
    }
  }
}

export class Lab {
  readonly id: string;
  readonly subnet: string;
  /** The root namespace's address on the lab's bridge (.1). */
  readonly hostIp: string;
  readonly baseDir: string;
  readonly nodes: Node[];
  readonly net: LabNet;
  /** What was done to the lab, in order: the injection record of a run. */
  readonly events: LabEvent[];
  /** @internal the lab's record, as written to its state directory. */
  readonly record: LabRecord;
  private ensembleRef: Ensemble | null = null;
  private closing: Promise<CleanupReport> | null = null;
  private unhook: () => void = () => undefined;

  private constructor(record: LabRecord, disks: NodeDisk[], events: LabEvent[]) {
    this.record = record;
    this.events = events;
    this.id = record.id;
    this.subnet = record.subnet;
    this.hostIp = record.hostIp;
    this.baseDir = record.baseDir;
    const emit = eventSink(events);
    this.nodes = record.nodes.map((n, i) => new Node(n, disks[i]!, emit));
    this.net = new LabNet(this, new NetFaults(this.nodes, record.chains, record.hostIp), emit);
  }

  /** Creates the nodes (namespaces, bridge, veths, cgroups, disks) and records them. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    checkCapabilities();
    if (opts.cleanStale ?? true) await cleanLabs();
    const count = opts.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) throw new LabUsageError(`a lab has 1 to ${MAX_NODES} nodes (got ${count})`);
    const preferred = opts.subnet !== undefined ? parseSubnet(opts.subnet) : undefined;
    const id = opts.id ?? newLabId();
    const names = labNames(id);
    const baseDir = resolve(opts.baseDir ?? join(tmpdir(), `zkwarden-lab-${id}`));
    const self = identify(process.pid);
    if (!self) throw new LabError('cannot read /proc/self/stat');
    const record: LabRecord = {
      version: 1,
      id,
      owner: self,
      detached: opts.detached ?? false,
      createdAt: new Date().toISOString(),
      subnet: '',
      hostIp: '',
      bridge: names.bridge,
      chains: names.chains,
      cgroupRoot: labCgroupRoot(id),
      baseDir,
      keepFiles: opts.keepFiles ?? false,
      nodes: [],
    };
    createRecord(record);
    try {
      const subnet = claimSubnet(id, await subnetsInUse(), preferred);
      record.subnet = subnet;
      record.hostIp = `${subnet}.1`;
      const kind = opts.disk ?? 'faultfs';
      for (let i = 1; i <= count; i++) {
        const name = `node${i}`;
        record.nodes.push({
          name,
          index: i,
          ip: `${subnet}.${100 + i}`,
          netns: names.netns(i),
          hostVeth: names.hostVeth(i),
          cgroup: join(record.cgroupRoot, name),
          disk: { kind, root: join(baseDir, name, 'disk'), backing: join(baseDir, name, 'backing') },
        });
      }
      // Recorded before made: a runner killed half-way leaves nothing clean-up cannot find.
      writeRecord(record);
      new CpuCgroup(record.cgroupRoot).create();
      for (const n of record.nodes) new CpuCgroup(n.cgroup).create();
      if (record.detached) {
        record.owner = spawnKeeper(record.cgroupRoot);
        writeRecord(record);
      }
      await createBridge(names.bridge, record.hostIp);
      for (const n of record.nodes) await createNodeNetwork(n, names.bridge, names.chains);
      const disks: NodeDisk[] = [];
      const events: LabEvent[] = [];
      for (const n of record.nodes) {
        const disk = await NodeDisk.create(n.name, n.disk, { stateDir: labDir(id), detached: record.detached, emit: eventSink(events) });
        disks.push(disk);
        n.disk = disk.record();
        writeRecord(record);
      }
      for (const n of record.nodes) await checkReachable(n.ip);
      const lab = new Lab(record, disks, events);
      if (!record.detached) {
        // Whatever happens to the runner: on a signal the whole clean-up, at exit its synchronous part.
        const unhookSignal = onSignalAsync(() => lab.close());
        const unhookExit = onExitSync(() => teardownSync(lab.record));
        lab.unhook = () => {
          unhookSignal();
          unhookExit();
        };
      }
      return lab;
    } catch (err) {
      await teardown(record, { ownerToo: true }).catch(() => undefined);
      throw err;
    }
  }

  /** A lab recorded by another process (the CLI's detached labs). */
  static attach(id: string): Lab {
    const record = readRecord(id);
    if (!record) throw new LabUsageError(`no lab '${id}' on this machine (start one with: zkwarden lab node up)`);
    const events: LabEvent[] = [];
    const lab = new Lab(
      record,
      record.nodes.map((n) => NodeDisk.attach(n.name, n.disk, eventSink(events))),
      events,
    );
    if (record.ensemble) lab.ensembleRef = Ensemble.attach(record.ensemble, lab.placement());
    return lab;
  }

  /** Finds a node; an address must be one of the lab's own (the lab touches nothing else). */
  node(ref: NodeRef): Node {
    if (ref instanceof Node) {
      if (!this.nodes.includes(ref)) throw new LabUsageError(`${ref.name} is a node of another lab`);
      return ref;
    }
    const byIndex = typeof ref === 'number' || /^\d+$/.test(ref) ? this.nodes.find((n) => n.index === Number(ref)) : undefined;
    const found = byIndex ?? this.nodes.find((n) => n.name === ref || n.ip === ref);
    if (found) return found;
    const known = this.nodes.map((n) => `${n.name} ${n.ip}`).join(', ');
    if (typeof ref === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(ref)) {
      throw new LabUsageError(`${ref} is not an address of lab ${this.id}: the lab only uses the addresses it created (${known})`);
    }
    throw new LabUsageError(`no node '${String(ref)}' in lab ${this.id} (${known})`);
  }

  private placement(): EnsemblePlacement {
    return {
      host: (id) => this.node(id).ip,
      dir: (id) => join(this.node(id).disk.root, 'zookeeper'),
      command: (id, command, args, outputFile) => this.node(id).command(command, args, outputFile),
      portFree: (id, port) => this.node(id).portFree(port),
      filesReadable: (id) => this.node(id).disk.readable,
    };
  }

  /**
   * Starts a real ZooKeeper ensemble in the nodes: server N runs in node N's namespace, on node
   * N's address, with its configuration, logs and data on node N's disk.
   */
  async startEnsemble(opts: Omit<EnsembleOptions, 'placement' | 'subnet' | 'baseDir' | 'dataDirs' | 'dataLogDirs' | 'detached'> = {}): Promise<Ensemble> {
    if (this.ensembleRef) throw new LabError(`lab ${this.id} already runs an ensemble`);
    const size = opts.size ?? this.nodes.length;
    if (size > this.nodes.length) throw new LabUsageError(`an ensemble of ${size} needs ${size} nodes; lab ${this.id} has ${this.nodes.length}`);
    const ens = await Ensemble.start({ ...opts, size, placement: this.placement(), baseDir: this.baseDir, detached: this.record.detached });
    this.ensembleRef = ens;
    this.record.ensemble = ens.snapshotState();
    writeRecord(this.record);
    this.events.push({ at: Date.now(), kind: 'zookeeper', action: 'start', target: ens.connectString });
    return ens;
  }

  get ensemble(): Ensemble | null {
    return this.ensembleRef;
  }

  /** Records the ensemble's pids again after servers were restarted (detached labs). */
  saveEnsembleState(): void {
    if (this.ensembleRef) {
      this.record.ensemble = this.ensembleRef.snapshotState();
      writeRecord(this.record);
    }
  }

  /**
   * A node's hard reboot: every process of it is killed (-9), its disk comes back (what was in
   * flight fails with EIO, so processes killed in D die), and its ZooKeeper server, if it runs
   * one, is marked stopped. Returns once nothing runs on the node; start what should run again
   * (e.g. `ensemble.startServer(n)`).
   */
  async reboot(ref: NodeRef, timeoutMs = 15_000): Promise<{ killed: number[]; released: number }> {
    const n = this.node(ref);
    const killed = n.killAll();
    const released = n.disk.kind === 'faultfs' ? await n.disk.heal({ failPending: 'EIO' }) : 0;
    const server = this.ensembleRef?.servers.find((s) => s.id === n.index);
    if (server && this.ensembleRef!.state(server.id) !== 'stopped') await this.ensembleRef!.kill(server.id);
    const deadline = Date.now() + timeoutMs;
    while (n.pids().length > 0) {
      for (const pid of n.pids()) signalPid(pid, 'SIGKILL');
      if (Date.now() > deadline)
        throw new LabError(
          `${n.name}: processes ${n.pids().join(', ')} still there ${timeoutMs} ms after the reboot's kill -9 (state ${n
            .pids()
            .map((p) => processState(p))
            .join(', ')})`,
        );
      await sleep(10);
    }
    this.events.push({ at: Date.now(), kind: 'node', action: 'reboot', target: n.name, detail: { killed, released } });
    return { killed, released };
  }

  /** A process of any node, by pid; refuses a process that is not the lab's. */
  process(pid: number): LabProcess {
    for (const n of this.nodes) if (n.owns(pid)) return n.process(pid);
    throw new LabUsageError(`pid ${pid} is not a process of lab ${this.id} (it is in none of its nodes' cgroups)`);
  }

  /** Sends a signal to a lab process (kill -9, SIGSTOP, SIGCONT…) and records it. */
  signal(pid: number, signal: NodeJS.Signals): LabProcess {
    const p = this.process(pid);
    p.signal(signal);
    this.events.push({ at: Date.now(), kind: 'process', action: signal, target: p.node, detail: { pid } });
    return p;
  }

  /** What the lab is and what is done to it now, read back from the kernel (cgroups, iptables, /proc). */
  async status(): Promise<LabStatus> {
    const pids = new Map(this.nodes.map((n) => [n, n.pids()] as const));
    const commands = await commandLines([...pids.values()].flat());
    return {
      id: this.id,
      subnet: `${this.subnet}.0/24`,
      hostIp: this.hostIp,
      owner: { pid: this.record.owner.pid, alive: ownerAlive(this.record) },
      detached: this.record.detached,
      baseDir: this.baseDir,
      nodes: this.nodes.map((n) => ({
        name: n.name,
        ip: n.ip,
        netns: n.netns,
        cgroup: n.cgroup.path,
        cpu: n.cgroup.exists() ? n.cpu.quota() : null,
        disk: { kind: n.disk.kind, root: n.disk.root, readable: n.disk.readable },
        processes: pids.get(n)!.map((pid) => ({ pid, state: processState(pid), command: commands.get(pid)! })),
      })),
      faults: await this.net.list(),
    };
  }

  /** Removes everything the lab created; returns what was removed and anything that could not be. */
  close(): Promise<CleanupReport> {
    this.closing ??= (async () => {
      for (const n of this.nodes) n.cpu.dispose();
      this.unhook();
      const report = await teardown(this.record, { ownerToo: true });
      // What could not go at once (a cgroup whose last process is still being reaped, a mount a
      // dying daemon still held) usually can a moment later: a few more tries before the record
      // is left for `zkwarden lab clean` (seen: a run's record stayed, claiming its subnet).
      for (let attempt = 0; report.leftovers.length > 0 && attempt < 4; attempt++) {
        await sleep(100 << attempt);
        const again = await teardown(this.record, { ownerToo: true, waitMs: 2000 });
        report.killed.push(...again.killed);
        report.released.push(...again.released);
        report.removed.push(...again.removed);
        report.leftovers = again.leftovers;
      }
      // The mounts are released; let the disk objects know (so their exit hooks have nothing left to do).
      await Promise.all(this.nodes.map((n) => n.disk.close().catch(() => undefined)));
      // The servers are dead now; let the ensemble object see it (no port waits: the namespaces are gone).
      await this.ensembleRef?.close().catch(() => undefined);
      return report;
    })();
    return this.closing;
  }
}

function eventSink(events: LabEvent[]): EventSink {
  return (e) => events.push({ at: Date.now(), ...e });
}

/** A CLI lab's owner: a process that lives until the lab is brought down, in the lab's own cgroup so clean-up finds it. */
function spawnKeeper(cgroupRoot: string): LabRecord['owner'] {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1" && exec sleep infinity', 'zkwarden-lab-keeper', join(cgroupRoot, 'cgroup.procs')], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  const id = child.pid !== undefined ? identify(child.pid) : null;
  if (!id) throw new LabError('could not start the lab keeper process');
  return id;
}
