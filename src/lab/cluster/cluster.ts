/**
 * The reference cluster, run by the lab: on every node of a lab, the node's ZooKeeper server
 * (lab.startEnsemble: data and logs on the node's disk) and three services, each its own OS
 * process inside the node (node.spawn: its namespace and cgroup), its files on the node's disk:
 * `meta` (meta.ts), `chunk` (chunk.ts), `scavenger` (scavenger.ts). With the guard's watchdog
 * the meta runs under `zkwarden guard run`.
 *
 * The runner hears each service on its stdout (a pipe: events, never a file), keeps every
 * incarnation of every service (a rebooted node's old processes stay in the record), and can
 * start a node's services again after a reboot.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePath } from '../../recipes/index.ts';
import { createClient, endSession, type EndSessionResult } from '../../zk/index.ts';
import type { Ensemble } from '../ensemble.ts';
import { LabError } from '../host.ts';
import type { Lab, NodeRef } from '../lab.ts';
import type { Node } from '../node.ts';
import type { LabProcess } from '../process.ts';
import {
  CONFIG_ENV,
  LOG_FILES,
  META_PORT,
  PATHS,
  SERVICES,
  resolveTimings,
  type ClusterTimings,
  type GuardSettings,
  type ServiceConfig,
  type ServiceKind,
} from './config.ts';
import { cliCommand, prepareServices, serviceCommand } from './launch.ts';
import { Lines, parseJsonLine, type ServiceEvent } from './wire.ts';

export type ConnectOrder = 'own-first' | 'others-first';

export interface ClusterOptions {
  timings?: Partial<ClusterTimings>;
  /** The guard in the metas; null or absent: off. */
  guard?: GuardSettings | null;
  /** Per node, the order its services try the ZooKeeper servers; default own server first. */
  connectOrder?: Record<string, ConnectOrder>;
  /** How the meta's request path writes its data file (see MetaConfig.dataWrites); default 'async'. */
  dataWrites?: 'async' | 'sync';
  /** The ensemble's start bound; default 120 s (three JVMs on a loaded machine). */
  startTimeoutMs?: number;
}

/** One incarnation of one service on one node. */
export class ServiceProc extends EventEmitter<{ event: [ServiceEvent]; exit: [{ code: number | null; signal: string | null }] }> {
  readonly kind: ServiceKind;
  readonly node: Node;
  /** What the runner spawned: the service itself, or `guard run` for a watched meta. */
  readonly launcher: LabProcess;
  readonly startedAt = Date.now();
  readonly events: ServiceEvent[] = [];
  /** The service's own pid, once it said hello. */
  pid: number | null = null;
  exitedAt: number | null = null;
  private readonly stderr: string[] = [];
  /** The meta's current session, for the explicit remedy only (memory, never logged or recorded). */
  private credentials: { id: bigint; password: Buffer } | null = null;
  private handle: LabProcess | null = null;

  constructor(kind: ServiceKind, node: Node, launcher: LabProcess) {
    super();
    this.kind = kind;
    this.node = node;
    this.launcher = launcher;
    const child = launcher.child!;
    const lines = new Lines((line) => this.onLine(line));
    child.stdout!.on('data', (d: Buffer) => lines.push(d));
    const err = new Lines((line) => {
      this.stderr.push(line);
      if (this.stderr.length > 40) this.stderr.shift();
    });
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    void launcher.exited.then((s) => {
      this.exitedAt = Date.now();
      this.emit('exit', s);
    });
  }

  get name(): string {
    return `${this.node.name} ${this.kind}`;
  }

  get running(): boolean {
    return this.exitedAt === null;
  }

  /** The last lines the service wrote to stderr (for errors). */
  stderrTail(): string {
    return this.stderr.join('\n');
  }

  /** The service's own process (for a watched meta, not the watchdog). */
  process(): LabProcess | null {
    if (this.pid === null || this.exitedAt !== null) return null;
    if (this.pid === this.launcher.pid) return this.launcher;
    this.handle ??= this.node.process(this.pid);
    return this.handle;
  }

  get session(): { id: bigint; password: Buffer } | null {
    return this.credentials;
  }

  private onLine(line: string): void {
    const e = parseJsonLine<ServiceEvent>(line);
    if (!e || typeof e.ev !== 'string') return;
    if (e.ev === 'session') {
      this.credentials = { id: BigInt(`0x${e.id}`), password: Buffer.from(e.password, 'hex') };
      // Recorded without its secrets: that a session began, not which.
      const bare = { ev: 'state', at: e.at, state: 'session' } as ServiceEvent;
      this.events.push(bare);
      this.emit('event', bare);
      return;
    }
    if (e.ev === 'hello') this.pid = e.pid;
    this.events.push(e);
    this.emit('event', e);
  }

  /** Waits for an event that satisfies `pred` (also one already received). */
  waitFor<K extends ServiceEvent['ev']>(
    ev: K,
    pred: (e: Extract<ServiceEvent, { ev: K }>) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<Extract<ServiceEvent, { ev: K }>> {
    const match = (e: ServiceEvent): e is Extract<ServiceEvent, { ev: K }> => e.ev === ev && pred(e as Extract<ServiceEvent, { ev: K }>);
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new LabError(`${this.name}: no '${ev}' event within ${timeoutMs} ms${this.stderrTail() ? `; its stderr:\n${this.stderrTail()}` : ''}`)),
        timeoutMs,
      );
      const onEvent = (e: ServiceEvent): void => {
        if (match(e)) done(null, e);
      };
      const onExit = (): void =>
        done(new LabError(`${this.name} exited while waiting for '${ev}'${this.stderrTail() ? `; its stderr:\n${this.stderrTail()}` : ''}`));
      const done = (err: Error | null, e?: Extract<ServiceEvent, { ev: K }>): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('exit', onExit);
        if (err) reject(err);
        else resolve(e!);
      };
      this.on('event', onEvent);
      this.once('exit', onExit);
    });
  }

  /** Kills the incarnation (and, under a watchdog, the meta too); does not wait for a process in D. */
  kill(): void {
    const own = this.process();
    this.launcher.signal('SIGKILL');
    own?.signal('SIGKILL');
  }
}

export class Cluster {
  readonly lab: Lab;
  readonly ensemble: Ensemble;
  readonly timings: ClusterTimings;
  readonly guard: GuardSettings | null;
  /** Every incarnation of every service, in start order. */
  readonly history: ServiceProc[] = [];
  private readonly options: ClusterOptions;
  private readonly listeners = new Set<(s: ServiceProc, e: ServiceEvent) => void>();

  private constructor(lab: Lab, ensemble: Ensemble, timings: ClusterTimings, options: ClusterOptions) {
    this.lab = lab;
    this.ensemble = ensemble;
    this.timings = timings;
    this.guard = options.guard ?? null;
    this.options = options;
  }

  /**
   * Starts the ensemble in the lab's nodes (unless one runs already) and prepares the cluster's
   * znodes; services are started by startServices.
   */
  static async create(lab: Lab, options: ClusterOptions = {}): Promise<Cluster> {
    const timings = resolveTimings(options.timings ?? {});
    const prepared = prepareServices();
    const ensemble =
      lab.ensemble ??
      (await lab.startEnsemble({
        tickTime: timings.tickTimeMs,
        syncLimit: timings.syncLimit,
        initLimit: 2 * timings.syncLimit,
        minSessionTimeout: 2 * timings.tickTimeMs,
        maxSessionTimeout: 20 * timings.tickTimeMs,
        preAllocSizeKb: 1024,
        startTimeoutMs: options.startTimeoutMs ?? 120_000,
      }));
    await prepared;
    const cluster = new Cluster(lab, ensemble, timings, options);
    const c = createClient(ensemble.connectString, { sessionTimeoutMs: timings.clientSessionTimeoutMs });
    await c.connect({ timeoutMs: 30_000 });
    try {
      for (const p of [PATHS.election, PATHS.members, PATHS.journal, PATHS.scavenger]) await ensurePath(c, p, 10_000);
    } finally {
      await c.close({ timeoutMs: 3000 }).catch(() => undefined);
    }
    return cluster;
  }

  get nodes(): Node[] {
    return this.lab.nodes.slice(0, this.ensemble.servers.length);
  }

  metaEndpoint(node: NodeRef): string {
    return `${this.lab.node(node).ip}:${META_PORT}`;
  }

  /** The node serving a meta endpoint (null for an address the cluster does not know). */
  nodeOfEndpoint(endpoint: string | null | undefined): Node | null {
    if (!endpoint) return null;
    return this.nodes.find((n) => this.metaEndpoint(n) === endpoint) ?? null;
  }

  /** The ensemble in the order a node's services try it. */
  connectString(node: Node): string {
    const own = this.ensemble.address(node.index);
    const others = this.ensemble.servers.filter((s) => s.id !== node.index).map((s) => this.ensemble.address(s.id));
    const order = this.options.connectOrder?.[node.name] ?? 'own-first';
    return (order === 'own-first' ? [own, ...others] : [...others, own]).join(',');
  }

  /** Hears every event of every service (current and later incarnations). */
  onEvent(fn: (s: ServiceProc, e: ServiceEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The running incarnation of a service on a node. */
  current(node: NodeRef, kind: ServiceKind): ServiceProc | null {
    const n = this.lab.node(node);
    for (let i = this.history.length - 1; i >= 0; i--) {
      const s = this.history[i]!;
      if (s.node === n && s.kind === kind) return s.running ? s : null;
    }
    return null;
  }

  serviceDir(node: Node, kind: ServiceKind): string {
    return join(node.disk.root, kind);
  }

  private config(node: Node, kind: ServiceKind): ServiceConfig {
    const base = {
      node: node.name,
      ip: node.ip,
      nodes: this.nodes.map((n) => n.name),
      dir: this.serviceDir(node, kind),
      connectString: this.connectString(node),
      timings: this.timings,
    };
    if (kind === 'meta') return { ...base, service: 'meta', port: META_PORT, dataWrites: this.options.dataWrites ?? 'async', guard: this.guard };
    if (kind === 'chunk') return { ...base, service: 'chunk', witness: this.guard?.defences.deposition ?? false };
    return { ...base, service: 'scavenger' };
  }

  /** Starts one service on a node and waits until it is ready. */
  async start(node: NodeRef, kind: ServiceKind, timeoutMs = 60_000): Promise<ServiceProc> {
    const n = this.lab.node(node);
    if (this.current(n, kind)) throw new LabError(`${n.name} already runs a ${kind}`);
    const cfg = this.config(n, kind);
    mkdirSync(cfg.dir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, [CONFIG_ENV]: JSON.stringify(cfg) };
    for (const k of Object.keys(env)) if (k.startsWith('ZKWARDEN_GUARD_')) delete env[k];
    let { command, args } = await serviceCommand(kind);
    const watchdog = kind === 'meta' && this.guard?.defences.watchdog;
    if (watchdog) {
      const t = this.guard!.timing ?? {};
      const cli = cliCommand();
      args = [
        ...cli.args,
        'guard',
        'run',
        '--servers',
        this.ensemble.connectString,
        '--name',
        `meta-${n.name}`,
        '--log',
        join(cfg.dir, `${LOG_FILES.meta.replace(/\.INFO$/, '')}-watchdog.log`),
        ...(t.watchdogDeadlineMs ? ['--deadline', String(t.watchdogDeadlineMs)] : []),
        ...(t.heartbeatIntervalMs ? ['--heartbeat-interval', String(t.heartbeatIntervalMs)] : []),
        '--session-timeout',
        String(t.sessionTimeoutMs ?? this.timings.sessionTimeoutMs),
        '--',
        command,
        ...args,
      ];
      command = cli.command;
    }
    const launcher = n.spawn(command, args, { output: 'pipe', env, cwd: cfg.dir });
    const s = new ServiceProc(kind, n, launcher);
    this.history.push(s);
    s.on('event', (e) => {
      for (const fn of this.listeners) fn(s, e);
    });
    await launcher.joined();
    await s.waitFor('ready', () => true, timeoutMs);
    return s;
  }

  /**
   * Starts every service on every node. With `metaFirst`, that node's meta starts alone and is
   * elected before the others join (the seed's node1 led).
   */
  async startServices(opts: { metaFirst?: NodeRef; timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const first = opts.metaFirst !== undefined ? this.lab.node(opts.metaFirst) : null;
    if (first) {
      const m = await this.start(first, 'meta', timeoutMs);
      await m.waitFor('elected', () => true, timeoutMs);
    }
    await Promise.all(this.nodes.filter((n) => n !== first).map((n) => this.start(n, 'meta', timeoutMs)));
    await Promise.all(this.nodes.flatMap((n) => (['chunk', 'scavenger'] as const).map((k) => this.start(n, k, timeoutMs))));
  }

  /** Starts a node's ZooKeeper server (if stopped) and its services again: the node after a reboot. */
  async restartNode(node: NodeRef, timeoutMs = 60_000): Promise<void> {
    const n = this.lab.node(node);
    if (this.ensemble.state(n.index) === 'stopped') await this.ensemble.startServer(n.index, { waitMs: timeoutMs });
    await Promise.all(SERVICES.filter((kind) => !this.current(n, kind)).map((kind) => this.start(n, kind, timeoutMs)));
  }

  /**
   * The explicit remedy: an operator ends a meta's ZooKeeper session from outside (endSession,
   * with the session's id and password), as the guard's watchdog would.
   */
  async endMetaSession(node: NodeRef, timeoutMs = 15_000): Promise<EndSessionResult> {
    const m = this.current(node, 'meta');
    const creds = m?.session;
    if (!m || !creds)
      throw new LabError(`${this.lab.node(node).name}'s meta holds no session the lab knows of${this.guard ? ' (the guard owns its sessions)' : ''}`);
    // Through the other nodes' servers, as an operator would: the node's own server sits on the
    // same dead disk, accepts the TCP connection and never answers the handshake (endSession would
    // wait for it to the end). Out of the quorum already, it learns of the close when it syncs.
    const own = this.lab.node(node).index;
    const others = this.ensemble.servers.filter((s) => s.id !== own).map((s) => this.ensemble.address(s.id));
    return endSession(others.join(','), creds.id, creds.password, { timeoutMs });
  }

  /** Kills every running service (ZooKeeper stays). */
  async stopServices(timeoutMs = 10_000): Promise<void> {
    const running = this.history.filter((s) => s.running);
    for (const s of running) s.kill();
    const deadline = Date.now() + timeoutMs;
    while (running.some((s) => s.running) && Date.now() < deadline) await sleep(20);
  }
}
