/**
 * Deposition on the evidence of the leader's clients: the gray failure in which the leader
 * passes its own probes (its disk and endpoint answer it) but not its clients (its port is cut
 * from them, or it is "deaf" to them). No in-process check can see that; its clients can.
 *
 * - A client that cannot get answers from the leader publishes a **suspicion**: an ephemeral
 *   znode `<suspicions>/<node>~<random>` whose data names the leader's epoch (SuspicionWitness).
 *   It withdraws it when the leader answers again. A suspicion of an older epoch is void: it
 *   counts against nobody (the leader it named is gone).
 * - The **next candidate** (the one right behind the leader in the election queue) follows the
 *   queue and the suspicions (Deposer). When suspicions of the current epoch from enough
 *   distinct nodes (default: a majority of the cluster's nodes other than the leader's) have
 *   stood for holdMs, and its own health holds, it deposes the leader with one multi: check the
 *   leader's znode is still at the version it read (so still that epoch, still leading), check
 *   its own znode (so it is the one who takes over), delete the leader's znode, and record the
 *   deposition. Then the election hands over as after any departure: it claims the next term.
 * - Rate limits, so that a cluster whose clients cannot reach anyone does not flap: a term is not
 *   deposed before it has led for minTermMs (as seen by the deposer), and a deposer deposes at
 *   most once per depositionIntervalMs.
 * - The deposed leader, if it was wedged and wakes, finds its znode gone: its writes fail their
 *   fence (FencedError znodeGone) and its election steps down (reason znodeGone).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { NoNodeError, NodeExistsError, MultiError, type ZooKeeperClient, type Op } from '../zk/index.ts';
import { DEFAULT_CANDIDATE_PREFIX, WatchedRead, decodePayload, encodePayload, ensurePath, sortCandidates, type Election } from '../recipes/index.ts';
import { GuardConfigError } from './errors.ts';

/** Where suspicions of the leader of `electionPath` live. */
export function suspicionsPath(electionPath: string): string {
  return `${electionPath}_suspects`;
}

/** Where the last deposition of the leader of `electionPath` is recorded (persistent; its data). */
export function depositionsPath(electionPath: string): string {
  return `${electionPath}_deposed`;
}

export interface WitnessOptions {
  /** The node this client runs on (its host): suspicions count by distinct node. */
  node: string;
  electionPath: string;
  requestTimeoutMs?: number;
}

function checkNodeName(node: string, option: string): void {
  if (typeof node !== 'string' || node === '' || /[/~\s]/.test(node) || node.length > 200) {
    throw new GuardConfigError(option, `expected a node name without '/', '~' or spaces, got '${node}'`);
  }
}

/**
 * A client's voice: `suspect(epoch)` when the leader of that epoch does not answer, `clear()`
 * when it does. One znode per witness, created on the first suspicion and changed (not
 * re-created) when the epoch changes; ephemeral, so a dead client's suspicion goes with it.
 */
export class SuspicionWitness {
  readonly client: ZooKeeperClient;
  readonly node: string;
  private readonly path: string;
  private readonly timeoutMs: number | undefined;
  private readonly name: string;
  private _epoch: number | null = null;
  private exists = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(client: ZooKeeperClient, o: WitnessOptions) {
    checkNodeName(o.node, 'node');
    this.client = client;
    this.node = o.node;
    this.path = suspicionsPath(o.electionPath);
    this.timeoutMs = o.requestTimeoutMs;
    this.name = `${o.node}~${randomBytes(4).toString('hex')}`;
  }

  /** The epoch this witness suspects now, or null. */
  get suspecting(): number | null {
    return this._epoch;
  }

  /** Stands a suspicion of the leader of `epoch` (a no-op while one of that epoch stands). */
  suspect(epoch: number, reason = 'no answer'): Promise<void> {
    return this.serial(async () => {
      if (this._epoch === epoch) return;
      const znode = `${this.path}/${this.name}`;
      const data = encodePayload({ node: this.node, epoch, reason, at: Date.now() });
      const timeoutMs = this.timeoutMs;
      if (this.exists) {
        try {
          await this.client.setData(znode, data, -1, { timeoutMs });
          this._epoch = epoch;
          return;
        } catch (e) {
          if (!(e instanceof NoNodeError)) throw e;
          this.exists = false;
        }
      }
      try {
        await this.client.create(znode, data, { mode: 'ephemeral', timeoutMs });
      } catch (e) {
        if (e instanceof NoNodeError) {
          await ensurePath(this.client, this.path, timeoutMs);
          await this.client.create(znode, data, { mode: 'ephemeral', timeoutMs });
        } else if (e instanceof NodeExistsError) {
          await this.client.setData(znode, data, -1, { timeoutMs });
        } else throw e;
      }
      this.exists = true;
      this._epoch = epoch;
    });
  }

  /** Withdraws the suspicion (the leader answered, or another leader is there). */
  clear(): Promise<void> {
    return this.serial(async () => {
      if (!this.exists) return;
      try {
        await this.client.delete(`${this.path}/${this.name}`, -1, { timeoutMs: this.timeoutMs });
      } catch (e) {
        if (!(e instanceof NoNodeError)) throw e;
      }
      this.exists = false;
      this._epoch = null;
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

export interface DepositionOptions {
  /** The cluster's node names; the default quorum is a majority of those other than the leader's. */
  nodes?: readonly string[];
  /** Distinct suspecting nodes needed (overrides the majority rule; needed when `nodes` is not given). */
  quorum?: number;
  /** How long the quorum of suspicions must stand; default 1000 ms. */
  holdMs?: number;
  /** A term younger than this (since this deposer first saw it) is not deposed; default 5000 ms. */
  minTermMs?: number;
  /** At most one deposition by this deposer per this many ms; default 10 000. */
  depositionIntervalMs?: number;
}

export interface ResolvedDeposition {
  nodes: readonly string[] | null;
  quorum: number | null;
  holdMs: number;
  minTermMs: number;
  depositionIntervalMs: number;
}

export function resolveDeposition(o: DepositionOptions, prefix = 'deposition.'): ResolvedDeposition {
  const ms = (v: number | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v < 0) throw new GuardConfigError(`${prefix}${name}`, `expected a non-negative integer of milliseconds, got ${String(v)}`);
    return v;
  };
  if (o.nodes !== undefined) {
    if (!Array.isArray(o.nodes) || o.nodes.length < 2) throw new GuardConfigError(`${prefix}nodes`, 'expected the names of at least two nodes');
    for (const n of o.nodes) checkNodeName(n, `${prefix}nodes`);
    if (new Set(o.nodes).size !== o.nodes.length) throw new GuardConfigError(`${prefix}nodes`, 'a node is named twice');
  }
  if (o.quorum !== undefined && (!Number.isInteger(o.quorum) || o.quorum < 1))
    throw new GuardConfigError(`${prefix}quorum`, `expected a positive integer, got ${String(o.quorum)}`);
  if (o.nodes === undefined && o.quorum === undefined)
    throw new GuardConfigError(`${prefix}nodes`, 'give the cluster nodes (for the majority rule) or an explicit quorum');
  return {
    nodes: o.nodes ?? null,
    quorum: o.quorum ?? null,
    holdMs: ms(o.holdMs, 'holdMs', 1000),
    minTermMs: ms(o.minTermMs, 'minTermMs', 5000),
    depositionIntervalMs: ms(o.depositionIntervalMs, 'depositionIntervalMs', 10_000),
  };
}

/** What the deposer saw at its last read. */
export interface DeposerView {
  /** This candidate stands right behind the leader. */
  next: boolean;
  leader: { znode: string; epoch: number; version: number; node: string } | null;
  /** Distinct nodes (counted ones only) suspecting the current epoch. */
  suspects: string[];
  needed: number;
  /** performance.now() since which the quorum stands, or null. */
  quorumSince: number | null;
}

export type DeposerDecision =
  | { kind: 'quorum'; epoch: number; suspects: string[]; needed: number }
  | { kind: 'held'; epoch: number; why: string }
  /** termAgeMs: how long this deposer had seen the term lead when it decided (the minTermMs rule's measure). */
  | { kind: 'deposed'; epoch: number; znode: string; suspects: string[]; termAgeMs: number }
  | { kind: 'lost'; epoch: number; why: string };

/**
 * The next candidate's side. Follows (one WatchedRead) the election queue and the suspicions
 * while its Election stands; decides by the rules above. `healthy()` says whether the guard's
 * own health holds.
 */
export class Deposer extends EventEmitter<{ decision: [DeposerDecision]; warning: [Error] }> {
  private readonly client: ZooKeeperClient;
  private readonly election: Election;
  private readonly o: ResolvedDeposition;
  private readonly healthy: () => boolean;
  private readonly follower: WatchedRead;
  private readonly suspicions: string;
  private readonly record: string;
  private _view: DeposerView = { next: false, leader: null, suspects: [], needed: 0, quorumSince: null };
  private termSeen: { epoch: number; at: number } | null = null;
  private lastDepositionAt = -Infinity;
  private recheck: NodeJS.Timeout | null = null;
  private deposing = false;

  constructor(client: ZooKeeperClient, election: Election, o: ResolvedDeposition, healthy: () => boolean) {
    super();
    this.client = client;
    this.election = election;
    this.o = o;
    this.healthy = healthy;
    this.suspicions = suspicionsPath(election.path);
    this.record = depositionsPath(election.path);
    this.follower = new WatchedRead(
      client,
      (onWatch) => this.read(onWatch),
      (e) => this.emit('warning', e),
      500,
    );
  }

  get view(): DeposerView {
    return this._view;
  }

  /** How long this deposer has seen the current leader's term (ms), or null. */
  termAgeMs(): number | null {
    return this.termSeen && this._view.leader?.epoch === this.termSeen.epoch ? performance.now() - this.termSeen.at : null;
  }

  async start(): Promise<void> {
    await this.follower.start();
  }

  stop(): void {
    this.follower.stop();
    if (this.recheck) clearTimeout(this.recheck);
    this.recheck = null;
  }

  private async read(onWatch: () => void): Promise<void> {
    const now = performance.now();
    const mine = this.election.znodePath;
    const prefix = this.election.prefix ?? DEFAULT_CANDIDATE_PREFIX;
    const { children } = await this.client.getChildren(this.election.path, { watch: onWatch });
    const queue = sortCandidates(children, prefix);
    const leaderName = queue[0]?.name;
    const next = mine !== null && queue.length >= 2 && `${this.election.path}/${queue[1]!.name}` === mine;
    if (!next || !leaderName) {
      this._view = { next: false, leader: null, suspects: [], needed: 0, quorumSince: null };
      return;
    }
    const leaderZnode = `${this.election.path}/${leaderName}`;
    let leader: DeposerView['leader'];
    try {
      const { data, stat } = await this.client.getData(leaderZnode);
      const p = decodePayload(data);
      const node = typeof p.node === 'string' ? p.node : typeof p.name === 'string' ? p.name : leaderName;
      leader = { znode: leaderZnode, epoch: stat.czxid, version: stat.version, node };
    } catch (e) {
      if (e instanceof NoNodeError) return; // it left between the reads: the child watch reads again
      throw e;
    }
    if (this.termSeen?.epoch !== leader.epoch) this.termSeen = { epoch: leader.epoch, at: now };
    const suspects = await this.readSuspects(leader, onWatch);
    const others = this.o.nodes ? this.o.nodes.filter((n) => n !== leader.node) : null;
    const needed = this.o.quorum ?? Math.floor((others?.length ?? 0) / 2) + 1;
    const had = this._view.leader?.epoch === leader.epoch ? this._view.quorumSince : null;
    const quorumSince = suspects.length >= needed ? (had ?? now) : null;
    this._view = { next, leader, suspects, needed, quorumSince };
    if (quorumSince !== null && had === null) this.emit('decision', { kind: 'quorum', epoch: leader.epoch, suspects, needed });
    this.consider();
  }

  private async readSuspects(leader: NonNullable<DeposerView['leader']>, onWatch: () => void): Promise<string[]> {
    let names: string[];
    try {
      names = (await this.client.getChildren(this.suspicions, { watch: onWatch })).children;
    } catch (e) {
      if (!(e instanceof NoNodeError)) throw e;
      // Not there yet: hear of its creation.
      if ((await this.client.exists(this.suspicions, { watch: onWatch })) !== null) this.follower.refresh();
      return [];
    }
    const nodes = new Set<string>();
    await Promise.all(
      names.map(async (n) => {
        try {
          // A data watch too: a witness moves its suspicion to a new epoch with setData.
          const p = decodePayload((await this.client.getData(`${this.suspicions}/${n}`, { watch: onWatch })).data);
          const node = typeof p.node === 'string' ? p.node : null;
          if (node === null || p.epoch !== leader.epoch || node === leader.node) return;
          if (this.o.nodes && !this.o.nodes.includes(node)) return;
          nodes.add(node);
        } catch (e) {
          if (!(e instanceof NoNodeError)) throw e;
        }
      }),
    );
    return [...nodes].sort();
  }

  /** Deposes if every rule allows it now; otherwise schedules the next look when time alone could change the answer. */
  private consider(): void {
    const v = this._view;
    if (!v.next || !v.leader || v.quorumSince === null || this.deposing) return;
    const now = performance.now();
    const epoch = v.leader.epoch;
    const waits = [
      v.quorumSince + this.o.holdMs - now,
      (this.termSeen?.at ?? now) + this.o.minTermMs - now,
      this.lastDepositionAt + this.o.depositionIntervalMs - now,
    ];
    const wait = Math.max(...waits);
    if (wait > 0) {
      this.schedule(wait);
      return;
    }
    if (!this.healthy()) {
      this.emit('decision', { kind: 'held', epoch, why: 'own health does not hold' });
      this.schedule(this.o.holdMs);
      return;
    }
    void this.depose(v.leader, v.suspects);
  }

  private schedule(ms: number): void {
    if (this.recheck) clearTimeout(this.recheck);
    this.recheck = setTimeout(
      () => {
        this.recheck = null;
        this.follower.refresh();
      },
      Math.ceil(ms) + 1,
    );
  }

  private async depose(leader: NonNullable<DeposerView['leader']>, suspects: string[]): Promise<void> {
    const mine = this.election.znodePath;
    if (!mine) return;
    this.deposing = true;
    this.lastDepositionAt = performance.now();
    const termAgeMs = Math.round(this.termAgeMs() ?? 0);
    try {
      const myStat = await this.client.exists(mine);
      if (!myStat) return;
      await ensureRecord(this.client, this.record);
      const ops: Op[] = [
        { op: 'check', path: leader.znode, version: leader.version },
        { op: 'check', path: mine, version: myStat.version },
        { op: 'delete', path: leader.znode, version: leader.version },
        {
          op: 'setData',
          path: this.record,
          data: encodePayload({ epoch: leader.epoch, znode: leader.znode, node: leader.node, by: this.election.candidate.name, suspects, at: Date.now() }),
          version: -1,
        },
      ];
      await this.client.multi(ops);
      this.emit('decision', { kind: 'deposed', epoch: leader.epoch, znode: leader.znode, suspects, termAgeMs });
    } catch (e) {
      // The leader went or changed meanwhile (so it is not that epoch any more), or this
      // candidate's znode did: nothing was applied.
      const why = e instanceof MultiError ? `op ${e.index} refused: ${e.cause.message}` : (e as Error).message;
      this.emit('decision', { kind: 'lost', epoch: leader.epoch, why });
    } finally {
      this.deposing = false;
      this.follower.refresh();
    }
  }
}

async function ensureRecord(client: ZooKeeperClient, path: string): Promise<void> {
  if ((await client.exists(path)) !== null) return;
  try {
    await client.create(path, null);
  } catch (e) {
    if (!(e instanceof NodeExistsError)) throw e;
  }
}
