/**
 * Leader discovery: who leads, since when, in which epoch — as ZooKeeper says, for services
 * that are not candidates themselves.
 *
 * The leader is the lowest candidate znode under the election path (the same rule the
 * candidates follow); its epoch is that znode's czxid. `since` is the mtime of the term's claim
 * in the election parent when the claim names this znode (`claimed: true`); until the new
 * leader has claimed its term (one round trip after it became the lowest) it is the znode's
 * ctime and `claimed` is false: the candidate is leader-designate and does not act yet.
 *
 * Epochs never go back: a watcher that reads a lower epoch than one it has already seen (a
 * lagging server, a restarted reader seeded with `minEpoch`) ignores that view.
 */
import { EventEmitter } from 'node:events';
import { WatchedRead } from './watched-read.ts';
import { NoNodeError, type WatchListener, type ZooKeeperClient } from '../zk/index.ts';
import { DEFAULT_CANDIDATE_PREFIX, DEFAULT_ELECTION_PATH, checkPrefix, checkRecipePath, decodePayload, sortCandidates } from './layout.ts';

export interface LeaderInfo {
  endpoint: string;
  name: string;
  /** The term's fencing token: czxid of the leader's election znode. */
  epoch: number;
  /** Start of the term (claim mtime), or the znode's ctime while not claimed; ms since the epoch, ZooKeeper's clock. */
  since: number;
  claimed: boolean;
  /** Full path of the leader's election znode. */
  znode: string;
  /** The leader's session (ephemeralOwner of its znode). */
  sessionId: bigint;
  /** The candidate's whole payload (endpoint, name, metadata). */
  payload: Record<string, unknown>;
}

export interface DiscoveryOptions {
  /** The election parent; default `/zbs/meta/__mj_j`. */
  path?: string;
  prefix?: string;
  /** Ignore leaders with a lower epoch than this (e.g. the highest epoch persisted by an earlier run). */
  minEpoch?: number;
  requestTimeoutMs?: number;
  /** After an unexpected error the watcher reads again after this long; default 1000 ms. */
  retryDelayMs?: number;
}

const MAX_ATTEMPTS = 10;

function options(o: DiscoveryOptions): { path: string; prefix: string; timeoutMs: number | undefined } {
  const path = o.path ?? DEFAULT_ELECTION_PATH;
  checkRecipePath(path, 'path');
  const prefix = o.prefix ?? DEFAULT_CANDIDATE_PREFIX;
  checkPrefix(prefix);
  return { path, prefix, timeoutMs: o.requestTimeoutMs };
}

/**
 * Reads who leads now (null: no candidate). With `watch`, leaves watches that fire when the
 * answer may have changed: the children of the election path (or its creation) and its data
 * (the claim).
 */
export async function readLeader(client: ZooKeeperClient, opts: DiscoveryOptions = {}, watch?: WatchListener): Promise<LeaderInfo | null> {
  const { path, prefix, timeoutMs } = options(opts);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    let children: string[];
    try {
      children = (await client.getChildren(path, { watch, timeoutMs })).children;
    } catch (e) {
      if (!(e instanceof NoNodeError)) throw e;
      // No election yet: with a watch, hear of its creation (and look again if it just came).
      if (watch && (await client.exists(path, { watch, timeoutMs })) !== null) continue;
      return null;
    }
    const queue = sortCandidates(children, prefix);
    if (queue.length === 0) return null;
    const znode = `${path}/${queue[0].name}`;
    let node;
    let parent;
    try {
      node = await client.getData(znode, { timeoutMs });
      parent = await client.getData(path, { watch, timeoutMs });
    } catch (e) {
      // The lowest went between the reads: its successor (if any) leads now; read again.
      if (e instanceof NoNodeError) continue;
      throw e;
    }
    const payload = decodePayload(node.data);
    const claim = decodePayload(parent.data);
    const claimed = claim.epoch === node.stat.czxid && claim.znode === queue[0].name;
    return {
      endpoint: typeof payload.endpoint === 'string' ? payload.endpoint : '',
      name: typeof payload.name === 'string' ? payload.name : queue[0].name,
      epoch: node.stat.czxid,
      since: claimed ? parent.stat.mtime : node.stat.ctime,
      claimed,
      znode,
      sessionId: node.stat.ephemeralOwner,
      payload,
    };
  }
  throw new Error(`readLeader ${path}: the leader changed on each of ${MAX_ATTEMPTS} reads`);
}

export interface DiscoveryEvents {
  /** The leader view changed (a new term, the term got claimed, or no leader). */
  change: [leader: LeaderInfo | null, previous: LeaderInfo | null];
  /** A view with a lower epoch than already seen was read and ignored. */
  stale: [view: LeaderInfo, highestEpoch: number];
  warning: [err: Error];
}

/** Follows the leader: `await d.start()`, then `d.leader` and 'change' events; `d.stop()`. */
export class LeaderDiscovery extends EventEmitter<DiscoveryEvents> {
  readonly client: ZooKeeperClient;
  private readonly opts: DiscoveryOptions;
  private _leader: LeaderInfo | null = null;
  private _highestEpoch: number;
  private readonly follower: WatchedRead;

  constructor(client: ZooKeeperClient, opts: DiscoveryOptions = {}) {
    super();
    options(opts); // validate now, not at the first read
    this.client = client;
    this.opts = opts;
    this._highestEpoch = opts.minEpoch ?? 0;
    this.follower = new WatchedRead(
      client,
      async (onWatch) => this.accept(await readLeader(this.client, this.opts, onWatch)),
      (err) => this.emit('warning', err),
      opts.retryDelayMs ?? 1000,
    );
  }

  /** The current leader view (null: none, or not read yet). */
  get leader(): LeaderInfo | null {
    return this._leader;
  }

  /** The highest epoch ever accepted (or minEpoch). */
  get highestEpoch(): number {
    return this._highestEpoch;
  }

  async start(): Promise<LeaderInfo | null> {
    await this.follower.start();
    return this._leader;
  }

  stop(): void {
    this.follower.stop();
  }

  /** Reads again (serialized: at most one read in flight and one waiting). */
  refresh(): void {
    this.follower.refresh();
  }

  private accept(view: LeaderInfo | null): void {
    if (!this.follower.running) return;
    if (view && view.epoch < this._highestEpoch) {
      this.emit('stale', view, this._highestEpoch);
      return;
    }
    const prev = this._leader;
    if (view) this._highestEpoch = Math.max(this._highestEpoch, view.epoch);
    const same =
      prev === view ||
      (prev !== null && view !== null && prev.epoch === view.epoch && prev.znode === view.znode && prev.claimed === view.claimed && prev.since === view.since);
    if (same) return;
    this._leader = view;
    this.emit('change', view, prev);
  }
}
