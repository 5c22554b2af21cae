/**
 * The observer: the lab's view of the cluster from outside it, every 100 ms. It asks ZooKeeper
 * (a session of its own on ZooKeeper's current leader, so a lagging or hung follower never
 * answers for it) who it names as meta leader and in which epoch; ZooKeeper's own leader (`srvr`,
 * every 500 ms); each meta's process state from /proc (R/S/D/T: D when any thread waits on the
 * disk uninterruptibly) and whether it says it leads; each chunk's state and its served and
 * failed requests (their events, on the runner's pipe). It tails the ZooKeeper servers' logs
 * through the nodes' backing directories (never through a disk that may hang) for the quorum's
 * drops of a follower.
 *
 * Nothing it does waits on a node: every read is bounded and at most one of each kind is in flight.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readLeader } from '../../recipes/index.ts';
import { createClient, parseSrvr, fourLetterWord, type ZooKeeperClient } from '../../zk/index.ts';
import type { Cluster, ServiceProc } from '../cluster/cluster.ts';
import { PATHS } from '../cluster/config.ts';
import type { ServiceEvent } from '../cluster/wire.ts';
import type { Node } from '../node.ts';
import { DropScanner, type DropReason } from './zk-drops.ts';

export interface MetaView {
  /** What the meta says: leader (of `epoch`), candidate, or down (no process). */
  role: 'leader' | 'candidate' | 'down';
  epoch: number | null;
  /** Process state: R, S, D (a thread in uninterruptible disk wait), T (stopped), Z, or '-' (none). */
  proc: string;
  threadsInD: number;
}

export interface ChunkView {
  /** serving, retrying (its last request failed), expired (its session with the leader), stuck (no request ended for a timeout and more: hung on its own disk), down. */
  state: 'serving' | 'retrying' | 'expired' | 'stuck' | 'down';
  /** Requests served and failed so far (every incarnation of the node's chunk). */
  ok: number;
  errors: number;
}

export interface NamedLeader {
  node: string | null;
  endpoint: string;
  epoch: number;
  claimed: boolean;
}

export interface Sample {
  at: number;
  /** ZooKeeper's own leader (server id), null while there is none (an election, no quorum). */
  zkLeader: number | null;
  /** The meta leader ZooKeeper names (its lowest election candidate), null for none or not known. */
  named: NamedLeader | null;
  /** False while the observer's last read of ZooKeeper failed (named is then the last known answer). */
  namedFresh: boolean;
  metas: Record<string, MetaView>;
  chunks: Record<string, ChunkView>;
  /** Metas acting as leader: saying so, with a process that runs (a stopped one acts as nothing). */
  leaders: number;
}

/** A follower the ZooKeeper leader dropped, read from the leader's log. */
export interface ZkDrop {
  at: number;
  by: number;
  peer: string | null;
  reason: DropReason;
  line: string;
}

const SAMPLE_MS = 100;
const SRVR_MS = 1000;
/**
 * A server that did not answer `srvr` (its disk hangs: the worker thread that took the command is
 * stuck logging it) is asked again only once restarted, or after this long. Each unanswered ask
 * would leave one more line, timed inside the stall, for the server to write when its disk comes
 * back: the observer's own traces in the node's log, which a real incident's log would not have.
 */
const UNANSWERED_BACKOFF_MS = 60_000;

interface MetaState {
  role: 'leader' | 'candidate';
  epoch: number | null;
}

export class Observer {
  readonly samples: Sample[] = [];
  readonly drops: ZkDrop[] = [];
  private readonly cluster: Cluster;
  private readonly metaState = new Map<ServiceProc, MetaState>();
  private readonly chunkCounts = new Map<string, { ok: number; errors: number }>();
  private readonly chunkState = new Map<ServiceProc, ChunkView['state']>();
  /** When each chunk last finished a request (or started). */
  private readonly chunkActive = new Map<ServiceProc, number>();
  private zkLeader: number | null = null;
  private named: NamedLeader | null = null;
  private namedFresh = false;
  private client: { server: number; zk: ZooKeeperClient } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  private srvring = false;
  private lastSrvr = 0;
  /** Server id → the pid and time of its last unanswered srvr. */
  private readonly unanswered = new Map<number, { pid: number | null; at: number }>();
  private readonly logOffsets = new Map<number, number>();
  /** Server id → its log's drop reader (a reason read waits there for its GOODBYE). */
  private readonly dropScanners = new Map<number, DropScanner>();
  private readonly unhook: () => void;
  private stopped = false;

  constructor(cluster: Cluster) {
    this.cluster = cluster;
    this.unhook = cluster.onEvent((s, e) => this.onEvent(s, e));
    for (const s of cluster.history) for (const e of s.events) this.onEvent(s, e);
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), SAMPLE_MS);
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unhook();
    this.scanLogs();
    await this.client?.zk.close({ timeoutMs: 2000 }).catch(() => undefined);
    this.client = null;
  }

  /** The latest sample (one is taken now if none was). */
  latest(): Sample {
    return this.samples[this.samples.length - 1] ?? this.sample();
  }

  private onEvent(s: ServiceProc, e: ServiceEvent): void {
    if (s.kind === 'meta') {
      if (e.ev === 'elected') this.metaState.set(s, { role: 'leader', epoch: e.epoch });
      else if (e.ev === 'deposed') this.metaState.set(s, { role: 'candidate', epoch: null });
    } else if (s.kind === 'chunk') {
      const c = this.chunkCounts.get(s.node.name) ?? { ok: 0, errors: 0 };
      if (e.ev === 'request' || e.ev === 'ready') this.chunkActive.set(s, e.at);
      if (e.ev === 'request') {
        if (e.ok) c.ok++;
        else c.errors++;
      } else if (e.ev === 'state' && (e.state === 'serving' || e.state === 'retrying' || e.state === 'expired')) this.chunkState.set(s, e.state);
      this.chunkCounts.set(s.node.name, c);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    this.samples.push(this.sample());
    if (!this.reading) {
      this.reading = true;
      void this.readNamed().finally(() => (this.reading = false));
    }
    if (!this.srvring && Date.now() - this.lastSrvr >= SRVR_MS) {
      this.srvring = true;
      this.lastSrvr = Date.now();
      void this.readZkLeader().finally(() => (this.srvring = false));
      this.scanLogs();
    }
  }

  private sample(): Sample {
    const metas: Record<string, MetaView> = {};
    const chunks: Record<string, ChunkView> = {};
    let leaders = 0;
    for (const n of this.cluster.nodes) {
      const m = this.cluster.current(n, 'meta');
      const p = m?.process() ?? null;
      const threads = p ? [...p.threads().values()] : [];
      const main = p?.state() ?? null;
      const inD = threads.filter((x) => x === 'D').length;
      const st = m ? this.metaState.get(m) : undefined;
      const proc = main === null ? '-' : inD > 0 ? 'D' : main;
      const role = !m || main === null ? 'down' : (st?.role ?? 'candidate');
      metas[n.name] = { role, epoch: role === 'leader' ? (st?.epoch ?? null) : null, proc, threadsInD: inD };
      if (role === 'leader' && proc !== 'T' && proc !== 'Z') leaders++;
      const c = this.cluster.current(n, 'chunk');
      const counts = this.chunkCounts.get(n.name) ?? { ok: 0, errors: 0 };
      const quiet = c ? Date.now() - (this.chunkActive.get(c) ?? c.startedAt) > this.cluster.timings.chunkTimeoutMs + 1000 : false;
      chunks[n.name] = { state: !c ? 'down' : quiet ? 'stuck' : (this.chunkState.get(c) ?? 'retrying'), ...counts };
    }
    return { at: Date.now(), zkLeader: this.zkLeader, named: this.named, namedFresh: this.namedFresh, metas, chunks, leaders };
  }

  private async readZkLeader(): Promise<void> {
    const ens = this.cluster.ensemble;
    const answers = await Promise.all(
      ens.servers.map(async (s) => {
        if (ens.state(s.id) !== 'running') return 'down' as const;
        const pid = ens.pid(s.id);
        const last = this.unanswered.get(s.id);
        if (last && last.pid === pid && Date.now() - last.at < UNANSWERED_BACKOFF_MS) return 'unknown' as const;
        try {
          const mode = parseSrvr(await fourLetterWord(s.host, s.clientPort, 'srvr', 800))?.mode;
          this.unanswered.delete(s.id);
          return mode === 'leader' ? s.id : ('other' as const);
        } catch {
          this.unanswered.set(s.id, { pid, at: Date.now() });
          return 'unknown' as const;
        }
      }),
    );
    const leader = answers.find((x): x is number => typeof x === 'number');
    // No leader among those that answered: none only if every server answered (else: not known, keep).
    if (leader !== undefined) this.zkLeader = leader;
    else if (!answers.includes('unknown')) this.zkLeader = null;
  }

  /** Reads the meta leader ZooKeeper names, on a session with ZooKeeper's leader. */
  private async readNamed(): Promise<void> {
    const leader = this.zkLeader;
    if (leader === null) {
      this.namedFresh = false;
      return;
    }
    try {
      if (this.client?.server !== leader) {
        const old = this.client;
        this.client = null;
        void old?.zk.close({ timeoutMs: 1000 }).catch(() => undefined);
        const zk = createClient(this.cluster.ensemble.address(leader), { sessionTimeoutMs: 4000, requestTimeoutMs: 1000, connectTimeoutMs: 1000 });
        await zk.connect({ timeoutMs: 2000 });
        if (this.stopped) {
          await zk.close({ timeoutMs: 1000 }).catch(() => undefined);
          return;
        }
        this.client = { server: leader, zk };
      }
      const info = await readLeader(this.client.zk, { path: PATHS.election, requestTimeoutMs: 1000 });
      this.named = info
        ? { node: this.cluster.nodeOfEndpoint(info.endpoint)?.name ?? null, endpoint: info.endpoint, epoch: info.epoch, claimed: info.claimed }
        : null;
      this.namedFresh = true;
    } catch {
      this.namedFresh = false;
      const old = this.client;
      this.client = null;
      void old?.zk.close({ timeoutMs: 1000 }).catch(() => undefined);
    }
  }

  /** New lines of every server's log (from its node's backing directory): the leader's drops of followers. */
  private scanLogs(): void {
    for (const s of this.cluster.ensemble.servers) {
      const node = this.cluster.lab.node(s.id);
      const file = backingPath(node, s.logFile);
      let text: string;
      try {
        const size = statSync(file).size;
        const from = this.logOffsets.get(s.id) ?? 0;
        if (size <= from) continue;
        const buf = Buffer.alloc(Math.min(size - from, 4 << 20));
        const fd = openSync(file, 'r');
        try {
          readSync(fd, buf, 0, buf.length, from);
        } finally {
          closeSync(fd);
        }
        text = buf.toString('utf8');
        const end = text.lastIndexOf('\n');
        if (end < 0) continue;
        text = text.slice(0, end);
        this.logOffsets.set(s.id, from + Buffer.byteLength(text) + 1);
      } catch {
        continue;
      }
      let scanner = this.dropScanners.get(s.id);
      if (!scanner) this.dropScanners.set(s.id, (scanner = new DropScanner()));
      for (const d of scanner.feed(text.split('\n'))) {
        const peer = this.cluster.nodes.find((n) => n.ip === d.ip)?.name ?? null;
        this.drops.push({ at: d.at, by: s.id, peer, reason: d.reason, line: d.line });
      }
    }
  }
}

/** Where a file on a node's disk lives in the disk's backing directory (reading there never hangs). */
export function backingPath(node: Node, path: string): string {
  const root = node.disk.root;
  if (node.disk.kind !== 'faultfs' || !(path === root || path.startsWith(`${root}/`))) return path;
  return node.disk.backing + path.slice(root.length);
}
