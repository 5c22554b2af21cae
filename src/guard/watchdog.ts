/**
 * The watchdog: one small process per guarded service, started before it, that ends the
 * service's ZooKeeper session from outside when the service stops beating (or beats "ill" while
 * it still holds a session) past the deadline — the one remedy that works on a process that
 * runs none of its own code, and on one that cannot even be killed because it sits in `D` state.
 *
 * What it must never do is what the seed's watchdog did: block on the disk it watches. So:
 * - it is resident: every module is imported before the first heartbeat (no lazy import), it
 *   reads no file (the pid's /proc stat file is opened when the pid is learnt and re-read at
 *   offset 0), spawns nothing, and reaches ZooKeeper by IP literals only (no DNS);
 * - its log is a RingLog: decisions never wait for a write;
 * - the credentials (session id and password) arrive over the channel only, stay in this
 *   object's memory, and are never logged, shown or written: status and logs name a session by a
 *   label ("#1") that means nothing outside this process. The password is zeroed once the
 *   session is confirmed ended.
 *
 * An intervention: (1) endSession (src/zk/end-session.ts), (2) confirm through a session of its
 *   own that no znode under the election path is owned by that session any more, (3) SIGKILL
 *   the service's processes, (4) watch them: one still there after killConfirmMs is reported
 *   with its state (`D`: SIGKILL pending until its I/O returns). It never starts a new instance:
 *   whoever runs the watchdog learns from its exit, which comes only after the service is gone.
 */
import { EventEmitter } from 'node:events';
import { isIP, type Socket } from 'node:net';
import {
  createClient,
  endSession,
  EndSessionTimeoutError,
  parseConnectString,
  validatePath,
  NoNodeError,
  type ClientOptions,
  type ZooKeeperClient,
} from '../zk/index.ts';
import { GuardConfigError, ProtocolError } from './errors.ts';
import { LineSplitter, parseLine, type Message, type ServiceState } from './protocol.ts';
import { ProcWatch, type ProcState } from './proc.ts';
import type { LogFields, RingLog } from './ring-log.ts';

export interface WatchdogOptions {
  /** The ensemble, by IP literals (the watchdog does no DNS). */
  connectString: string;
  /** The election path whose znodes the service's session may own. */
  electionPath: string;
  /** Silence (or ill beats while a session is registered) beyond this: intervene. */
  deadlineMs: number;
  log: RingLog;
  name: string;
  /** Budget of one endSession call; default 10 000 ms. */
  endSessionTimeoutMs?: number;
  /** How long after SIGKILL a process that has not died is reported (with its state); default 1000 ms. */
  killConfirmMs?: number;
  /** SIGKILL the service after ending its session; default true. */
  kill?: boolean;
  /**
   * TLS and SASL for its own connections (ending the session, confirming): given at start, as
   * PEM text and a password held in memory, so nothing is read from disk when it acts. On an
   * ensemble that enforces authentication, endSession needs them (docs/security.md).
   */
  security?: Pick<ClientOptions, 'tls' | 'sasl'>;
}

export type DecisionKind =
  | 'attached'
  | 'session'
  | 'bye'
  | 'channelClosed'
  | 'intervene'
  | 'sessionEnded'
  | 'endSessionFailed'
  | 'znodeGone'
  | 'znodeStillThere'
  | 'kill'
  | 'unkillable'
  | 'exited'
  | 'refused';

export interface WatchdogDecision {
  /** Wall time (ISO) and ms since the watchdog started. */
  at: string;
  t: number;
  kind: DecisionKind;
  detail: LogFields;
}

export interface WatchdogStatus {
  name: string;
  state: 'waiting' | 'watching' | 'intervening' | 'done';
  deadlineMs: number;
  pids: number[];
  processStates: Record<string, ProcState>;
  beats: number;
  sinceLastBeatMs: number | null;
  /** The longest gap between two beats seen so far (what a pause cost). */
  maxSilenceMs: number;
  healthy: boolean | null;
  illReason: string | null;
  illForMs: number | null;
  /** A label only: the session's id and password are never shown. */
  session: { registered: boolean; label: string | null };
  znode: string | null;
  serviceState: string | null;
  interventions: number;
  decisions: WatchdogDecision[];
  log: { dropped: number; pending: number; writeStalledMs: number | null };
}

interface HeldSession {
  id: bigint;
  password: Buffer;
  label: string;
}

type InterventionReason = 'silent' | 'ill' | 'exited' | 'channelClosed';

const KEEP_DECISIONS = 50;
/** A server's handshake budget in the first attempt to end a session (see endAndConfirm). */
const ATTACH_FIRST_MS = 500;

export function checkIpConnectString(connectString: string, option: string): void {
  let parsed;
  try {
    parsed = parseConnectString(connectString);
  } catch (e) {
    throw new GuardConfigError(option, (e as Error).message);
  }
  for (const s of parsed.servers) {
    if (isIP(s.host) === 0)
      throw new GuardConfigError(option, `'${s.host}' is not an IP literal: the watchdog does no DNS (a resolver may hang or read files)`);
  }
}

export class Watchdog extends EventEmitter<{ decision: [WatchdogDecision] }> {
  private readonly o: Required<Omit<WatchdogOptions, 'log' | 'security'>> & { log: RingLog; security: Pick<ClientOptions, 'tls' | 'sasl'> };
  private readonly startedAt = performance.now();
  private readonly procs = new Map<number, ProcWatch>();
  private readonly exitedPids = new Set<number>();
  private service: Socket | null = null;
  private session: HeldSession | null = null;
  private sessions = 0;
  private znode: string | null = null;
  private serviceState: ServiceState | null = null;
  private watching = false;
  private lastBeatAt: number | null = null;
  private beats = 0;
  private maxSilenceMs = 0;
  private healthy: boolean | null = null;
  private illReason: string | null = null;
  private illSince: number | null = null;
  private intervention: Promise<void> | null = null;
  private _interventions = 0;
  private finished = false;
  private readonly decisions: WatchdogDecision[] = [];
  private timer: NodeJS.Timeout | null = null;
  private expectedAt = 0;
  private resumedAt = 0;
  private readonly tickMs: number;

  constructor(o: WatchdogOptions) {
    super();
    checkIpConnectString(o.connectString, 'connectString');
    try {
      validatePath(o.electionPath, 'electionPath');
    } catch (e) {
      throw new GuardConfigError('electionPath', (e as Error).message);
    }
    if (!Number.isInteger(o.deadlineMs) || o.deadlineMs <= 0) throw new GuardConfigError('deadlineMs', `expected a positive integer, got ${o.deadlineMs}`);
    this.o = { endSessionTimeoutMs: 10_000, killConfirmMs: 1000, kill: true, security: {}, ...o };
    this.tickMs = Math.max(10, Math.min(50, Math.floor(o.deadlineMs / 20)));
  }

  get interventions(): number {
    return this._interventions;
  }

  /** Resolves when no intervention is running. */
  async settled(): Promise<void> {
    while (this.intervention) await this.intervention;
  }

  start(): void {
    if (this.timer) return;
    this.expectedAt = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const p of this.procs.values()) p.close();
  }

  /** A process to SIGKILL when intervening (guard run's child; HELLO adds the service's own pid). */
  watchPid(pid: number): void {
    if (this.procs.has(pid)) return;
    this.procs.set(pid, new ProcWatch(pid));
  }

  /** guard run's child was reaped: it is gone for good. A session it left registered is ended now. */
  processExited(pid: number, code: number | null, signal: string | null): void {
    this.exitedPids.add(pid);
    this.decide('exited', { pid, code, signal });
    if (this.session && !this.intervention) this.intervene('exited', { pid });
  }

  /**
   * A connection from a service or a status client: the first line decides (HELLO/SESSION/
   * HEARTBEAT: the service, at most one at a time; STATUS: a status client). `service` marks an
   * inherited channel that can only be the service's.
   */
  attach(sock: Socket, service = false): void {
    let role: 'service' | 'control' | null = service ? 'service' : null;
    if (service) this.takeService(sock, 'inherited');
    const splitter = new LineSplitter(
      (text, line) => {
        let m: Message;
        try {
          m = parseLine(text, line);
        } catch (e) {
          const msg = e instanceof ProtocolError ? e.message : String(e);
          sock.write(`ERR ${msg}\n`);
          this.decide('refused', { reason: msg });
          return;
        }
        if (role === null) {
          if (m.type === 'status') role = 'control';
          else if (this.service) {
            sock.write(`ERR line ${line}: command: a service is already attached to this watchdog\n`);
            sock.end();
            return;
          } else {
            role = 'service';
            this.takeService(sock, 'socket');
          }
        }
        if (m.type === 'status') {
          sock.write(JSON.stringify(this.status()) + '\n');
          return;
        }
        if (role !== 'service') {
          sock.write(`ERR line ${line}: command: only STATUS on a status connection\n`);
          return;
        }
        this.onMessage(m, sock);
      },
      (line) => {
        sock.write(`ERR line ${line}: line: too long\n`);
        this.decide('refused', { reason: `line ${line} too long` });
      },
    );
    sock.on('data', (c: Buffer) => splitter.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (sock !== this.service) return;
      this.service = null;
      this.decide('channelClosed', { watching: this.watching });
    });
  }

  status(): WatchdogStatus {
    const now = performance.now();
    const states: Record<string, ProcState> = {};
    for (const [pid, p] of this.procs) states[String(pid)] = this.exitedPids.has(pid) ? 'gone' : p.state();
    return {
      name: this.o.name,
      state: this.finished ? 'done' : this.intervention ? 'intervening' : this.watching ? 'watching' : 'waiting',
      deadlineMs: this.o.deadlineMs,
      pids: [...this.procs.keys()],
      processStates: states,
      beats: this.beats,
      sinceLastBeatMs: this.lastBeatAt === null ? null : Math.round(now - this.lastBeatAt),
      maxSilenceMs: Math.round(this.maxSilenceMs),
      healthy: this.healthy,
      illReason: this.illReason,
      illForMs: this.illSince === null ? null : Math.round(now - this.illSince),
      session: { registered: this.session !== null, label: this.session?.label ?? null },
      znode: this.znode,
      serviceState: this.serviceState
        ? this.serviceState.kind === 'leader'
          ? `leader 0x${this.serviceState.epoch.toString(16)}`
          : this.serviceState.kind
        : null,
      interventions: this._interventions,
      decisions: [...this.decisions],
      log: { dropped: this.o.log.dropped, pending: this.o.log.pending, writeStalledMs: this.o.log.writeStalledMs() },
    };
  }

  private takeService(sock: Socket, channel: 'inherited' | 'socket'): void {
    this.service = sock;
    this.decide('attached', { channel });
  }

  private onMessage(m: Message, sock: Socket): void {
    const now = performance.now();
    switch (m.type) {
      case 'hello':
        this.watchPid(m.pid);
        this.watching = true;
        this.lastBeatAt ??= now;
        this.decide('attached', { pid: m.pid, service: m.name ?? undefined });
        return;
      case 'session': {
        if (this.intervention) {
          // Too late: this watchdog is ending the service; a new session would outlive it.
          sock.write('ERR line 0: SESSION: the watchdog is intervening\n');
          return;
        }
        this.forgetSession();
        if (m.session) {
          this.session = { ...m.session, label: `#${++this.sessions}` };
          this.watching = true;
          this.lastBeatAt ??= now;
        }
        this.decide('session', { registered: m.session !== null, label: this.session?.label ?? undefined });
        sock.write('OK SESSION\n');
        return;
      }
      case 'znode':
        this.znode = m.path;
        return;
      case 'state':
        this.serviceState = m.state;
        return;
      case 'heartbeat': {
        if (this.lastBeatAt !== null) this.maxSilenceMs = Math.max(this.maxSilenceMs, now - this.lastBeatAt);
        this.lastBeatAt = now;
        this.watching = true;
        this.beats++;
        this.healthy = m.healthy;
        if (m.healthy) {
          this.illSince = null;
          this.illReason = null;
        } else {
          this.illSince ??= now;
          this.illReason = m.reason;
        }
        return;
      }
      case 'bye':
        this.forgetSession();
        this.watching = false;
        this.decide('bye', {});
        return;
      case 'status':
        return;
    }
  }

  private tick(): void {
    const now = performance.now();
    // This watchdog itself was stalled (paused, starved): beats may sit unread in its socket.
    // Count silence from now on rather than blame the service for our own gap.
    if (now - this.expectedAt > this.o.deadlineMs / 4) this.resumedAt = now;
    this.expectedAt = now + this.tickMs;
    if (this.intervention || this.finished || !this.watching || this.lastBeatAt === null) return;
    const silence = now - Math.max(this.lastBeatAt, this.resumedAt);
    if (silence > this.o.deadlineMs) {
      this.intervene('silent', { silentMs: Math.round(now - this.lastBeatAt), deadlineMs: this.o.deadlineMs });
      return;
    }
    // Ill for as long as the service itself kept saying so: a service that falls silent while
    // ill is judged by its silence above.
    if (this.session && this.illSince !== null && this.lastBeatAt - Math.max(this.illSince, this.resumedAt) > this.o.deadlineMs) {
      this.intervene('ill', { illMs: Math.round(this.lastBeatAt - this.illSince), illReason: this.illReason ?? undefined, deadlineMs: this.o.deadlineMs });
    }
  }

  private intervene(reason: InterventionReason, detail: LogFields): void {
    if (this.intervention) return;
    this._interventions++;
    this.decide('intervene', { reason, ...detail, session: this.session?.label ?? 'none' });
    const run = this.runIntervention(reason).finally(() => {
      this.intervention = null;
    });
    this.intervention = run;
  }

  private async runIntervention(reason: InterventionReason): Promise<void> {
    const s = this.session;
    if (s) {
      const deadline = performance.now() + this.o.endSessionTimeoutMs;
      let confirmed = false;
      for (let attempt = 0; !confirmed; attempt++) {
        confirmed = await this.endAndConfirm(s, attempt, deadline);
        if (confirmed || performance.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      if (confirmed) this.forgetSession();
    }
    this.watching = false;
    if (reason === 'exited' || !this.o.kill) {
      this.finishIfGone();
      return;
    }
    await this.killAll();
  }

  /**
   * endSession, then proof from ZooKeeper itself that no election znode of the session is left.
   *
   * The first attempt gives each server's handshake only ATTACH_FIRST_MS: the server beside a
   * wedged service is often wedged too (the seed's node1 ZooKeeper shared the dead disk), and a
   * handshake it accepts but never finishes would otherwise cost a whole connect timeout before
   * the close goes through a healthy server — the failover waits for exactly that close. A later
   * attempt doubles it (up to 2 s), for an ensemble that is merely slow. An attempt that ran out
   * of time after its close was sent (a server that answered TCP never confirmed: the wedged one)
   * goes on to the proof: ZooKeeper's own view of the election decides, not that server.
   */
  private async endAndConfirm(s: HeldSession, attempt: number, deadline: number): Promise<boolean> {
    const connectTimeoutMs = Math.min(2000, ATTACH_FIRST_MS * 2 ** attempt);
    const timeoutMs = Math.max(1, Math.min(Math.round(deadline - performance.now()), Math.max(2000, 4 * connectTimeoutMs)));
    try {
      const r = await endSession(this.o.connectString, s.id, s.password, {
        timeoutMs,
        connectTimeoutMs: Math.min(connectTimeoutMs, timeoutMs),
        ...this.o.security,
      });
      this.decide('sessionEnded', {
        session: s.label,
        outcome: r.outcome,
        confirmedBy: r.confirmedBy.length,
        unreachable: r.unreachable.length,
        attaches: r.attaches,
      });
    } catch (e) {
      const closed = e instanceof EndSessionTimeoutError && (e.result.outcome === 'closed' || e.result.confirmedBy.length > 0);
      this.decide(closed ? 'sessionEnded' : 'endSessionFailed', {
        session: s.label,
        ...(closed ? { outcome: e.result.outcome, confirmedBy: e.result.confirmedBy.length, notConfirming: e.pending.length } : {}),
        error: (e as Error).message.replace(/0x[0-9a-f]+/gi, '<session>'),
      });
      if (!closed) return false;
    }
    let client: ZooKeeperClient | null = null;
    try {
      client = createClient(this.o.connectString, { sessionTimeoutMs: 4000, ...this.o.security });
      await client.connect({ timeoutMs: 5000 });
      const left = await ownedZnodes(client, this.o.electionPath, s.id, this.znode);
      if (left.length === 0) {
        this.decide('znodeGone', { session: s.label, path: this.o.electionPath });
        return true;
      }
      this.decide('znodeStillThere', { session: s.label, znodes: left.join(',') });
      return false;
    } catch (e) {
      this.decide('znodeStillThere', { session: s.label, error: (e as Error).message.replace(/0x[0-9a-f]+/gi, '<session>') });
      return false;
    } finally {
      await client?.close({ timeoutMs: 1000 }).catch(() => undefined);
    }
  }

  private async killAll(): Promise<void> {
    const pids = [...this.procs.keys()].filter((p) => !this.exitedPids.has(p));
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        this.decide('kill', { pid, signal: 'SIGKILL' });
      } catch (e) {
        this.decide('kill', { pid, error: (e as NodeJS.ErrnoException).code ?? String(e) });
      }
    }
    const start = performance.now();
    const reported = new Map<number, ProcState>();
    // Watch until every one is gone; report each that outlives killConfirmMs, and every change.
    for (;;) {
      let alive = 0;
      for (const pid of pids) {
        const st = this.exitedPids.has(pid) ? 'gone' : (this.procs.get(pid)?.state() ?? 'gone');
        if (st === 'gone' || st === 'Z' || st === 'X') {
          if (reported.has(pid) && reported.get(pid) !== 'gone') this.decide('exited', { pid, after: 'SIGKILL', ms: Math.round(performance.now() - start) });
          reported.set(pid, 'gone');
          continue;
        }
        alive++;
        if (performance.now() - start >= this.o.killConfirmMs && reported.get(pid) !== st) {
          reported.set(pid, st);
          this.decide('unkillable', {
            pid,
            state: st,
            why:
              st === 'D'
                ? 'uninterruptible sleep (disk I/O): SIGKILL pending until the I/O returns; its session is already ended'
                : 'still alive after SIGKILL',
          });
        }
      }
      if (alive === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    this.finishIfGone();
  }

  private finishIfGone(): void {
    this.finished = true;
  }

  private forgetSession(): void {
    if (this.session) this.session.password.fill(0);
    this.session = null;
  }

  private decide(kind: DecisionKind, detail: LogFields): void {
    const d: WatchdogDecision = { at: new Date().toISOString(), t: Math.round(performance.now() - this.startedAt), kind, detail };
    this.decisions.push(d);
    if (this.decisions.length > KEEP_DECISIONS) this.decisions.shift();
    this.o.log.log(`watchdog.${kind}`, detail);
    this.emit('decision', d);
  }
}

/** Znodes under `path` (and `znode`, if known) whose ephemeralOwner is `sessionId`, read after a sync. */
async function ownedZnodes(client: ZooKeeperClient, path: string, sessionId: bigint, znode: string | null): Promise<string[]> {
  await client.sync(path);
  let children: string[] = [];
  try {
    children = (await client.getChildren(path)).children;
  } catch (e) {
    if (!(e instanceof NoNodeError)) throw e;
  }
  const paths = new Set(children.map((c) => `${path}/${c}`));
  if (znode) paths.add(znode);
  const owned: string[] = [];
  await Promise.all(
    [...paths].map(async (p) => {
      const stat = await client.exists(p);
      if (stat && stat.ephemeralOwner === sessionId) owned.push(p);
    }),
  );
  return owned.sort();
}
