/**
 * Leader election with fencing epochs.
 *
 * Every candidate creates an ephemeral-sequential znode under the election path; the candidate
 * with the lowest sequence leads. Each other candidate watches only its predecessor (an exists
 * watch), so when a candidate goes exactly one other candidate hears of it: no herd.
 *
 * A term begins when the lowest candidate *claims* it: one multi that checks its own znode
 * (exists, same version) and writes the claim (epoch, endpoint) into the election parent's
 * data. The claim is a write through the ZooKeeper leader, so it proves, at one point of
 * ZooKeeper's history, that the session lives and the znode is still there; sequence order is
 * creation order, so a znode that was once the lowest stays the lowest while it exists.
 *
 * Epoch (fencing token): the czxid of the winning znode. zxids only grow, and the winner of a
 * later term was created after the winner of an earlier one (or it would have been lower), so
 * epochs grow strictly from term to term; a leader that resumes after a suspension keeps its
 * term and epoch.
 *
 * Connection states:
 *  - suspended (connection lost): the leader cannot know whether it still leads; it stops at
 *    once (`deposed`, reason 'suspended'). The client detects silence after 2/3 of the
 *    session timeout, before the ensemble can expire the session and elect someone else.
 *  - reconnected: the session survived; the candidate looks again and, if its znode is still the
 *    lowest, proves it with a check-only multi and resumes the same term (`elected`, resumed).
 *  - expired / closed: leadership is lost for good (state 'lost' / 'left', then `deposed`). A
 *    new candidacy needs a new client.
 *
 * The limit: all of this runs in the leader's process. A process that is wedged (hung disk,
 * stopped) runs none of it; its session may even stay alive. Removing such a leader is the
 * guard's job; the fenced writes make sure it can do no harm in ZooKeeper when it wakes.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { NoNodeError, type ACL, type Stat, type WatchEvent, type ZooKeeperClient } from '../zk/index.ts';
import { CandidacyEndedError, FencedError, RecipeTimeoutError, RecipeUsageError } from './errors.ts';
import { fencedMulti, FencedWriter, type FenceSource, type FenceToken } from './fenced.ts';
import {
  DEFAULT_CANDIDATE_PREFIX,
  DEFAULT_ELECTION_PATH,
  basename,
  checkPrefix,
  checkRecipePath,
  decodePayload,
  encodePayload,
  ensurePath,
  isSessionTrouble,
  sortCandidates,
} from './layout.ts';
import { WatchedRead } from './watched-read.ts';

/** Who a candidate is; stored as JSON in its znode so discovery can say who leads. */
export interface CandidateInfo {
  /** Where the leader serves, e.g. "10.1.88.101:10100". */
  endpoint: string;
  /** A node name for humans; default: the endpoint. */
  name?: string;
  /** Anything else worth publishing (version, zone, ...); must be JSON. */
  metadata?: Record<string, unknown>;
}

export interface ElectionOptions {
  /** The election parent; default `/zbs/meta/__mj_j`. Created (persistent) if missing. */
  path?: string;
  /** Candidate znode name prefix; default none (names are the bare sequence, like the seed's). */
  prefix?: string;
  candidate: CandidateInfo;
  /** Timeout of each ZooKeeper request the recipe makes; default the client's. */
  requestTimeoutMs?: number;
  /** After an unexpected error the recipe looks again after this long; default 1000 ms. */
  retryDelayMs?: number;
  /**
   * ACL of the candidate znodes and of the election path if the recipe creates it (default
   * open); `clusterAcl` in acl.ts is the policy docs/security.md explains. A parent that exists
   * already keeps its own ACL, and it is the parent's that decides who may delete a candidate
   * or write a claim.
   */
  acl?: readonly ACL[];
}

/** A term of leadership as its leader holds it. */
export interface Term extends FenceToken {
  /** The leader's session. */
  sessionId: bigint;
  /** When the term began, by the ZooKeeper leader's clock (mtime of the claim). */
  since: number;
}

export type ElectionState =
  /** not joined yet */
  | 'idle'
  /** in the queue, not leading */
  | 'candidate'
  /** leads: may act as leader */
  | 'leader'
  /** connection lost: acts as nothing until the session's fate is known */
  | 'suspended'
  /** session expired: over for good */
  | 'lost'
  /** left, or the client was closed */
  | 'left';

/**
 * suspended: connection lost (may resume); expired/closed: session over; resigned/left: by the
 * caller; znodeGone: someone deleted the election znode; fenced: someone changed it (its
 * version), which fails every fenced write of the term.
 */
export type DeposeReason = 'suspended' | 'expired' | 'closed' | 'resigned' | 'left' | 'znodeGone' | 'fenced';

export interface ElectionEvents {
  elected: [info: { term: Term; resumed: boolean }];
  deposed: [info: { term: Term; reason: DeposeReason }];
  state: [state: ElectionState, previous: ElectionState];
  /** Unexpected trouble the recipe recovers from by itself (it looks again after retryDelayMs). */
  warning: [err: Error];
}

/**
 * Where each reason for losing leadership leaves the candidate. The reasons that queue it again
 * ('candidate') apply only to a leader: a suspended candidate stays suspended until its session's
 * fate is known.
 */
const AFTER_DEPOSAL: Readonly<Record<DeposeReason, ElectionState>> = {
  suspended: 'suspended',
  expired: 'lost',
  closed: 'left',
  left: 'left',
  resigned: 'candidate',
  znodeGone: 'candidate',
  fenced: 'candidate',
};

/** The claim a leader writes into the election parent at the start of its term. */
export interface TermClaim {
  epoch: number;
  znode: string;
  endpoint: string;
  name: string;
}

export class Election extends EventEmitter<ElectionEvents> implements FenceSource {
  readonly client: ZooKeeperClient;
  readonly path: string;
  readonly prefix: string;
  readonly candidate: Required<CandidateInfo>;
  /** Ties a znode to this instance (recovers the znode of a create whose reply was lost). */
  readonly token = randomUUID();
  private readonly requestTimeoutMs: number | undefined;
  private readonly acl: readonly ACL[] | undefined;

  private _state: ElectionState = 'idle';
  private _term: Term | null = null;
  /** The term held when the connection was lost: resumed if the session and znode survive. */
  private heldTerm: Term | null = null;
  private znode: string | null = null;
  private znodeStat: Stat | null = null;
  /** A create whose reply was lost may have made a znode: find it before creating another. */
  private createInDoubt = false;
  private watched: string | null = null;
  private _notifications = 0;
  /** Serializes the looks at the queue (one in flight, one waiting) and retries failed ones. */
  private readonly looker: WatchedRead;
  private readonly clientHandlers: { event: 'suspended' | 'reconnected' | 'expired' | 'closed'; fn: () => void }[] = [];

  constructor(client: ZooKeeperClient, options: ElectionOptions) {
    super();
    this.client = client;
    this.path = options.path ?? DEFAULT_ELECTION_PATH;
    checkRecipePath(this.path, 'path');
    this.prefix = options.prefix ?? DEFAULT_CANDIDATE_PREFIX;
    checkPrefix(this.prefix);
    if (!options.candidate || typeof options.candidate.endpoint !== 'string' || options.candidate.endpoint === '') {
      throw new RecipeUsageError('candidate.endpoint', 'a candidate needs a non-empty endpoint');
    }
    this.candidate = {
      endpoint: options.candidate.endpoint,
      name: options.candidate.name ?? options.candidate.endpoint,
      metadata: options.candidate.metadata ?? {},
    };
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.acl = options.acl;
    this.looker = new WatchedRead(
      client,
      () => this.step(),
      (err) => this.emit('warning', err),
      options.retryDelayMs ?? 1000,
    );
  }

  get state(): ElectionState {
    return this._state;
  }

  /** True only while this candidate may act as leader. */
  isLeader(): boolean {
    return this._state === 'leader';
  }

  /** The current term while leading, else null. */
  get term(): Term | null {
    return this._state === 'leader' ? this._term : null;
  }

  /** Full path of this candidate's znode (null before join and after leave). */
  get znodePath(): string | null {
    return this.znode;
  }

  /** Watch notifications this candidate received (the no-herd property is visible here). */
  get notifications(): number {
    return this._notifications;
  }

  /** A writer whose writes are guarded by this candidate's current term. */
  writer(): FencedWriter {
    return new FencedWriter(this);
  }

  /**
   * Enters the election: creates this candidate's znode and resolves once the first look at the
   * queue is done (isLeader() is then accurate). The client must be connected.
   */
  async join(): Promise<void> {
    if (this._state !== 'idle') throw new RecipeUsageError('join', `already joined (state ${this._state})`);
    if (this.client.state !== 'connected') {
      throw new RecipeUsageError('client', `join needs a connected client (state ${this.client.state})`);
    }
    this.listen('suspended', () => this.onSuspended());
    this.listen('reconnected', () => this.onReconnected());
    this.listen('expired', () => this.end('expired'));
    this.listen('closed', () => this.end('closed'));
    this.setState('candidate');
    try {
      // A lost connection sorts itself out (the reconnect looks again); anything else (no
      // permission on the path, say) is the caller's to see, and ends the candidacy.
      await this.looker.start({ firstReadThrows: true });
    } catch (e) {
      const z = this.znode;
      this.end('left');
      if (z) await this.client.delete(z).catch(() => undefined);
      throw e;
    }
    await this.looker.idle();
  }

  /**
   * Resolves with the term once this candidate leads; rejects with CandidacyEndedError if the
   * candidacy ends first, RecipeTimeoutError after timeoutMs (default: wait forever).
   */
  awaitLeadership(options: { timeoutMs?: number } = {}): Promise<Term> {
    const now = this.term;
    if (now) return Promise.resolve(now);
    if (this.isEnded()) return Promise.reject(new CandidacyEndedError(this._state));
    return new Promise<Term>((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      const cleanup = (): void => {
        if (timer) clearTimeout(timer);
        this.off('elected', onElected);
        this.off('state', onState);
      };
      const onElected = ({ term }: { term: Term }): void => {
        cleanup();
        resolve(term);
      };
      const onState = (s: ElectionState): void => {
        if (s === 'lost' || s === 'left') {
          cleanup();
          reject(new CandidacyEndedError(s));
        }
      };
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          cleanup();
          reject(new RecipeTimeoutError('awaitLeadership', options.timeoutMs ?? 0));
        }, options.timeoutMs);
      }
      this.on('elected', onElected);
      this.on('state', onState);
    });
  }

  /**
   * Gives up leadership but stays a candidate: deletes this candidate's znode and joins again
   * at the back of the queue. Without other candidates it leads again, in a new term.
   */
  async resign(): Promise<void> {
    if (this.isEnded() || this._state === 'idle') throw new RecipeUsageError('resign', `not a candidate (state ${this._state})`);
    // Give up the znode synchronously, so a look at the queue already waiting in line cannot
    // claim with it again; that look joins anew instead and queues behind the old znode.
    const z = this.znode;
    this.znode = null;
    this.znodeStat = null;
    this.depose('resigned');
    if (z) {
      await this.looker.run(async () => {
        try {
          await this.client.delete(z, -1, { timeoutMs: this.requestTimeoutMs });
        } catch (e) {
          if (!(e instanceof NoNodeError)) throw e;
        }
      });
    }
    this.looker.refresh();
    await this.looker.idle();
  }

  /**
   * Leaves the election for good: stops acting as leader at once, then deletes the znode
   * (best effort: if ZooKeeper cannot be reached, the znode goes with the session). The client
   * stays open; closing it is the caller's business.
   */
  async leave(): Promise<void> {
    if (this.isEnded()) return;
    const z = this.znode;
    this.end('left');
    if (!z) return;
    try {
      await this.client.delete(z, -1, { timeoutMs: this.requestTimeoutMs });
    } catch (e) {
      if (!(e instanceof NoNodeError) && !isSessionTrouble(e)) throw e;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Connection states: synchronous, so a leader stops acting in the same tick it learns of trouble.

  private onSuspended(): void {
    if (this.isEnded() || this._state === 'idle') return;
    this.depose('suspended');
  }

  /** The session survived: a candidate again; the looker's own 'reconnected' look decides the rest. */
  private onReconnected(): void {
    if (this._state === 'suspended') this.setState('candidate');
  }

  /** Final states: expiry, close or leave (lost / left). */
  private end(reason: 'expired' | 'closed' | 'left'): void {
    if (this.isEnded()) return;
    this.watched = null;
    this.znode = null;
    this.znodeStat = null;
    this.looker.stop();
    for (const { event, fn } of this.clientHandlers) this.client.off(event, fn);
    this.clientHandlers.length = 0;
    this.depose(reason);
  }

  // -------------------------------------------------------------------------------------------
  // Leadership begins in lead() and ends in depose(), nowhere else (Curator's setLeadership):
  // the term and the state change first, then the events, so a listener of either event sees
  // the new state (isLeader(), term, writer()) and cannot observe a half-made change.

  private lead(term: Term, resumed: boolean): void {
    this.heldTerm = null;
    this._term = term;
    this.setState('leader');
    this.emit('elected', { term, resumed });
  }

  /**
   * Stops leading (if it led) and moves to the state `reason` implies (AFTER_DEPOSAL); emits
   * 'deposed' only if there was a term to end. A suspension keeps the term aside ('heldTerm')
   * to resume it if the session survives; every other reason ends it for good.
   */
  private depose(reason: DeposeReason): void {
    const term = this.term;
    this._term = null;
    if (reason !== 'suspended') this.heldTerm = null;
    else if (term) this.heldTerm = term;
    const next = AFTER_DEPOSAL[reason];
    if (next !== 'candidate' || this._state === 'leader') this.setState(next);
    if (term) this.emit('deposed', { term, reason });
  }

  private isEnded(): boolean {
    return this._state === 'lost' || this._state === 'left';
  }

  private listen(event: 'suspended' | 'reconnected' | 'expired' | 'closed', fn: () => void): void {
    this.client.on(event, fn);
    this.clientHandlers.push({ event, fn });
  }

  private setState(s: ElectionState): void {
    const prev = this._state;
    if (prev === s) return;
    this._state = s;
    this.emit('state', s, prev);
  }

  // -------------------------------------------------------------------------------------------
  // The look at the queue: serialized, re-run whenever a watch fires or the session comes back.

  /** One bound listener for every watch: the client keeps it once per path, never duplicated. */
  private readonly onWatch = (event: WatchEvent): void => {
    this._notifications++;
    if (this.isEnded()) return;
    if (event.path === this.watched || event.path === this.znode) this.kick();
  };

  /** Looks at the queue again (after the look in flight, at most one waiting). */
  private kick(): void {
    this.looker.refresh();
  }

  /** Can this step still change anything? (A suspension or end may have come in between.) */
  private active(): boolean {
    return (this._state === 'candidate' || this._state === 'leader') && this.client.state === 'connected';
  }

  private async step(): Promise<void> {
    if (!this.active()) return;
    if (!this.znode) await this.enter();
    if (!this.active() || !this.znode) return;
    const mine = basename(this.znode);
    const { children } = await this.client.getChildren(this.path, { timeoutMs: this.requestTimeoutMs });
    if (!this.active()) return;
    const queue = sortCandidates(children, this.prefix);
    const idx = queue.findIndex((c) => c.name === mine);
    if (idx < 0) {
      // The znode is gone while the session lives: deleted by someone (an operator, a guard).
      this.znode = null;
      this.znodeStat = null;
      this.depose('znodeGone');
      this.kick(); // join again at the back
      return;
    }
    if (idx > 0) {
      // Not the lowest. Once lowest always lowest, so a leader can never get here; be safe anyway.
      if (this._state === 'leader') this.depose('znodeGone');
      const pred = `${this.path}/${queue[idx - 1].name}`;
      this.watched = pred;
      const stat = await this.client.exists(pred, { watch: this.onWatch, timeoutMs: this.requestTimeoutMs });
      if (stat === null) this.kick(); // it went between the two reads: look again
      return;
    }
    // The lowest: lead (claim a new term, or prove and resume the held one).
    this.watched = null;
    if (this._state === 'leader') {
      const stat = await this.watchOwn();
      const term = this._term;
      if (stat && term && this.isLeader() && stat.version !== term.version) {
        // Someone changed our znode: every write of this term now fails its check. Step down
        // and queue again; the next leader claims a new term.
        this.depose('fenced');
        await this.dropZnode(term.znode);
        this.kick();
      }
      return;
    }
    const z = this.znode;
    const held = this.heldTerm;
    let term: Term;
    try {
      if (held && held.znode === z) {
        // Same session, same znode: the term never ended. A check-only multi proves the znode
        // still exists with its version at the ZooKeeper leader, not just on a lagging follower.
        await fencedMulti(this.client, held, [], { timeoutMs: this.requestTimeoutMs });
        term = held;
      } else {
        term = await this.claim(z);
      }
    } catch (e) {
      if (e instanceof FencedError && e.reason !== 'sessionExpired') {
        // Our znode vanished, or someone changed it (a guard fencing us): give up this place
        // and join again at the back.
        await this.dropZnode(z);
        this.kick();
        return;
      }
      throw e;
    }
    if (!this.active() || this.znode !== z || this.isLeader()) return;
    this.lead(term, term === held);
    await this.watchOwn();
  }

  /** Writes the term's claim, guarded by this candidate's znode. */
  private async claim(z: string): Promise<Term> {
    const stat = this.znodeStat;
    if (!stat) throw new Error(`internal: no Stat for ${z}`);
    const token: FenceToken = { znode: z, version: stat.version, epoch: stat.czxid };
    const claim: TermClaim = { epoch: stat.czxid, znode: basename(z), endpoint: this.candidate.endpoint, name: this.candidate.name };
    const results = await fencedMulti(this.client, token, [{ op: 'setData', path: this.path, data: encodePayload({ ...claim }) }], {
      timeoutMs: this.requestTimeoutMs,
    });
    const r = results[0];
    const since = r?.op === 'setData' ? r.stat.mtime : Date.now();
    return { ...token, sessionId: this.client.sessionId, since };
  }

  private async dropZnode(z: string): Promise<void> {
    if (this.znode === z) {
      this.znode = null;
      this.znodeStat = null;
    }
    if (this.heldTerm?.znode === z) this.heldTerm = null;
    try {
      await this.client.delete(z, -1, { timeoutMs: this.requestTimeoutMs });
    } catch (e) {
      if (!(e instanceof NoNodeError)) throw e;
    }
  }

  /** The leader watches its own znode, to hear at once when someone deletes it. */
  private async watchOwn(): Promise<Stat | null> {
    const z = this.znode;
    if (!z) return null;
    const stat = await this.client.exists(z, { watch: this.onWatch, timeoutMs: this.requestTimeoutMs });
    if (stat === null || (this._term && stat.version !== this._term.version)) this.kick();
    return stat;
  }

  /** Creates this candidate's znode (after finding out whether a lost create made one). */
  private async enter(): Promise<void> {
    if (this.createInDoubt) {
      const found = await this.findOwnZnode();
      this.createInDoubt = false;
      if (found) return;
    }
    const payload = encodePayload({
      endpoint: this.candidate.endpoint,
      name: this.candidate.name,
      ...this.candidate.metadata,
      token: this.token,
    });
    let created;
    for (let attempt = 0; ; attempt++) {
      try {
        created = await this.client.create(`${this.path}/${this.prefix}`, payload, {
          mode: 'ephemeral_sequential',
          timeoutMs: this.requestTimeoutMs,
          acl: this.acl,
        });
        break;
      } catch (e) {
        if (isSessionTrouble(e)) this.createInDoubt = true;
        // No election parent yet (first candidate, or an operator cleaned up): make it, once.
        if (e instanceof NoNodeError && attempt === 0) {
          await ensurePath(this.client, this.path, this.requestTimeoutMs, this.acl);
          continue;
        }
        throw e;
      }
    }
    this.znode = created.path;
    this.znodeStat = created.stat;
  }

  /** This session's candidate znode carrying this instance's token, if a lost create made one. */
  private async findOwnZnode(): Promise<boolean> {
    // A prefix match (the client, like Java, refuses a trailing slash): keep direct children only.
    const mine = await this.client.getEphemerals(this.path, { timeoutMs: this.requestTimeoutMs });
    for (const p of mine) {
      if (p.slice(0, p.lastIndexOf('/')) !== this.path) continue;
      try {
        const { data, stat } = await this.client.getData(p, { timeoutMs: this.requestTimeoutMs });
        if (decodePayload(data).token === this.token) {
          this.znode = p;
          this.znodeStat = stat;
          return true;
        }
      } catch (e) {
        if (!(e instanceof NoNodeError)) throw e;
      }
    }
    return false;
  }
}
