/**
 * Guard: leadership that lasts only while the leader can really work.
 *
 * A Guard owns its service's candidacy: it opens the ZooKeeper session, joins the election,
 * and runs the three defences:
 *  1. the health gate (health.ts): probes judged by age; failing past graceMs, the guard resigns
 *     at once over the network only — leader work stops in the same tick (the election's
 *     `deposed`), then the session is closed, so ZooKeeper deletes the election znode (and
 *     every other ephemeral of the session) and the next candidate takes over. It stands again,
 *     with a new session, once healthy for recoverMs. Nothing in resigning touches the disk.
 *  2. the watchdog link (link.ts): heartbeats and the session's credentials to an
 *     out-of-process watchdog (watchdog.ts), registered before the election znode exists, so
 *     the watchdog can end the session whenever this process stops running its code.
 *  3. the deposer (deposition.ts): while this candidate is next in line, it deposes a leader
 *     its clients suspect, if its own health holds.
 *
 * Its state has one transition function (`setState`): stopped → waiting ⇄ standing → resigning
 * → waiting …; every decision is recorded (`decisions`, `decision` events) for logs and for a
 * scenario runner, which can turn each defence off (`defences`) and read what the guard did.
 */
import { EventEmitter } from 'node:events';
import { createClient, type ClientOptions, type ZooKeeperClient } from '../zk/index.ts';
import { Election, FencedWriter, type CandidateInfo, type DeposeReason, type ElectionOptions, type FenceSource, type Term } from '../recipes/index.ts';
import { HealthGate, type GateState, type ProbeFailure } from './health.ts';
import { WatchdogLink, linkTargetFromEnv, timingFromEnv, type LinkTarget } from './link.ts';
import { Deposer, resolveDeposition, type DepositionOptions, type DeposerDecision } from './deposition.ts';
import { checkNegotiatedTimeout, resolveTiming, type GuardTiming } from './timing.ts';
import type { Probe } from './probes.ts';
import { GuardConfigError } from './errors.ts';

export type GuardState = 'stopped' | 'waiting' | 'standing' | 'resigning';

/** The election's reasons, plus the guard's own: its health failed. */
export type GuardDeposeReason = DeposeReason | 'unhealthy';

export interface GuardOptions {
  /** The ensemble (IP literals recommended: a resolver can hang too). */
  connectString: string;
  election: Omit<ElectionOptions, 'candidate'> & { candidate: CandidateInfo };
  /** Options of every session the guard opens (the session timeout comes from `timing`). */
  client?: Omit<ClientOptions, 'sessionTimeoutMs' | 'sessionId' | 'sessionPassword'>;
  probes?: readonly Probe[];
  /** Judge the event loop's delay; default true. */
  eventLoopProbe?: boolean;
  /**
   * The watchdog: 'env' (default) uses ZKWARDEN_GUARD_FD / ZKWARDEN_GUARD_ADDRESS when set
   * (`zkwarden guard run` sets the first), null runs without one.
   */
  watchdog?: LinkTarget | 'env' | null;
  /** Losing the watchdog's channel counts as a failing probe; default true when there is one. */
  requireWatchdog?: boolean;
  /** Deposition on clients' evidence; needs this candidate's node: `election.candidate.metadata.node` (default its name). */
  deposition?: DepositionOptions | null;
  timing?: Partial<GuardTiming>;
  /** Turn defences off (a scenario runner measuring one defence alone); all default on. */
  defences?: { gate?: boolean; deposition?: boolean };
  /** How long start() waits for the first healthy verdict; default 30 000 ms. */
  startTimeoutMs?: number;
}

export type GuardDecisionKind =
  | 'health'
  | 'resign'
  | 'resigned'
  | 'stand'
  | 'stood'
  | 'standFailed'
  | 'elected'
  | 'deposed'
  | 'sessionLost'
  | 'watchdogLost'
  | 'watchdogRefused'
  | 'deposition';

export interface GuardDecision {
  at: string;
  /** ms since the guard was created (monotonic). */
  t: number;
  kind: GuardDecisionKind;
  detail: Record<string, unknown>;
}

export interface GuardEvents {
  elected: [info: { term: Term; resumed: boolean }];
  deposed: [info: { term: Term; reason: GuardDeposeReason }];
  state: [state: GuardState, previous: GuardState];
  decision: [decision: GuardDecision];
  warning: [err: Error];
}

export interface GuardStatus {
  state: GuardState;
  leader: boolean;
  epoch: number | null;
  gate: GateState;
  failures: ProbeFailure[];
  watchdog: 'none' | 'connected' | 'lost';
  /** While this candidate is next: the leader's epoch, who suspects it, how many are needed, whether that many stand. */
  deposer: { next: boolean; leaderEpoch: number | null; termAgeMs: number | null; suspects: string[]; needed: number; quorum: boolean } | null;
  timing: GuardTiming;
}

const KEEP_DECISIONS = 200;

export class Guard extends EventEmitter<GuardEvents> implements FenceSource {
  readonly timing: GuardTiming;
  readonly gate: HealthGate;
  private readonly o: GuardOptions;
  private readonly link: WatchdogLink | null;
  private readonly deposition: ReturnType<typeof resolveDeposition> | null;
  private readonly gateOn: boolean;
  private readonly createdAt = performance.now();
  private readonly _decisions: GuardDecision[] = [];
  private _state: GuardState = 'stopped';
  private _client: ZooKeeperClient | null = null;
  private _election: Election | null = null;
  private deposer: Deposer | null = null;
  /** Why the guard itself is ending the candidacy (maps the election's 'left'). */
  private resignCause: 'unhealthy' | null = null;
  private lifecycle: Promise<void> = Promise.resolve();
  private standTimer: NodeJS.Timeout | null = null;

  constructor(o: GuardOptions) {
    super();
    this.o = o;
    if (!o.election?.candidate?.endpoint) throw new GuardConfigError('election.candidate.endpoint', 'a candidate needs an endpoint');
    const fromEnv = o.watchdog === undefined || o.watchdog === 'env';
    const target = fromEnv ? linkTargetFromEnv() : (o.watchdog as LinkTarget | null);
    // Under `zkwarden guard run`, the watchdog's own deadline and beat interval are the defaults.
    this.timing = resolveTiming({ ...(fromEnv && target ? timingFromEnv() : {}), ...o.timing });
    this.link = target
      ? new WatchdogLink({
          target,
          heartbeatIntervalMs: this.timing.heartbeatIntervalMs,
          health: () => this.healthForBeat(),
          name: o.election.candidate.name ?? o.election.candidate.endpoint,
        })
      : null;
    const probes = [...(o.probes ?? [])];
    if (this.link && (o.requireWatchdog ?? true)) probes.push(this.link.probe());
    this.gate = new HealthGate({ probes, timing: this.timing, eventLoop: o.eventLoopProbe ?? true });
    this.gateOn = o.defences?.gate ?? true;
    this.deposition = o.deposition && (o.defences?.deposition ?? true) ? resolveDeposition(o.deposition) : null;
  }

  get state(): GuardState {
    return this._state;
  }

  /** The current session's client (null while not standing). */
  get client(): ZooKeeperClient {
    if (!this._client) throw new Error('the guard holds no session now');
    return this._client;
  }

  get election(): Election | null {
    return this._election;
  }

  isLeader(): boolean {
    return this._election?.isLeader() ?? false;
  }

  /** The current term while leading (FenceSource: `new FencedWriter(guard)` follows every re-stand). */
  get term(): Term | null {
    return this._election?.term ?? null;
  }

  writer(): FencedWriter {
    return new FencedWriter(this);
  }

  /** What the guard decided, oldest first (the last 200). */
  get decisions(): GuardDecision[] {
    return [...this._decisions];
  }

  status(): GuardStatus {
    const v = this.deposer?.view;
    return {
      state: this._state,
      leader: this.isLeader(),
      epoch: this.term?.epoch ?? null,
      gate: this.gate.state,
      failures: this.gate.failures,
      watchdog: this.link ? (this.link.connected ? 'connected' : 'lost') : 'none',
      deposer: v
        ? {
            next: v.next,
            leaderEpoch: v.leader?.epoch ?? null,
            termAgeMs: this.deposer?.termAgeMs() ?? null,
            suspects: v.suspects,
            needed: v.needed,
            quorum: v.quorumSince !== null,
          }
        : null,
      timing: { ...this.timing },
    };
  }

  /**
   * Opens the watchdog's channel, starts the probes, waits for the first healthy verdict, and
   * stands (session, registered with the watchdog, then the election). Rejects on a bad timing
   * or a session timeout ZooKeeper clamps below the model.
   */
  async start(): Promise<void> {
    if (this._state !== 'stopped') throw new Error(`start: already started (state ${this._state})`);
    this.setState('waiting');
    this.gate.on('state', (s, prev, failures) => this.onGate(s, prev, failures));
    if (this.link) {
      this.link.on('lost', (e) => {
        this.decide('watchdogLost', { error: e.message });
      });
      this.link.on('refused', (m) => this.decide('watchdogRefused', { message: m }));
      await this.link.open();
    }
    await this.gate.start();
    if (this.gateOn) await this.gate.whenHealthy(this.o.startTimeoutMs ?? 30_000);
    await this.serial(() => this.stand(true));
  }

  /** Leaves the election, closes the session, tells the watchdog BYE, stops the probes. */
  async stop(): Promise<void> {
    if (this._state === 'stopped') return;
    if (this.standTimer) clearTimeout(this.standTimer);
    this.standTimer = null;
    this.gate.stop();
    await this.serial(async () => {
      await this.dropCandidacy();
      this.setState('stopped');
    });
    this.link?.close();
  }

  // -------------------------------------------------------------------------------------------

  private setState(s: GuardState): void {
    const prev = this._state;
    if (prev === s) return;
    this._state = s;
    this.emit('state', s, prev);
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.lifecycle.then(fn);
    this.lifecycle = run.catch(() => undefined);
    return run;
  }

  private healthForBeat(): { healthy: boolean; reason: string | null } {
    const s = this.gate.state;
    if (s === 'healthy' || !this.gateOn) return { healthy: true, reason: null };
    return { healthy: false, reason: this.gate.describeFailures() || s };
  }

  private onGate(s: GateState, prev: GateState, failures: ProbeFailure[]): void {
    this.decide('health', { state: s, previous: prev, failures: failures.map((f) => `${f.probe}: ${f.detail}`).join('; ') || undefined });
    if (!this.gateOn) return;
    if (s === 'unhealthy') this.resignNow(failures);
    else if (s === 'healthy') this.scheduleStand();
  }

  /** Health failed past its grace: stop acting as leader in this tick, then end the session. */
  private resignNow(failures: ProbeFailure[]): void {
    if (this.standTimer) clearTimeout(this.standTimer);
    this.standTimer = null;
    if (this._state !== 'standing') return;
    this.decide('resign', { leader: this.isLeader(), failures: failures.map((f) => `${f.probe}: ${f.detail}`).join('; ') });
    this.resignCause = 'unhealthy';
    // Synchronous: the election's 'deposed' (and so the service's) fires before this returns.
    const e = this._election;
    if (e) void e.leave().catch(() => undefined);
    this.setState('resigning');
    void this.serial(async () => {
      await this.dropCandidacy();
      this.resignCause = null;
      if (this._state === 'resigning') this.setState('waiting');
      this.decide('resigned', {});
      this.scheduleStand();
    });
  }

  /** Stand again once the gate has been healthy for recoverMs (if it is not already standing). */
  private scheduleStand(): void {
    if (this._state !== 'waiting' || this.standTimer) return;
    const since = this.gate.healthySince;
    if (this.gateOn && since === null) return;
    const wait = this.gateOn ? Math.max(0, (since ?? 0) + this.timing.recoverMs - performance.now()) : 0;
    this.standTimer = setTimeout(() => {
      this.standTimer = null;
      if (this._state !== 'waiting') return;
      if (this.gateOn && (this.gate.state !== 'healthy' || (this.gate.healthySince ?? Infinity) + this.timing.recoverMs > performance.now() + 1)) {
        this.scheduleStand();
        return;
      }
      void this.serial(() => this.stand(false)).catch((e: unknown) => {
        this.decide('standFailed', { error: (e as Error).message });
        this.emit('warning', e as Error);
        this.retryStand();
      });
    }, wait);
  }

  private retryStand(): void {
    if (this._state !== 'waiting' || this.standTimer) return;
    this.standTimer = setTimeout(() => {
      this.standTimer = null;
      this.scheduleStand();
    }, this.timing.recoverMs);
  }

  /**
   * New session → registered with the watchdog → election joined. A resignation that comes in
   * meanwhile (health failed again) wins: the steps still to do are skipped, and the resignation,
   * queued behind this, drops whatever was made.
   */
  private async stand(first: boolean): Promise<void> {
    if (this._state !== 'waiting') return;
    if (this.gateOn && this.gate.state !== 'healthy') return;
    this.setState('standing');
    this.decide('stand', { first });
    const client = createClient(this.o.connectString, { ...this.o.client, sessionTimeoutMs: this.timing.sessionTimeoutMs });
    this._client = client;
    const standing = (): boolean => this._state === 'standing' && this._client === client;
    try {
      await client.connect();
      checkNegotiatedTimeout(this.timing, client.sessionTimeoutMs);
      // Before the znode exists: from now on the watchdog can end this session from outside.
      if (this.link) await this.link.setSession({ id: client.sessionId, password: client.sessionPassword });
      if (!standing()) return;
      const election = new Election(client, this.o.election);
      this._election = election;
      this.wire(election);
      await election.join();
      if (!standing()) return;
      if (election.znodePath) this.link?.znode(election.znodePath);
      if (this.deposition) {
        const d = new Deposer(client, election, this.deposition, () => !this.gateOn || this.gate.state === 'healthy');
        this.deposer = d;
        d.on('decision', (x) => this.onDeposer(x));
        d.on('warning', (e) => this.emit('warning', e));
        await d.start();
      }
      this.decide('stood', { znode: election.znodePath, leader: election.isLeader(), session: 'registered' });
    } catch (e) {
      if (standing()) {
        await this.dropCandidacy();
        this.setState('waiting');
      }
      throw e;
    }
  }

  private wire(election: Election): void {
    election.on('elected', ({ term, resumed }) => {
      if (this._election !== election) return;
      this.decide('elected', { epoch: term.epoch, resumed });
      this.link?.state({ kind: 'leader', epoch: BigInt(term.epoch) });
      this.emit('elected', { term, resumed });
    });
    election.on('deposed', ({ term, reason }) => {
      if (this._election !== election) return;
      const r: GuardDeposeReason = reason === 'left' && this.resignCause ? this.resignCause : reason;
      this.decide('deposed', { epoch: term.epoch, reason: r });
      this.link?.state({ kind: 'candidate' });
      this.emit('deposed', { term, reason: r });
    });
    election.on('warning', (e) => this.emit('warning', e));
    election.on('state', (s) => {
      if (this._election !== election || s !== 'lost') return;
      // The session expired (or was ended from outside): stand again with a new one when healthy.
      this.decide('sessionLost', {});
      void this.serial(async () => {
        if (this._election !== election) return;
        await this.dropCandidacy();
        if (this._state === 'standing') this.setState('waiting');
        this.scheduleStand();
      });
    });
  }

  /** Ends the current candidacy and session (network only) and tells the watchdog. */
  private async dropCandidacy(): Promise<void> {
    this.deposer?.stop();
    this.deposer = null;
    const e = this._election;
    const c = this._client;
    this._election = null;
    this._client = null;
    if (e) await e.leave().catch(() => undefined);
    if (c) await c.close({ timeoutMs: Math.min(2000, this.timing.sessionTimeoutMs) }).catch(() => undefined);
    if (this.link?.connected) await this.link.setSession(null).catch(() => undefined);
    if (this.link?.connected && this._state !== 'stopped') this.link.state({ kind: 'waiting' });
  }

  private onDeposer(d: DeposerDecision): void {
    this.decide('deposition', { ...d });
  }

  private decide(kind: GuardDecisionKind, detail: Record<string, unknown>): void {
    const d: GuardDecision = { at: new Date().toISOString(), t: Math.round(performance.now() - this.createdAt), kind, detail };
    this._decisions.push(d);
    if (this._decisions.length > KEEP_DECISIONS) this._decisions.shift();
    this.emit('decision', d);
  }
}
