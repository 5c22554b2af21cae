/**
 * The client's session state: the states, the one table of legal transitions, and the one
 * function that moves between them (go-zookeeper's setState, Curator's setLeadership). Every
 * change of state, everywhere in the client, goes through `SessionStateMachine.to`:
 *
 *   1. the move is looked up in TRANSITIONS; a move the table does not list is refused (the state
 *      stays, nothing runs, nothing is emitted; `to` returns false);
 *   2. the state changes;
 *   3. the owner's effects run (timers armed or cleared, the server search started or aborted,
 *      requests failed...), all before anyone hears of the change;
 *   4. the move's event is delivered last, after any event already being delivered, so listeners
 *      see the events in the order of the moves even when a listener moves the client again
 *      (close() from a 'suspended' listener: 'suspended' reaches every listener, then 'closed').
 *
 * Effects must not move the client themselves (a legal move requested from inside effects is a
 * bug, and throws): what happens next is decided by what the effects start, later. A refused
 * move is harmless anywhere (a closing connection failing its last packet while the client is
 * already closed).
 *
 * Also here: the timing rules that follow the negotiated session timeout (ClientCnxn.onConnected).
 */

export type ClientState = 'idle' | 'connecting' | 'connected' | 'suspended' | 'closing' | 'closed' | 'expired' | 'authFailed';

export interface ConnectedInfo {
  sessionId: bigint;
  server: string;
  readOnly: boolean;
  timeoutMs: number;
}

export type ExpiryReason = 'server' | 'local';

/**
 * What close() did to the session:
 * - 'closed': a server answered the closeSession: the session and its ephemerals are gone now;
 * - 'abandoned': the client held a session it could not close (no connection at the time, or no
 *   answer in time): the servers end it once its timeout passes without contact;
 * - 'none': there was no live session to close (never established, or already expired).
 */
export interface CloseResult {
  session: 'closed' | 'abandoned' | 'none';
  sessionId: bigint;
}

export interface ClientEvents {
  connected: [info: ConnectedInfo];
  suspended: [info: { server: string; reason: Error }];
  reconnected: [info: ConnectedInfo];
  expired: [info: { reason: ExpiryReason; sessionId: bigint }];
  closed: [result: CloseResult];
  /** `error`, when the server said why: what it answered (AuthFailedError, SessionClosedRequireSaslAuthError). */
  authFailed: [info: { scheme: string; error?: Error }];
  /** A watch listener or event handler threw; the client carries on. */
  listenerError: [err: unknown];
}

/** A move and what its event reports. `C` is the owner's connection type, handed to the effects. */
export type Transition<C> =
  | { to: 'connecting' }
  | { to: 'connected'; info: ConnectedInfo; connection: C }
  | { to: 'suspended'; server: string; reason: Error }
  | { to: 'closing' }
  | { to: 'closed'; result: CloseResult }
  | { to: 'expired'; reason: ExpiryReason; sessionId: bigint }
  | { to: 'authFailed'; scheme: string; error?: Error };

export type StateEvent = Exclude<keyof ClientEvents, 'listenerError'>;

/**
 * Every legal move, with the event it emits (null: none). `connected` is reached from
 * `connecting` (the first session: 'connected') or from `suspended` (the same session on some
 * server: 'reconnected'). `authFailed` is reached from `connected` (a refused addAuth, or a
 * server that enforces authentication this connection lacks) and from `connecting`/`suspended`
 * (a refused SASL credential: SASL is part of establishing each connection). `expired`,
 * `authFailed` and `closed` are final but for close(), which turns the first two into `closed`.
 */
export const TRANSITIONS: { readonly [F in ClientState]: { readonly [T in ClientState]?: StateEvent | null } } = {
  idle: { connecting: null, closed: 'closed' },
  connecting: { connected: 'connected', expired: 'expired', authFailed: 'authFailed', closed: 'closed' },
  connected: { suspended: 'suspended', expired: 'expired', authFailed: 'authFailed', closing: null },
  suspended: { connected: 'reconnected', expired: 'expired', authFailed: 'authFailed', closed: 'closed' },
  closing: { closed: 'closed' },
  expired: { closed: 'closed' },
  authFailed: { closed: 'closed' },
  closed: {},
};

export interface StateMachineOwner<C> {
  /** Step 3: the owner's side of the move (from → t.to). */
  effects(from: ClientState, t: Transition<C>): void;
  /** Step 4: tell the listeners (`args` is what ClientEvents lists for the event). */
  deliver(event: StateEvent, args: readonly unknown[]): void;
}

function eventArgs<C>(event: StateEvent, t: Transition<C>): unknown[] {
  switch (t.to) {
    case 'connected':
      return [t.info];
    case 'suspended':
      return [{ server: t.server, reason: t.reason }];
    case 'expired':
      return [{ reason: t.reason, sessionId: t.sessionId }];
    case 'authFailed':
      return [t.error ? { scheme: t.scheme, error: t.error } : { scheme: t.scheme }];
    case 'closed':
      return [t.result];
    default:
      throw new Error(`no payload for event ${event} of a move to ${t.to}`);
  }
}

export class SessionStateMachine<C> {
  private current: ClientState = 'idle';
  private readonly queue: { event: StateEvent; args: unknown[] }[] = [];
  private delivering = false;
  private inEffects = false;

  constructor(private readonly owner: StateMachineOwner<C>) {}

  get state(): ClientState {
    return this.current;
  }

  /** Whether the table allows moving to `to` from the current state. */
  can(to: ClientState): boolean {
    return TRANSITIONS[this.current][to] !== undefined;
  }

  /** The one transition function (see the module comment). False, and nothing done, for a move the table does not list. */
  to(t: Transition<C>): boolean {
    const from = this.current;
    const event = TRANSITIONS[from][t.to];
    if (event === undefined) return false;
    if (this.inEffects) throw new Error(`session state: a move ${from} -> ${t.to} was requested inside the effects of another move`);
    this.current = t.to;
    this.inEffects = true;
    try {
      this.owner.effects(from, t);
    } finally {
      this.inEffects = false;
    }
    if (event !== null) this.queue.push({ event, args: eventArgs(event, t) });
    this.flush();
    return true;
  }

  private flush(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        this.owner.deliver(next.event, next.args);
      }
    } finally {
      this.delivering = false;
    }
  }
}

/** The timeouts a session runs on. */
export interface SessionTiming {
  /** Per server: TCP connect plus session handshake. */
  connectTimeoutMs: number;
  /** No byte from the server for this long ends the connection (a paused or cut-off server). */
  readTimeoutMs: number;
  /** A ping goes out when nothing was sent for this long. */
  pingIntervalMs: number;
}

/** Java's client pings at least this often, whatever the session timeout (ClientCnxn's MAX_SEND_PING_INTERVAL). */
const MAX_PING_INTERVAL_MS = 10_000;
/** A floor for the per-server connect timeout, so a large server list cannot make it useless. */
const MIN_CONNECT_TIMEOUT_MS = 250;

/**
 * The rules of ClientCnxn (its constructor, then onConnected on every handshake): with session
 * timeout T (the requested one until the first handshake, then each negotiated one) and N servers,
 * connect timeout T/N, read timeout 2T/3, a ping after half the read timeout without sending (at
 * most every 10 s). `fixedConnectTimeoutMs`, if the caller set one, is kept as it is.
 */
export function sessionTiming(sessionTimeoutMs: number, servers: number, fixedConnectTimeoutMs?: number): SessionTiming {
  const readTimeoutMs = Math.floor((sessionTimeoutMs * 2) / 3);
  return {
    connectTimeoutMs: fixedConnectTimeoutMs ?? Math.max(MIN_CONNECT_TIMEOUT_MS, Math.floor(sessionTimeoutMs / Math.max(1, servers))),
    readTimeoutMs,
    pingIntervalMs: Math.min(MAX_PING_INTERVAL_MS, Math.floor(readTimeoutMs / 2)),
  };
}
