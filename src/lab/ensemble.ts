/**
 * A real Apache ZooKeeper ensemble (the Debian package's jars) on loopback, for tests, benchmarks
 * and the lab. Every server gets its own loopback address (127.a.b.10<myid>, the seed's node
 * numbering), so ports are the usual 2181/2888/3888 and logs read like production ones; each test
 * file picks a random subnet so files can run side by side.
 *
 * The harness owns the processes: whatever happens to the caller, `close()` (and, as a last
 * resort, the exit hook) kills every JVM and waits until its ports are free.
 *
 * With a `placement` the same servers run elsewhere: the lab puts server N inside node N (its
 * network namespace, address and disk), so quorum traffic carries the nodes' own addresses.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fourLetterWord, parseSrvr, type SrvrInfo } from '../zk/admin.ts';
import { onExitSync } from './exit-hooks.ts';
import { allThreadsStopped, pidAlive, signalPid } from './proc.ts';

export const ZOOKEEPER_JARS = '/usr/share/java';
const MAIN_CLASS = 'org.apache.zookeeper.server.quorum.QuorumPeerMain';
/** The standard ZooKeeper log layout; forensics parses exactly this. */
export const ZK_LOG_PATTERN = '%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n';

export interface EnsembleOptions {
  /** 1 (standalone), 3 or 5 servers. */
  size?: number;
  /** First three octets of the servers' loopback addresses, e.g. '127.0.88'. Default: a random free subnet. */
  subnet?: string;
  /** Where each server's directory goes. Default: a new temporary directory, removed by close() unless keepFiles. */
  baseDir?: string;
  keepFiles?: boolean;
  tickTime?: number;
  initLimit?: number;
  syncLimit?: number;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  snapCount?: number;
  /** TTL nodes need this (zookeeper.extendedTypesEnabled). */
  extendedTypesEnabled?: boolean;
  /** 4lw.commands.whitelist; default every word. */
  fourLetterWords?: string[];
  /** jute.maxbuffer in bytes (the server's packet limit). */
  juteMaxBuffer?: number;
  /** Transaction-log preallocation in KiB (ZooKeeper's default is 65536). */
  preAllocSizeKb?: number;
  /** Per-server dataDir (e.g. on the lab's faulty file system); default inside the server's directory. */
  dataDirs?: Record<number, string>;
  dataLogDirs?: Record<number, string>;
  /** zookeeper.cnxTimeout: how long election waits on an unreachable peer. Small keeps elections fast. */
  cnxTimeoutMs?: number;
  heapMb?: number;
  /** C1-only JIT: starts twice as fast; benchmarks turn it off. */
  fastStartup?: boolean;
  /** Wait for quorum at start; default 60 s. */
  startTimeoutMs?: number;
  /** Servers outlive this process (the CLI's `lab ensemble up`). */
  detached?: boolean;
  /** Extra zoo.cfg lines. */
  extraConfig?: Record<string, string | number | boolean>;
  /**
   * zoo.cfg lines that differ per server, given its address (src/lab/secure.ts: each server's
   * secureClientPortAddress and key store). Not kept in a detached ensemble's state file.
   */
  serverConfig?: (server: ServerInfo) => Record<string, string | number | boolean>;
  /** Extra JVM system properties. */
  systemProperties?: Record<string, string | number | boolean>;
  /** Where each server runs; default: this machine's loopback, `subnet`.10N. */
  placement?: EnsemblePlacement;
}

/**
 * Runs server N somewhere other than loopback (the lab: inside node N). Functions, so it is not
 * part of a detached ensemble's state file; whoever attaches passes it again.
 */
export interface EnsemblePlacement {
  /** The address server `id` listens on, and sends its quorum traffic from. */
  host(id: number): string;
  /** Server `id`'s directory: zoo.cfg, logs, data. */
  dir(id: number): string;
  /** The command line that runs `command args` where server `id` lives, its output appended to `outputFile` (opened there, not by us). */
  command(id: number, command: string, args: string[], outputFile: string): { command: string; args: string[] };
  /** Nothing listens on the server's `port` any more, as seen where it lives. */
  portFree(id: number, port: number): Promise<boolean>;
  /** False while the server's files cannot be read without hanging (its disk stalled): errors then quote no log. */
  filesReadable?(id: number): boolean;
}

export interface ServerInfo {
  id: number;
  host: string;
  clientPort: number;
  quorumPort: number;
  electionPort: number;
  /** The server's own directory: zoo.cfg, log4j.properties, zookeeper.log, stdout.log. */
  dir: string;
  dataDir: string;
  dataLogDir: string;
  logFile: string;
  configFile: string;
}

export type ServerState = 'running' | 'paused' | 'stopped';

export class EnsembleError extends Error {
  readonly serverId: number | undefined;
  readonly logTail: string;
  constructor(message: string, serverId?: number, logTail = '') {
    super(logTail ? `${message}\n--- last lines of server ${serverId}'s log ---\n${logTail}` : message);
    this.name = 'EnsembleError';
    this.serverId = serverId;
    this.logTail = logTail;
  }
}

interface Proc {
  pid: number;
  child: ChildProcess | null;
  exited: Promise<void>;
  exitCode: number | null;
  hasExited: boolean;
}

/** Persisted state of a detached ensemble, so a later process can query and stop it. */
export interface EnsembleState {
  baseDir: string;
  options: EnsembleOptions;
  servers: (ServerInfo & { pid: number | null })[];
}

export function javaClasspath(): string {
  // zookeeper.jar's manifest (Debian 3.8.0) names netty-handler but not the netty jars it needs
  // in turn (codec, resolver, unix-common, all from libnetty-java, a dependency of the package):
  // without them the Netty connection factory, which TLS needs, fails on its first connection.
  const netty = ['netty-codec.jar', 'netty-resolver.jar', 'netty-transport-native-unix-common.jar'];
  return ['zookeeper.jar', 'slf4j-log4j12.jar', 'log4j-1.2.jar', ...netty].map((j) => join(ZOOKEEPER_JARS, j)).join(':');
}

export async function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function tail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return '';
  }
}

export class Ensemble {
  readonly options: EnsembleOptions;
  readonly baseDir: string;
  readonly servers: ServerInfo[];
  private readonly procs = new Map<number, Proc>();
  private readonly paused = new Set<number>();
  /** Servers stopped on purpose; any other exited server is a crash worth reporting. */
  private readonly stoppedOnPurpose = new Set<number>();
  private readonly ownsBaseDir: boolean;
  private closed = false;
  private unhook: (() => void) | undefined;

  private constructor(options: EnsembleOptions, baseDir: string, servers: ServerInfo[], ownsBaseDir: boolean) {
    this.options = options;
    this.baseDir = baseDir;
    this.servers = servers;
    this.ownsBaseDir = ownsBaseDir;
  }

  /** Writes every server's configuration, starts them all and waits for a quorum. */
  static async start(options: EnsembleOptions = {}): Promise<Ensemble> {
    const ens = await Ensemble.prepare(options);
    try {
      for (const s of ens.servers) ens.spawnServer(s.id);
      await ens.waitForQuorum({ timeoutMs: options.startTimeoutMs ?? 60_000 });
    } catch (err) {
      // Clean up, but the caller needs the start failure, not a clean-up complaint.
      await ens.close().catch(() => undefined);
      throw err;
    }
    return ens;
  }

  /** Configuration only, no process: for callers that start servers one by one. */
  static async prepare(options: EnsembleOptions = {}): Promise<Ensemble> {
    const size = options.size ?? 3;
    if (![1, 3, 5].includes(size)) throw new EnsembleError(`ensemble size must be 1, 3 or 5 (got ${size})`);
    if (!existsSync(join(ZOOKEEPER_JARS, 'zookeeper.jar'))) {
      throw new EnsembleError(`ZooKeeper is not installed (${join(ZOOKEEPER_JARS, 'zookeeper.jar')} is missing); run: apt-get install -y zookeeper`);
    }
    const placement = options.placement;
    const subnet = placement ? null : (options.subnet ?? (await freeSubnet(size)));
    const ownsBaseDir = options.baseDir === undefined;
    const baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), 'zkwarden-ensemble-'));
    mkdirSync(baseDir, { recursive: true });
    const servers: ServerInfo[] = [];
    for (let id = 1; id <= size; id++) {
      const dir = placement ? placement.dir(id) : join(baseDir, `zk${id}`);
      const dataDir = options.dataDirs?.[id] ?? join(dir, 'data');
      const dataLogDir = options.dataLogDirs?.[id] ?? dataDir;
      servers.push({
        id,
        host: placement ? placement.host(id) : `${subnet}.${100 + id}`,
        clientPort: 2181,
        quorumPort: 2888,
        electionPort: 3888,
        dir,
        dataDir,
        dataLogDir,
        logFile: join(dir, 'zookeeper.log'),
        configFile: join(dir, 'zoo.cfg'),
      });
    }
    const ens = new Ensemble(options, baseDir, servers, ownsBaseDir);
    for (const s of servers) ens.writeConfig(s);
    return ens;
  }

  /** Re-attaches to a detached ensemble from its state file (the CLI's status/down). */
  static attach(state: EnsembleState, placement?: EnsemblePlacement): Ensemble {
    const servers = state.servers.map(({ pid: _pid, ...s }) => s);
    const ens = new Ensemble({ ...state.options, detached: true, ...(placement ? { placement } : {}) }, state.baseDir, servers, false);
    for (const s of state.servers) {
      if (s.pid !== null && pidAlive(s.pid)) ens.procs.set(s.id, ens.adoptPid(s.pid));
    }
    return ens;
  }

  get connectString(): string {
    return this.servers.map((s) => `${s.host}:${s.clientPort}`).join(',');
  }

  server(id: number): ServerInfo {
    const s = this.servers.find((x) => x.id === id);
    if (!s) throw new EnsembleError(`no server ${id} in this ensemble (servers: ${this.servers.map((x) => x.id).join(', ')})`);
    return s;
  }

  address(id: number): string {
    const s = this.server(id);
    return `${s.host}:${s.clientPort}`;
  }

  state(id: number): ServerState {
    const p = this.procs.get(id);
    if (!p || p.hasExited) return 'stopped';
    return this.paused.has(id) ? 'paused' : 'running';
  }

  pid(id: number): number | null {
    const p = this.procs.get(id);
    return p && !p.hasExited ? p.pid : null;
  }

  snapshotState(): EnsembleState {
    const { placement: _placement, ...options } = this.options;
    return {
      baseDir: this.baseDir,
      options,
      servers: this.servers.map((s) => ({ ...s, pid: this.pid(s.id) })),
    };
  }

  private writeConfig(s: ServerInfo): void {
    const o = this.options;
    mkdirSync(s.dir, { recursive: true });
    mkdirSync(s.dataDir, { recursive: true });
    mkdirSync(s.dataLogDir, { recursive: true });
    writeFileSync(join(s.dataDir, 'myid'), `${s.id}\n`);
    const tickTime = o.tickTime ?? 500;
    const cfg: Record<string, string | number | boolean> = {
      tickTime,
      initLimit: o.initLimit ?? 10,
      syncLimit: o.syncLimit ?? 5,
      dataDir: s.dataDir,
      dataLogDir: s.dataLogDir,
      clientPort: s.clientPort,
      clientPortAddress: s.host,
      maxClientCnxns: 0,
      'admin.enableServer': false,
      '4lw.commands.whitelist': (o.fourLetterWords ?? ['*']).join(','),
      snapCount: o.snapCount ?? 100_000,
      preAllocSize: o.preAllocSizeKb ?? 4096,
    };
    if (o.minSessionTimeout !== undefined) cfg.minSessionTimeout = o.minSessionTimeout;
    if (o.maxSessionTimeout !== undefined) cfg.maxSessionTimeout = o.maxSessionTimeout;
    if (this.servers.length > 1) {
      for (const p of this.servers) cfg[`server.${p.id}`] = `${p.host}:${p.quorumPort}:${p.electionPort}`;
    }
    Object.assign(cfg, o.extraConfig ?? {}, o.serverConfig?.(s) ?? {});
    writeFileSync(
      s.configFile,
      Object.entries(cfg)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
    );
    writeFileSync(
      join(s.dir, 'log4j.properties'),
      [
        'log4j.rootLogger=INFO, FILE',
        'log4j.appender.FILE=org.apache.log4j.RollingFileAppender',
        `log4j.appender.FILE.File=${s.logFile}`,
        'log4j.appender.FILE.MaxFileSize=64MB',
        'log4j.appender.FILE.MaxBackupIndex=10',
        'log4j.appender.FILE.layout=org.apache.log4j.PatternLayout',
        `log4j.appender.FILE.layout.ConversionPattern=${ZK_LOG_PATTERN}`,
        '',
      ].join('\n'),
    );
  }

  private javaArgs(s: ServerInfo): string[] {
    const o = this.options;
    const props: Record<string, string | number | boolean> = {
      'zookeeper.log.dir': s.dir,
      'log4j.configuration': `file:${join(s.dir, 'log4j.properties')}`,
      'zookeeper.admin.enableServer': false,
      'zookeeper.cnxTimeout': o.cnxTimeoutMs ?? 1000,
      'zookeeper.extendedTypesEnabled': o.extendedTypesEnabled ?? false,
      ...(o.juteMaxBuffer !== undefined ? { 'jute.maxbuffer': o.juteMaxBuffer } : {}),
      ...(o.systemProperties ?? {}),
    };
    const jvm = [`-Xmx${o.heapMb ?? 256}m`, '-Xms32m', '-XX:+UseSerialGC', '-Xss1m'];
    if (o.fastStartup ?? true) jvm.push('-XX:TieredStopAtLevel=1');
    return [...jvm, ...Object.entries(props).map(([k, v]) => `-D${k}=${v}`), '-cp', javaClasspath(), MAIN_CLASS, s.configFile];
  }

  private adoptPid(pid: number): Proc {
    const proc: Proc = { pid, child: null, exitCode: null, hasExited: false, exited: Promise.resolve() };
    proc.exited = (async () => {
      // Unref'd: watching an adopted server must not keep a short CLI process alive.
      while (pidAlive(pid)) await sleep(50, undefined, { ref: false });
      proc.hasExited = true;
    })();
    return proc;
  }

  private spawnServer(id: number): void {
    const s = this.server(id);
    if (this.state(id) !== 'stopped') throw new EnsembleError(`server ${id} is already running`, id);
    const stdout = join(s.dir, 'stdout.log');
    const placement = this.options.placement;
    // A placed server opens its own stdout file: its disk may be one that can hang.
    const out = placement ? null : openSync(stdout, 'a');
    const line = placement?.command(id, 'java', this.javaArgs(s), stdout) ?? { command: 'java', args: this.javaArgs(s) };
    const child = spawn(line.command, line.args, {
      cwd: placement ? '/' : s.dir,
      stdio: out === null ? 'ignore' : ['ignore', out, out],
      detached: this.options.detached ?? false,
    });
    if (out !== null) closeSync(out);
    if (child.pid === undefined) throw new EnsembleError(`server ${id}: could not start java`, id);
    const proc: Proc = { pid: child.pid, child, exitCode: null, hasExited: false, exited: Promise.resolve() };
    proc.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        proc.exitCode = code ?? (signal ? 128 : null);
        proc.hasExited = true;
        resolve();
      });
    });
    if (this.options.detached) child.unref();
    else {
      // Last resort for crashed tests: no orphan JVM may outlive its test process.
      this.unhook ??= onExitSync(() => this.killAllSync());
    }
    this.paused.delete(id);
    this.stoppedOnPurpose.delete(id);
    this.procs.set(id, proc);
  }

  /** Starts a stopped or killed server again (same data). */
  async startServer(id: number, opts: { waitMs?: number } = {}): Promise<void> {
    this.spawnServer(id);
    await this.waitForServing(id, opts.waitMs ?? 30_000);
  }

  /** Waits until one server answers srvr as part of the quorum. */
  async waitForServing(id: number, timeoutMs = 30_000): Promise<SrvrInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertAlive(id);
      const info = await this.srvr(id);
      if (info) return info;
      if (Date.now() > deadline) {
        throw new EnsembleError(`server ${id} (${this.address(id)}) is not serving after ${timeoutMs} ms`, id, this.logTail(id));
      }
      await sleep(100);
    }
  }

  /** The end of a server's log (and stdout), unless its files cannot be read right now (a stalled disk would hang us). */
  private logTail(id: number, withStdout = false): string {
    if (this.options.placement?.filesReadable?.(id) === false) return `(server ${id}'s files are on a faulted disk: not read)`;
    const s = this.server(id);
    return [tail(s.logFile), withStdout ? tail(join(s.dir, 'stdout.log'), 15) : ''].filter(Boolean).join('\n');
  }

  private assertAlive(id: number): void {
    const p = this.procs.get(id);
    if (p?.hasExited) {
      const log = this.logTail(id, true);
      throw new EnsembleError(`server ${id} (${this.address(id)}) exited with code ${p.exitCode}`, id, log);
    }
  }

  /**
   * Waits until every running (not paused, not stopped) server serves, with exactly one leader
   * among them (or one standalone server).
   */
  async waitForQuorum(opts: { timeoutMs?: number } = {}): Promise<{ leaderId: number }> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const up = this.servers.filter((s) => this.procs.has(s.id) && !this.stoppedOnPurpose.has(s.id) && !this.paused.has(s.id));
      for (const s of up) this.assertAlive(s.id);
      const infos = await Promise.all(up.map(async (s) => [s.id, await this.srvr(s.id)] as const));
      const leaders = infos.filter(([, i]) => i?.mode === 'leader' || i?.mode === 'standalone');
      const serving = infos.filter(([, i]) => i !== null);
      last = infos.map(([id, i]) => `server ${id}: ${i ? i.mode : 'not serving'}`).join(', ');
      if (leaders.length === 1 && serving.length === infos.length && infos.length > 0) return { leaderId: leaders[0]![0] };
      if (Date.now() > deadline) {
        const stuck = infos.find(([, i]) => i === null)?.[0] ?? this.servers[0]!.id;
        throw new EnsembleError(`no quorum after ${timeoutMs} ms (${last})`, stuck, this.logTail(stuck));
      }
      await sleep(100);
    }
  }

  async fourLetter(id: number, command: string, timeoutMs = 3000): Promise<string> {
    const s = this.server(id);
    return fourLetterWord(s.host, s.clientPort, command, timeoutMs);
  }

  /** Parsed `srvr`, or null when the server is down, paused or not serving. */
  async srvr(id: number, timeoutMs = 1500): Promise<SrvrInfo | null> {
    if (this.state(id) !== 'running') return null;
    try {
      return parseSrvr(await this.fourLetter(id, 'srvr', timeoutMs));
    } catch {
      return null;
    }
  }

  /** The server that currently says it leads; throws when none does. */
  async leaderId(): Promise<number> {
    for (const s of this.servers) {
      const info = await this.srvr(s.id);
      if (info?.mode === 'leader' || info?.mode === 'standalone') return s.id;
    }
    throw new EnsembleError('no server reports Mode: leader');
  }

  async followerIds(): Promise<number[]> {
    const out: number[] = [];
    for (const s of this.servers) if ((await this.srvr(s.id))?.mode === 'follower') out.push(s.id);
    return out;
  }

  /** SIGTERM, then SIGKILL after graceMs; returns once the ports are free. */
  async stop(id: number, graceMs = 5000): Promise<void> {
    await this.terminate(id, 'SIGTERM', graceMs);
  }

  /** kill -9. */
  async kill(id: number): Promise<void> {
    await this.terminate(id, 'SIGKILL', 0);
  }

  private async terminate(id: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    this.stoppedOnPurpose.add(id);
    const p = this.procs.get(id);
    // Only a server that was running holds its ports; one that never started or crashed may have
    // failed precisely because someone else holds them.
    if (p && !p.hasExited) {
      // A stopped (SIGSTOPped) JVM must be continued to act on SIGTERM.
      if (this.paused.has(id) && signal !== 'SIGKILL') signalPid(p.pid, 'SIGCONT');
      signalPid(p.pid, signal);
      if (graceMs > 0) {
        const done = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
        if (!done) signalPid(p.pid, 'SIGKILL');
      }
      await p.exited;
      await this.waitPortsFree(id);
    }
    this.paused.delete(id);
  }

  private async waitPortsFree(id: number, timeoutMs = 15_000): Promise<void> {
    const s = this.server(id);
    const deadline = Date.now() + timeoutMs;
    const free = (port: number): Promise<boolean> => this.options.placement?.portFree(id, port) ?? portFree(s.host, port);
    for (const port of [s.clientPort, s.quorumPort, s.electionPort]) {
      while (!(await free(port))) {
        if (Date.now() > deadline) throw new EnsembleError(`server ${id}: port ${s.host}:${port} still bound ${timeoutMs} ms after stop`, id);
        await sleep(50);
      }
    }
  }

  /** SIGSTOP: the JVM freezes with its sockets open, like a hung process. */
  async pause(id: number): Promise<void> {
    const p = this.procs.get(id);
    if (!p || p.hasExited) throw new EnsembleError(`server ${id} is not running`, id);
    signalPid(p.pid, 'SIGSTOP');
    this.paused.add(id);
    // SIGSTOP reaches the JVM's threads asynchronously: a request sent the moment kill()
    // returns could still be answered by a thread not yet stopped (seen under load). A pause
    // is only a pause once every thread is in state T.
    const deadline = Date.now() + 5000;
    while (!allThreadsStopped(p.pid)) {
      if (p.hasExited) throw new EnsembleError(`server ${id} exited while being paused`, id, this.logTail(id));
      if (Date.now() > deadline) throw new EnsembleError(`server ${id} (pid ${p.pid}) not stopped 5 s after SIGSTOP`, id);
      await sleep(5);
    }
  }

  async resume(id: number): Promise<void> {
    const p = this.procs.get(id);
    if (!p || p.hasExited) throw new EnsembleError(`server ${id} is not running`, id);
    signalPid(p.pid, 'SIGCONT');
    this.paused.delete(id);
  }

  /** Stop (SIGTERM) and start again with the same data. */
  async restart(id: number): Promise<void> {
    await this.stop(id);
    await this.startServer(id);
  }

  /** Kills every server, waits for their ports, removes the temporary directory. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.servers.map((s) => this.kill(s.id)));
    this.unhook?.();
    if (this.ownsBaseDir && !this.options.keepFiles) rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** Synchronous kill for exit hooks, where nothing can be awaited. */
  killAllSync(): void {
    for (const p of this.procs.values()) if (!p.hasExited) signalPid(p.pid, 'SIGKILL');
  }
}

/** A random 127.a.b subnet whose quorum and client ports are free, so parallel test files never meet. */
async function freeSubnet(size: number): Promise<string> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = 1 + Math.floor(Math.random() * 254);
    const b = 1 + Math.floor(Math.random() * 254);
    const subnet = `127.${a}.${b}`;
    let ok = true;
    for (let id = 1; id <= size && ok; id++) {
      for (const port of [2181, 2888, 3888]) {
        if (!(await portFree(`${subnet}.${100 + id}`, port))) {
          ok = false;
          break;
        }
      }
    }
    if (ok) return subnet;
  }
  throw new EnsembleError('no free loopback subnet found for an ensemble');
}
