/**
 * The reference cluster's configuration: the seed's services in miniature (a meta per node that
 * elects a leader through ZooKeeper, a chunk per node that sends it requests, a scavenger per
 * node), with every timing a scenario may change. One object is built by the runner and handed
 * to each service process (in its environment, as JSON: no secrets in it), so both sides read the
 * same defaults from here.
 */
import { DEFAULT_ELECTION_PATH, DEFAULT_MEMBERS_PATH } from '../../recipes/index.ts';

/** The timings a scenario (or `lab run --timings FILE`) may override; all in milliseconds. */
export interface ClusterTimings {
  /** ZooKeeper's tickTime. */
  tickTimeMs: number;
  /** ZooKeeper's syncLimit (ticks): how long the leader waits for a follower's ACK (transaction timeout) or any packet. */
  syncLimit: number;
  /** The metas' ZooKeeper session timeout (the guard's own timing when it runs). */
  sessionTimeoutMs: number;
  /** The chunks' and scavengers' ZooKeeper session timeout. */
  clientSessionTimeoutMs: number;
  /** A chunk's timeout of one request to the meta leader (10 s in the seed). */
  chunkTimeoutMs: number;
  /** A chunk without an answer from the meta leader this long goes to "Session expired" and stops serving. */
  chunkSessionExpireMs: number;
  /** A chunk sends its next request this long after the last one ended. */
  chunkIntervalMs: number;
  /** The scavenger's period (5 min in the seed). */
  scavengerPeriodMs: number;
}

export const DEFAULT_TIMINGS: ClusterTimings = {
  tickTimeMs: 200,
  // 2 s: a follower on a healthy but busy disk (a shared machine's fsync) keeps up; a hung one is dropped 2 s after its first unacknowledged proposal.
  syncLimit: 10,
  sessionTimeoutMs: 4000,
  clientSessionTimeoutMs: 4000,
  chunkTimeoutMs: 2000,
  chunkSessionExpireMs: 4000,
  chunkIntervalMs: 100,
  scavengerPeriodMs: 1000,
};

/** The seed's own timings, for `--timings` files that want them (documented in docs/lab.md). */
export const SEED_TIMINGS: Partial<ClusterTimings> = {
  tickTimeMs: 2000,
  syncLimit: 4,
  chunkTimeoutMs: 10_000,
  chunkSessionExpireMs: 20_000,
  scavengerPeriodMs: 300_000,
};

export const META_PORT = 10100;

/** The znodes of the cluster (the seed's layout, plus the meta's journal and the scavengers' marks). */
export const PATHS = {
  election: DEFAULT_ELECTION_PATH,
  members: DEFAULT_MEMBERS_PATH,
  /** One persistent znode per accepted write, `<chunk node>-<seq>`, written by the meta leader through a fenced multi. */
  journal: '/zbs/meta/journal',
  /** One znode per node, set by its scavenger on every run (the cluster's steady background writes). */
  scavenger: '/zbs/scavenger',
} as const;

/** Which defences the guard runs in the meta (all on for `--guard on`; a benchmark turns them off one by one). */
export interface GuardDefences {
  /** The in-process health gate resigns (it always judges; off, it only reports). */
  gate: boolean;
  /** The out-of-process watchdog (`zkwarden guard run`) beside the meta. */
  watchdog: boolean;
  /** Deposition on the chunks' evidence (the chunks publish suspicions). */
  deposition: boolean;
}

export interface GuardSettings {
  defences: GuardDefences;
  /** Overrides of the guard's timing model (src/guard/timing.ts); default its own defaults. */
  timing?: Record<string, number>;
  /** Deposition options (holdMs, minTermMs, depositionIntervalMs, quorum). */
  deposition?: Record<string, number>;
}

/** What the runner hands every service. */
export interface ServiceConfigBase {
  node: string;
  /** The node's own address (the service listens and connects from it). */
  ip: string;
  nodes: string[];
  /** Where the service's files go: a directory on its node's disk. */
  dir: string;
  /** The ensemble, in the order this service tries it (the seed's node1 services went to the other servers first). */
  connectString: string;
  timings: ClusterTimings;
}

export interface MetaConfig extends ServiceConfigBase {
  service: 'meta';
  port: number;
  /**
   * How the request path appends to the meta's data file: 'async' (libuv's pool: a hung disk hangs
   * the requests while the ZooKeeper client, on the main thread, keeps the session — the seed's
   * meta) or 'sync' (on the main thread: a hung disk wedges the whole process, heartbeats too).
   */
  dataWrites: 'async' | 'sync';
  guard: GuardSettings | null;
}

export interface ChunkConfig extends ServiceConfigBase {
  service: 'chunk';
  /** Publish suspicions of an unanswering leader (the guard's deposition). */
  witness: boolean;
}

export interface ScavengerConfig extends ServiceConfigBase {
  service: 'scavenger';
}

export type ServiceConfig = MetaConfig | ChunkConfig | ScavengerConfig;
export type ServiceKind = ServiceConfig['service'];

export const SERVICES: readonly ServiceKind[] = ['meta', 'chunk', 'scavenger'];

/** The glog file of each service (its base name is what `investigate` calls the service). */
export const LOG_FILES: Record<ServiceKind, string> = {
  meta: 'zbs-metad.INFO',
  chunk: 'zbs-chunkd.INFO',
  scavenger: 'zbs-scavenger.INFO',
};

/** The environment variable that carries a service's configuration (JSON). */
export const CONFIG_ENV = 'ZKWARDEN_LAB_SERVICE';

/** Reads a service's configuration from its environment (the service side). */
export function configFromEnv(): ServiceConfig {
  const text = process.env[CONFIG_ENV];
  if (!text) throw new Error(`${CONFIG_ENV} is not set: lab services are started by the lab's cluster (src/lab/cluster/cluster.ts)`);
  return JSON.parse(text) as ServiceConfig;
}

/** `timings` with `overrides` applied, each checked: a positive integer, and the relations a run needs. */
export function resolveTimings(overrides: Partial<Record<string, unknown>> = {}, where = 'timings'): ClusterTimings {
  const out: ClusterTimings = { ...DEFAULT_TIMINGS };
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in DEFAULT_TIMINGS)) throw new ClusterConfigError(`${where}.${k}`, `unknown timing (known: ${Object.keys(DEFAULT_TIMINGS).join(', ')})`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      throw new ClusterConfigError(`${where}.${k}`, `expected a positive integer, got ${JSON.stringify(v)}`);
    (out as unknown as Record<string, number>)[k] = v;
  }
  const maxSession = 20 * out.tickTimeMs;
  const minSession = 2 * out.tickTimeMs;
  for (const k of ['sessionTimeoutMs', 'clientSessionTimeoutMs'] as const) {
    if (out[k] < minSession || out[k] > maxSession) {
      throw new ClusterConfigError(
        `${where}.${k}`,
        `${out[k]} ms is outside what ZooKeeper grants with tickTimeMs ${out.tickTimeMs} (${minSession}–${maxSession} ms)`,
      );
    }
  }
  if (out.chunkSessionExpireMs < out.chunkTimeoutMs) {
    throw new ClusterConfigError(
      `${where}.chunkSessionExpireMs`,
      `must be at least chunkTimeoutMs (${out.chunkTimeoutMs}): a chunk expires after requests time out`,
    );
  }
  return out;
}

export class ClusterConfigError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ClusterConfigError';
    this.field = field;
  }
}
