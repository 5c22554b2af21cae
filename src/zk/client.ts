/**
 * ZooKeeperClient: the session over a changing sequence of connections, and every operation.
 *
 * The session's states and their one transition function are in session-state.ts (the table
 * there is the state model; docs/client.md draws it). This module supplies what each move does
 * (`effects`): the server search runs exactly while the state is `connecting` or `suspended`;
 * the local-expiry timer exactly while `suspended`; entering a final state fails every waiting
 * request and stops every timer.
 *
 * Requests made while connecting or suspended wait in an outbox and go out after the
 * (re)connect, within their own timeout. Requests in flight when a connection drops fail with
 * ConnectionLossError: they may or may not have been applied, and only the caller knows whether
 * retrying is safe.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { JuteDecodeError, type JuteReader } from './jute.ts';
import { readStat, sessionHex, type ACL, type Stat } from './records.ts';
import { Connection, buildFrame, type Packet } from './connection.ts';
import {
  AddWatchMode,
  EventType,
  OpCode,
  WatcherType,
  Xid,
  readCreate2Response,
  readGetACLResponse,
  readGetChildren2Response,
  readGetDataResponse,
  readMultiResponse,
  readStringVector,
  readWhoAmIResponse,
  writeAuthPacket,
  writeSetWatches,
  writeSetWatches2,
  type AddWatchModeName,
  type ClientInfo,
  type ConnectResponse,
  type CreateMode,
  type Op,
  type OpResult,
  type ReadOp,
  type ReplyHeader,
  type WatchEventType,
  type WatcherEvent,
  type WatcherKind,
} from './protocol.ts';
import {
  AuthFailedError,
  ClientClosedError,
  ConnectionLossError,
  ErrorCode,
  InvalidArgumentError,
  MultiError,
  NoWatcherError,
  OperationTimeoutError,
  PacketTooLargeError,
  ProtocolError,
  SessionExpiredError,
  ZooKeeperError,
  errorFromCode,
} from './errors.ts';
import { WatchManager, type WatchListener, type WatchTable } from './watches.ts';
import { PreparedTls, type TlsOptions } from './transport.ts';
import { digestMd5Factory, type DigestMd5Credentials, type SaslMechanism } from './sasl.ts';
import { chrootPath, parseConnectString, stripChroot, validatePath, type ServerAddress } from './paths.ts';
import { checkAddWatchMode, checkInteger, checkMillis, checkWatcherKind } from './args.ts';
import {
  createRequest,
  deleteRequest,
  multiReadRequest,
  multiRequest,
  pathIntRequest,
  pathRequest,
  readRequest,
  setACLRequest,
  setDataRequest,
  toBuffer,
  type Data,
  type OpRequest,
} from './ops.ts';
import {
  SessionStateMachine,
  sessionTiming,
  type ClientEvents,
  type ClientState,
  type CloseResult,
  type ConnectedInfo,
  type SessionTiming,
  type Transition,
} from './session-state.ts';

export type { ClientEvents, ClientState, CloseResult, ConnectedInfo, ExpiryReason, SessionTiming } from './session-state.ts';
export type { Data } from './ops.ts';

export interface ClientOptions {
  /** Requested session timeout; the server clamps it to [2, 20] x tickTime. Default 10 000. */
  sessionTimeoutMs?: number;
  /**
   * Per server: TCP connect plus session handshake. Default: session timeout / number of servers
   * (at least 250), recomputed from the negotiated timeout on every handshake. Set, it stays fixed.
   */
  connectTimeoutMs?: number;
  /** Default timeout of every request, queued time included. Default: the session timeout. */
  requestTimeoutMs?: number;
  /** Accept a read-only server (one cut off from its quorum) when no read-write one answers. */
  readOnly?: boolean;
  /** Open on an existing session (hand-over): both id and password are needed. */
  sessionId?: bigint;
  sessionPassword?: Buffer;
  /** The servers' packet limit (jute.maxbuffer); bigger requests fail before they are sent. Default 0xfffff. */
  maxPacketBytes?: number;
  /** Try the servers in a random order (spreads clients). Default true. */
  shuffleServers?: boolean;
  /**
   * When a suspended client has had no contact with any server for the whole negotiated
   * session timeout, report the session as expired without waiting for a server to say so
   * (like Curator). A leader must assume it is deposed by then. Default true.
   */
  localExpiry?: boolean;
  /** Credentials added before the first connect (and re-sent on every reconnect). */
  auth?: { scheme: string; auth: string | Buffer }[];
  /** TLS to the servers' secureClientPort, on every connection (reconnects keep it). See transport.ts and docs/security.md. */
  tls?: TlsOptions;
  /** SASL DIGEST-MD5, done on every connection before any request; a refused credential moves the client to authFailed. */
  sasl?: DigestMd5Credentials;
  /**
   * With requests outstanding and the connection silent both ways for this long, send a ping
   * (again after each such stretch). ZooKeeper from 3.6.0 until the ZOOKEEPER-4537 fix (Debian
   * 12's 3.8.0 has the bug) can hold a committed reply until the next request reaches that
   * server, which without this is the next ping, up to 10 s later (docs/client.md). Default 250;
   * 0 turns it off.
   */
  overduePingMs?: number;
}

export interface TimeoutOption {
  timeoutMs?: number;
}

export interface WatchOption extends TimeoutOption {
  watch?: WatchListener;
}

export interface CreateOptions extends TimeoutOption {
  mode?: CreateMode;
  acl?: readonly ACL[];
  /** Required for the TTL modes (1 to 2^40-1 ms): the node goes once it has had no children and no change for this long. */
  ttlMs?: number;
}

/** What a Request needs from its client (kept narrow so Request can be a plain class). */
interface RequestOwner {
  replyTo(req: Request<unknown>, header: ReplyHeader, body: JuteReader): void;
  fail(req: Request<unknown>, err: Error): void;
}

/**
 * A request waiting for its reply (or, while suspended, for a connection). A class rather than
 * an object of closures: the hot path allocates one object per request, and the timeout is a
 * deadline checked by the client's sweeper instead of a timer per request.
 */
class Request<T> implements Packet {
  xid = 0;
  settled = false;
  resolve!: (v: T) => void;
  reject!: (e: Error) => void;
  /** Neighbours in the client's list of live requests (LiveRequests). */
  prevLive: Request<unknown> | null = null;
  nextLive: Request<unknown> | null = null;
  constructor(
    readonly owner: RequestOwner,
    readonly op: string,
    readonly type: number,
    readonly path: string | undefined,
    readonly frame: Buffer,
    readonly decode: (header: ReplyHeader, body: JuteReader) => T,
    readonly deadline: number,
    readonly timeoutMs: number,
    /** Turns an error code into a value (exists: NoNode -> null); undefined keeps the error. */
    readonly recover?: (code: number) => { value: T } | undefined,
  ) {}
  onReply(header: ReplyHeader, body: JuteReader): void {
    this.owner.replyTo(this as Request<unknown>, header, body);
  }
  onLoss(err: Error): void {
    this.owner.fail(this as Request<unknown>, err);
  }
}

/**
 * The requests not yet settled (queued or in flight), oldest first, for the deadline sweeper: a
 * list threaded through the requests, so adding or removing one allocates and hashes nothing.
 */
class LiveRequests {
  private head: Request<unknown> | null = null;
  private tail: Request<unknown> | null = null;
  size = 0;

  add(req: Request<unknown>): void {
    req.prevLive = this.tail;
    req.nextLive = null;
    if (this.tail) this.tail.nextLive = req;
    else this.head = req;
    this.tail = req;
    this.size++;
  }

  delete(req: Request<unknown>): void {
    if (req.prevLive === null && this.head !== req) return; // not in the list
    if (req.prevLive) req.prevLive.nextLive = req.nextLive;
    else this.head = req.nextLive;
    if (req.nextLive) req.nextLive.prevLive = req.prevLive;
    else this.tail = req.prevLive;
    req.prevLive = null;
    req.nextLive = null;
    this.size--;
  }

  /** Oldest first; `visit` may delete the request it is given. */
  forEach(visit: (req: Request<unknown>) => void): void {
    for (let req = this.head; req !== null;) {
      const next = req.nextLive;
      visit(req);
      req = next;
    }
  }
}

interface AuthEntry {
  scheme: string;
  auth: Buffer;
  waiters: { resolve(): void; reject(e: Error): void }[];
}

/** A handshake that granted the session: what the move to `connected` hands to its effects. */
interface Granted {
  conn: Connection;
  response: ConnectResponse;
}

interface ConnectWaiter {
  resolve(info: ConnectedInfo): void;
  reject(e: Error): void;
}

const DEFAULT_MAX_PACKET = 0xfffff;
/**
 * Far beyond a healthy reply (a write is a quorum round trip and an fsync: milliseconds), far
 * below the ping interval a held reply would otherwise cost.
 */
const DEFAULT_OVERDUE_PING_MS = 250;
/** setWatches batches stay well under any packet limit (ClientCnxn uses 128 KiB too). */
const SET_WATCHES_BATCH = 128 * 1024;
/** Sleep after a whole round of servers failed, so a down ensemble is not hammered. */
const ROUND_BACKOFF_MS = 100;
const ROUND_BACKOFF_JITTER_MS = 200;

// Decoders without per-request state, shared by every request.
const decodeNothing = (): void => undefined;
const decodeExists = (_h: ReplyHeader, r: JuteReader): Stat => readStat(r, 'ExistsResponse.stat');
const decodeGetData = (_h: ReplyHeader, r: JuteReader): { data: Buffer; stat: Stat } => readGetDataResponse(r);
const decodeSetData = (_h: ReplyHeader, r: JuteReader): Stat => readStat(r, 'SetDataResponse.stat');
const NULL_VALUE = { value: null };
const NO_BODY: OpRequest = { type: 0, path: undefined, sizeHint: 0, write: () => undefined };

const eventTypeNames = new Map<number, WatchEventType>(
  (Object.entries(EventType) as [keyof typeof EventType, number][]).filter(([k]) => k !== 'none').map(([k, v]) => [v, k as WatchEventType]),
);

export class ZooKeeperClient extends EventEmitter<ClientEvents> {
  readonly servers: readonly ServerAddress[];
  readonly chroot: string;
  private readonly opts: Required<Omit<ClientOptions, 'sessionId' | 'sessionPassword' | 'connectTimeoutMs' | 'auth' | 'tls' | 'sasl'>> & {
    connectTimeoutMs: number | undefined;
  };
  private readonly machine: SessionStateMachine<Granted>;
  private timings: SessionTiming;
  private conn: Connection | null = null;
  private _sessionId = 0n;
  /** #private: util.inspect of a client (a log line dumping it) must not show what ends the session. */
  #passwd: Buffer = Buffer.alloc(16);
  private negotiatedTimeout = 0;
  private _readOnly = false;
  private _lastZxid = 0n;
  private nextXid = 1;
  private hostIndex = 0;
  private outbox: Request<unknown>[] = [];
  private readonly watches = new WatchManager();
  private readonly auths: AuthEntry[] = [];
  private authInflight: AuthEntry[] = [];
  /** The server search: exists exactly while the state is connecting or suspended. */
  private search: AbortController | null = null;
  /** Local expiry: armed exactly while suspended (with localExpiry). */
  private expiryTimer: NodeJS.Timeout | null = null;
  /** connect() callers share one attempt; it ends at the earliest of their deadlines. */
  private readonly connectWaiters = new Set<ConnectWaiter>();
  private connectTimer: NodeJS.Timeout | null = null;
  private connectDeadline = Infinity;
  /** The closeSession in flight while closing, and its deadline. */
  private closeTimer: NodeJS.Timeout | null = null;
  private closeTimeoutMs = 0;
  private readonly closed: Promise<CloseResult>;
  private resolveClosed!: (r: CloseResult) => void;
  /** Requests not yet settled (queued or in flight), for the deadline sweeper. */
  private readonly live = new LiveRequests();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly owner: RequestOwner = {
    replyTo: (req, h, r) => this.onReply(req, h, r),
    fail: (req, err) => this.settle(req, err),
  };
  /** When the last byte came from any server (for local expiry). */
  private lastContact = Date.now();
  /** overduePings of the connections already gone. */
  private overduePingsDone = 0;
  /** create's reply, the path back in the caller's terms (one function for every create). */
  private readonly decodeCreate = (_h: ReplyHeader, r: JuteReader): { path: string; stat: Stat } => {
    const res = readCreate2Response(r);
    res.path = this.strip(res.path);
    return res;
  };
  private readonly tls: PreparedTls | undefined;
  /** A new mechanism per connection; the credential lives only in this closure. */
  private readonly sasl: (() => SaslMechanism) | undefined;
  /** Why the last connection attempt failed, for the connect timeout's message. */
  private lastAttemptError: Error | null = null;
  /** A connection the server answered SESSIONCLOSEDREQUIRESASLAUTH on, and that answer. */
  private authRequired: { conn: Connection; error: Error } | null = null;

  constructor(connectString: string, options: ClientOptions = {}) {
    super();
    const parsed = parseConnectString(connectString);
    this.chroot = parsed.chroot;
    const servers = [...parsed.servers];
    if (options.shuffleServers ?? true) {
      for (let i = servers.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [servers[i], servers[j]] = [servers[j], servers[i]];
      }
    }
    this.servers = servers;
    const sessionTimeoutMs = checkMillis(options.sessionTimeoutMs ?? 10_000, 'sessionTimeoutMs');
    this.opts = {
      sessionTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs === undefined ? undefined : checkMillis(options.connectTimeoutMs, 'connectTimeoutMs'),
      requestTimeoutMs: checkMillis(options.requestTimeoutMs ?? sessionTimeoutMs, 'requestTimeoutMs'),
      readOnly: options.readOnly ?? false,
      maxPacketBytes: checkInteger(options.maxPacketBytes ?? DEFAULT_MAX_PACKET, 'maxPacketBytes', 1, 0x7fffffff, 'a size in bytes'),
      shuffleServers: options.shuffleServers ?? true,
      localExpiry: options.localExpiry ?? true,
      overduePingMs: checkInteger(options.overduePingMs ?? DEFAULT_OVERDUE_PING_MS, 'overduePingMs', 0, 0x7fffffff, 'a duration in milliseconds, 0 for never'),
    };
    this.timings = sessionTiming(sessionTimeoutMs, servers.length, this.opts.connectTimeoutMs);
    if ((options.sessionId === undefined) !== (options.sessionPassword === undefined)) {
      throw new InvalidArgumentError('sessionId', 'a session hand-over needs both sessionId and sessionPassword');
    }
    if (options.sessionId !== undefined && options.sessionPassword !== undefined) {
      this._sessionId = options.sessionId;
      this.#passwd = Buffer.from(options.sessionPassword);
    }
    for (const a of options.auth ?? []) this.auths.push({ scheme: a.scheme, auth: toBuffer(a.auth, 'auth') ?? Buffer.alloc(0), waiters: [] });
    this.tls = options.tls === undefined ? undefined : new PreparedTls(options.tls);
    this.sasl = options.sasl === undefined ? undefined : digestMd5Factory(options.sasl);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.machine = new SessionStateMachine<Granted>({
      effects: (from, t) => this.effects(from, t),
      deliver: (event, args) => this.emitSafe(event, args),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Session

  get state(): ClientState {
    return this.machine.state;
  }

  /** 0n until the first handshake (or the hand-over id). */
  get sessionId(): bigint {
    return this._sessionId;
  }

  /** A copy: whoever holds id and password can resume or close the session. */
  get sessionPassword(): Buffer {
    return Buffer.from(this.#passwd);
  }

  /** The timeout the server granted (0 before the first handshake). */
  get sessionTimeoutMs(): number {
    return this.negotiatedTimeout;
  }

  /**
   * The timeouts in force: from the requested session timeout until the first handshake, then
   * from each negotiated one (connect timeout per server, read timeout, ping interval).
   */
  get timing(): SessionTiming {
    return { ...this.timings };
  }

  /** host:port of the current connection, or null. */
  get server(): string | null {
    return this.machine.state === 'connected' && this.conn ? this.conn.server : null;
  }

  get readOnly(): boolean {
    return this._readOnly;
  }

  /**
   * When a byte last arrived from a server (epoch ms): how stale this client's view of its
   * session is. A guard can compare it with sessionTimeoutMs without waiting for events.
   */
  get lastContactAt(): number {
    return this.machine.state === 'connected' && this.conn ? Math.max(this.lastContact, this.conn.lastReceiveTime) : this.lastContact;
  }

  /**
   * Pings sent because a reply was overdue on a silent connection (options.overduePingMs), over
   * the client's life. Steadily rising: the server holds replies, or is slow to answer them.
   */
  get overduePings(): number {
    return this.overduePingsDone + (this.conn?.overduePings ?? 0);
  }

  /** The newest zxid seen in any reply. */
  get lastZxid(): bigint {
    return this._lastZxid;
  }

  /**
   * Connects and resolves once a session is established (new, or the handed-over one).
   * Rejects with SessionExpiredError if a handed-over session no longer exists, with
   * OperationTimeoutError (and closes the client) if no server answers within timeoutMs.
   * Concurrent callers share the one attempt.
   */
  connect(options: TimeoutOption = {}): Promise<ConnectedInfo> {
    switch (this.machine.state) {
      case 'connected':
        return Promise.resolve(this.connectedInfo(this.conn!));
      case 'closing':
      case 'closed':
        return Promise.reject(new ClientClosedError('connect'));
      case 'expired':
        return Promise.reject(new SessionExpiredError());
      case 'authFailed':
        return Promise.reject(new AuthFailedError());
      default:
        break;
    }
    let timeoutMs: number;
    try {
      timeoutMs =
        options.timeoutMs === undefined
          ? Math.max(this.opts.sessionTimeoutMs, this.timings.connectTimeoutMs * this.servers.length)
          : checkMillis(options.timeoutMs, 'timeoutMs');
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const promise = new Promise<ConnectedInfo>((resolve, reject) => this.connectWaiters.add({ resolve, reject }));
    this.armConnectDeadline(timeoutMs);
    if (this.machine.state === 'idle') this.machine.to({ to: 'connecting' });
    return promise;
  }

  /**
   * Ends the session and the connection, and resolves at once when there is nothing to wait for.
   * Connected: sends closeSession (the server deletes the ephemerals at once) and waits for its
   * reply within timeoutMs (default: the request timeout, at most 5 s). Connecting or suspended:
   * aborts the attempt in flight and returns (like the Java client), the session `abandoned` to
   * its timeout. Requests still waiting fail with ClientClosedError. Idempotent: every call
   * resolves with the same result.
   */
  close(options: TimeoutOption = {}): Promise<CloseResult> {
    switch (this.machine.state) {
      case 'connected':
        this.closeTimeoutMs = options.timeoutMs ?? Math.min(this.opts.requestTimeoutMs, 5000);
        this.machine.to({ to: 'closing' });
        break;
      case 'closing':
      case 'closed':
        break;
      case 'expired':
        this.machine.to({ to: 'closed', result: { session: 'none', sessionId: this._sessionId } });
        break;
      default:
        // idle, connecting, suspended, authFailed: a known session is left to its timeout.
        this.machine.to({ to: 'closed', result: { session: this._sessionId === 0n ? 'none' : 'abandoned', sessionId: this._sessionId } });
    }
    return this.closed;
  }

  private connectedInfo(conn: Connection): ConnectedInfo {
    return { sessionId: this._sessionId, server: conn.server, readOnly: this._readOnly, timeoutMs: this.negotiatedTimeout };
  }

  /** What each move does, before its event is delivered (session-state.ts calls this, and only it). */
  private effects(from: ClientState, t: Transition<Granted>): void {
    const seeking = (s: ClientState): boolean => s === 'connecting' || s === 'suspended';
    if (seeking(from) && !seeking(t.to)) this.stopSearch();
    if (from === 'suspended') this.clearExpiryTimer();
    switch (t.to) {
      case 'connecting':
        this.startSearch();
        return;
      case 'connected':
        this.attach(t.connection);
        this.settleConnectWaiters((w) => w.resolve(t.info));
        return;
      case 'suspended':
        this.detach(t.reason);
        this.armLocalExpiry();
        this.startSearch();
        return;
      case 'closing':
        this.sendCloseSession();
        return;
      case 'closed':
        this.finish(new ClientClosedError('request'));
        this.settleConnectWaiters((w) => w.reject(new ClientClosedError('connect')));
        this.resolveClosed(t.result);
        return;
      case 'expired': {
        const msg = `session ${sessionHex(t.sessionId)} no longer exists`;
        this.finish(new SessionExpiredError(undefined, msg));
        this.settleConnectWaiters((w) => w.reject(new SessionExpiredError(undefined, msg)));
        return;
      }
      case 'authFailed': {
        const err = t.error ?? new AuthFailedError(undefined, `scheme ${t.scheme}`);
        this.finish(err);
        this.settleConnectWaiters((w) => w.reject(err));
        return;
      }
    }
  }

  private armConnectDeadline(timeoutMs: number): void {
    const deadline = Date.now() + timeoutMs;
    if (deadline >= this.connectDeadline) return;
    this.connectDeadline = deadline;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      const tried = this.servers.map((s) => `${s.host}:${s.port}`).join(', ');
      const last = this.lastAttemptError ? `; last error: ${this.lastAttemptError.message}` : '';
      const err = new OperationTimeoutError(undefined, `no session with any of ${tried} within ${timeoutMs} ms${last}`);
      this.settleConnectWaiters((w) => w.reject(err));
      void this.close();
    }, timeoutMs);
  }

  private settleConnectWaiters(settle: (w: ConnectWaiter) => void): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.connectDeadline = Infinity;
    const waiters = [...this.connectWaiters];
    this.connectWaiters.clear();
    for (const w of waiters) settle(w);
  }

  private startSearch(): void {
    const search = new AbortController();
    this.search = search;
    this.seek(search.signal).catch((e: unknown) => {
      // Not expected (every failure of an attempt is a value); say so rather than lose it.
      process.emitWarning(`zkwarden client: the server search failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    });
  }

  /** Aborts the attempt in flight: its socket and timer go now, not at its connect timeout. */
  private stopSearch(): void {
    this.search?.abort();
    this.search = null;
  }

  /** Tries the servers in turn until one grants the session, the session is gone, or the search is aborted. */
  private async seek(signal: AbortSignal): Promise<void> {
    let failuresInRound = 0;
    while (!signal.aborted) {
      const addr = this.servers[this.hostIndex % this.servers.length]!;
      this.hostIndex = (this.hostIndex + 1) % this.servers.length;
      const opened = await Connection.open({
        host: addr.host,
        port: addr.port,
        // Read at each attempt: the latest negotiation's value.
        connectTimeoutMs: this.timings.connectTimeoutMs,
        maxIncomingBytes: this.opts.maxPacketBytes + 64 * 1024,
        signal,
        request: {
          protocolVersion: 0,
          lastZxidSeen: this._lastZxid,
          timeOut: this.opts.sessionTimeoutMs,
          sessionId: this._sessionId,
          passwd: this.#passwd,
          readOnly: this.opts.readOnly,
        },
        tls: this.tls,
        sasl: this.sasl,
      });
      if (signal.aborted) {
        if (opened.ok) opened.conn.close(new ClientClosedError('connect'));
        return;
      }
      if (!opened.ok) {
        this.lastAttemptError = opened.error;
        // The servers share the JAAS set-up: a refused credential is refused everywhere.
        if (opened.failure === 'unauthenticated') {
          this.machine.to({ to: 'authFailed', scheme: 'sasl', error: opened.error });
          return;
        }
      }
      if (opened.ok && opened.conn.isOpen) {
        const { conn, response } = opened;
        if (response.timeOut <= 0) {
          // The server no longer knows the session (expired, closed by another holder, or a
          // wrong password): it is gone for good.
          conn.close(new SessionExpiredError());
          this.machine.to({ to: 'expired', reason: 'server', sessionId: this._sessionId });
          return;
        }
        if (!response.readOnly || this.opts.readOnly) {
          this.machine.to({ to: 'connected', info: this.grantedInfo(conn, response), connection: { conn, response } });
          return;
        }
        conn.close(new ConnectionLossError(undefined, `${conn.server} is read-only`));
      }
      if (++failuresInRound >= this.servers.length) {
        failuresInRound = 0;
        try {
          await sleep(ROUND_BACKOFF_MS + Math.floor(Math.random() * ROUND_BACKOFF_JITTER_MS), undefined, { signal });
        } catch {
          return; // aborted
        }
      }
    }
  }

  private grantedInfo(conn: Connection, response: ConnectResponse): ConnectedInfo {
    return { sessionId: response.sessionId, server: conn.server, readOnly: response.readOnly, timeoutMs: response.timeOut };
  }

  /** Entering `connected`: the connection becomes the session's, timing follows the negotiated timeout, queued work goes out. */
  private attach({ conn, response }: Granted): void {
    this.conn = conn;
    this._sessionId = response.sessionId;
    this.#passwd = Buffer.from(response.passwd);
    this.negotiatedTimeout = response.timeOut;
    this._readOnly = response.readOnly;
    this.lastContact = Date.now();
    // ClientCnxn.onConnected: every negotiation sets the timeouts anew.
    this.timings = sessionTiming(response.timeOut, this.servers.length, this.opts.connectTimeoutMs);
    conn.start(
      {
        onNotification: (ev, zxid) => this.onNotification(ev, zxid),
        onSpecialReply: (h, r) => this.onSpecialReply(h, r),
        onZxid: (z) => {
          if (z > this._lastZxid) this._lastZxid = z;
        },
        onClose: (reason) => this.onConnectionClosed(conn, reason),
      },
      { ...this.timings, overduePingMs: this.opts.overduePingMs },
    );
    // Credentials first: the server applies auth packets as they arrive, ahead of queued requests.
    for (const a of this.auths) this.sendAuth(conn, a);
    this.sendSetWatches(conn);
    const queued = this.outbox;
    this.outbox = [];
    for (const req of queued) if (!req.settled) this.sendRequest(conn, req);
  }

  /** Entering `suspended`: the connection is gone; what was waiting on it fails. */
  private detach(reason: Error): void {
    const conn = this.conn;
    this.conn = null;
    if (conn) {
      this.lastContact = Math.max(this.lastContact, conn.lastReceiveTime);
      this.overduePingsDone += conn.overduePings;
    }
    for (const a of this.authInflight) this.failAuth(a, new ConnectionLossError(undefined, reason.message));
    this.authInflight = [];
  }

  private onConnectionClosed(conn: Connection, reason: Error): void {
    if (conn !== this.conn) return;
    const required = this.authRequired;
    this.authRequired = null;
    // The server said it requires authentication and closed the connection, as
    // AuthenticationHelper does: every reconnect would end the same way.
    if (required?.conn === conn && !(reason instanceof ProtocolError)) {
      this.machine.to({ to: 'authFailed', scheme: this.sasl ? 'sasl' : 'none', error: required.error });
      return;
    }
    this.machine.to({ to: 'suspended', server: conn.server, reason });
  }

  /** A SESSIONCLOSEDREQUIRESASLAUTH answer: the server is about to close this connection for want of authentication. */
  private noteAuthRequired(err: Error): void {
    if (this.conn) this.authRequired = { conn: this.conn, error: err };
  }

  private armLocalExpiry(): void {
    if (!this.opts.localExpiry) return;
    const left = this.negotiatedTimeout - (Date.now() - this.lastContact);
    const sessionId = this._sessionId;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = null;
        this.machine.to({ to: 'expired', reason: 'local', sessionId });
      },
      Math.max(0, left),
    );
  }

  private clearExpiryTimer(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  /** Entering `closing`: closeSession straight on the connection; its reply, its loss or its deadline ends the close. */
  private sendCloseSession(): void {
    const conn = this.conn!;
    const end = (session: CloseResult['session']): void => {
      this.machine.to({ to: 'closed', result: { session, sessionId: this._sessionId } });
    };
    this.closeTimer = setTimeout(() => end('abandoned'), this.closeTimeoutMs);
    conn.send({
      xid: this.takeXid(),
      type: OpCode.closeSession,
      frame: buildFrame(OpCode.closeSession, undefined, 16),
      onReply: () => end('closed'),
      onLoss: () => end('abandoned'),
    });
  }

  /** Entering a final state: no connection, no timers, every waiting request failed. */
  private finish(err: Error): void {
    this.clearExpiryTimer();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    const conn = this.conn;
    this.conn = null;
    conn?.close(err);
    this.overduePingsDone += conn?.overduePings ?? 0;
    const queued = this.outbox;
    this.outbox = [];
    for (const req of queued) this.settle(req, err);
    this.live.forEach((req) => this.settle(req, err));
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const a of this.auths) this.failAuth(a, err);
    this.authInflight = [];
    this.watches.clear();
  }

  /** Emits a state event; its arguments are ClientEvents[event] (session-state.ts builds them). */
  private emitSafe(event: keyof ClientEvents, args: readonly unknown[]): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (e) {
      this.reportListenerError(e);
    }
  }

  private reportListenerError(e: unknown): void {
    if (this.listenerCount('listenerError') > 0) {
      try {
        this.emit('listenerError', e);
        return;
      } catch {
        // fall through to the warning
      }
    }
    process.emitWarning(`zkwarden client: a listener threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  private strip(serverPath: string): string {
    return stripChroot(this.chroot, serverPath);
  }

  /**
   * Every operation goes through here: `build` encodes it (and throws InvalidArgumentError for a
   * bad argument), then the state decides whether it is sent, queued or refused.
   */
  private call<T>(
    op: string,
    build: () => OpRequest,
    decode: (header: ReplyHeader, r: JuteReader) => T,
    options: TimeoutOption,
    /** Turns an error code into a value (exists: NoNode -> null); undefined keeps the error. */
    recover?: (code: number) => { value: T } | undefined,
  ): Promise<T> {
    let r: OpRequest;
    let timeoutMs: number;
    try {
      r = build();
      timeoutMs = options.timeoutMs === undefined ? this.opts.requestTimeoutMs : checkMillis(options.timeoutMs, 'timeoutMs');
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const stateError = this.stateError(op, r.path);
    if (stateError) return Promise.reject(stateError);
    const frame = buildFrame(r.type, r, r.sizeHint + 12);
    if (frame.length - 4 > this.opts.maxPacketBytes) {
      return Promise.reject(new PacketTooLargeError(op, frame.length - 4, this.opts.maxPacketBytes, r.path));
    }
    const req = new Request<T>(this.owner, op, r.type, r.path, frame, decode, Date.now() + timeoutMs, timeoutMs, recover);
    const promise = new Promise<T>((resolve, reject) => {
      req.resolve = resolve;
      req.reject = reject;
    });
    this.live.add(req as Request<unknown>);
    if (this.sweeper === null) this.startSweeper();
    if (this.machine.state === 'connected' && this.conn?.isOpen) this.sendRequest(this.conn, req as Request<unknown>);
    else this.outbox.push(req as Request<unknown>);
    return promise;
  }

  /** One timer for all request deadlines, running only while requests are waiting. */
  private startSweeper(): void {
    const every = Math.max(10, Math.min(100, Math.floor(this.opts.requestTimeoutMs / 10)));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      this.live.forEach((req) => {
        if (req.deadline <= now) {
          this.settle(req, new OperationTimeoutError(req.path, `${req.op}: no reply within ${req.timeoutMs} ms (state ${this.machine.state})`));
        }
      });
      if (this.live.size === 0 && this.sweeper) {
        clearInterval(this.sweeper);
        this.sweeper = null;
      }
    }, every);
  }

  private stateError(op: string, path: string | undefined): Error | null {
    switch (this.machine.state) {
      case 'closing':
      case 'closed':
        return new ClientClosedError(op);
      case 'expired':
        return new SessionExpiredError(path);
      case 'authFailed':
        return new AuthFailedError(path);
      case 'idle':
        return new ConnectionLossError(path, `${op}: not connected; call connect() first`);
      default:
        return null;
    }
  }

  private takeXid(): number {
    const xid = this.nextXid;
    this.nextXid = this.nextXid >= 0x7ffffffe ? 1 : this.nextXid + 1;
    return xid;
  }

  private sendRequest(conn: Connection, req: Request<unknown>): void {
    req.xid = this.takeXid();
    conn.send(req);
  }

  private onReply(req: Request<unknown>, h: ReplyHeader, r: JuteReader): void {
    if (req.settled) return;
    if (h.err === ErrorCode.SESSION_CLOSED_REQUIRE_SASL_AUTH) {
      const err = errorFromCode(h.err, req.path, `${req.op}: the server enforces authentication and this connection has none it accepts`);
      this.settle(req, err);
      this.noteAuthRequired(err);
      return;
    }
    if (h.err !== 0) {
      const recovered = req.recover?.(h.err);
      if (recovered) this.succeed(req, recovered.value);
      else this.settle(req, errorFromCode(h.err, req.path, req.op));
      // The leader says the session is gone. A connection can outlive its session: a server
      // that receives a closeSession closes only the connection it came on, and followers
      // answer pings and reads without checking the session. The first write is where it
      // shows; from then on the session is over here too (refused by the table while closing).
      if (h.err === ErrorCode.SESSION_EXPIRED) this.machine.to({ to: 'expired', reason: 'server', sessionId: this._sessionId });
      return;
    }
    let value: unknown;
    try {
      value = req.decode(h, r);
    } catch (e) {
      this.settle(req, e instanceof JuteDecodeError || e instanceof ZooKeeperError ? e : new Error(String(e)));
      return;
    }
    this.succeed(req, value);
  }

  private succeed(req: Request<unknown>, value: unknown): void {
    req.settled = true;
    this.live.delete(req);
    req.resolve(value);
  }

  private settle(req: Request<unknown>, err: Error): void {
    if (req.settled) return;
    req.settled = true;
    this.live.delete(req);
    req.reject(err);
  }

  // -------------------------------------------------------------------------------------------
  // Watches and special replies

  private onNotification(ev: WatcherEvent, zxid: bigint): void {
    if (zxid > this._lastZxid) this._lastZxid = zxid;
    const type = eventTypeNames.get(ev.type);
    if (!type) return; // state-only events (type None) carry nothing for watches
    const event = { type, path: this.strip(ev.path) };
    for (const l of this.watches.dispatch(event)) {
      try {
        l(event);
      } catch (e) {
        this.reportListenerError(e);
      }
    }
  }

  private onSpecialReply(h: ReplyHeader, _r: JuteReader): void {
    if (h.err === ErrorCode.SESSION_CLOSED_REQUIRE_SASL_AUTH) {
      this.noteAuthRequired(errorFromCode(h.err, undefined, 'the server enforces authentication and this connection has none it accepts'));
      return;
    }
    if (h.xid === Xid.auth) {
      const entry = this.authInflight.shift();
      if (h.err === 0) {
        if (entry) {
          const w = entry.waiters;
          entry.waiters = [];
          for (const x of w) x.resolve();
        }
        return;
      }
      // AUTH_FAILED: the server closes the connection; the client cannot go on.
      this.machine.to({ to: 'authFailed', scheme: entry?.scheme ?? '?' });
    }
    // setWatches replies carry nothing; the events the server owes arrive as notifications.
  }

  private sendAuth(conn: Connection, a: AuthEntry): void {
    this.authInflight.push(a);
    conn.sendSpecial(
      Xid.auth,
      buildFrame(OpCode.auth, (w) => writeAuthPacket(w, a.scheme, a.auth)),
    );
  }

  private failAuth(a: AuthEntry, err: Error): void {
    const w = a.waiters;
    a.waiters = [];
    for (const x of w) x.reject(err);
  }

  private sendSetWatches(conn: Connection): void {
    const p = this.watches.paths();
    const tables: WatchTable[] = ['data', 'exist', 'child', 'persistent', 'persistentRecursive'];
    if (tables.every((t) => p[t].length === 0)) return;
    const persistent = p.persistent.length + p.persistentRecursive.length > 0;
    // Batches of at most SET_WATCHES_BATCH bytes of paths, like the Java client.
    let batch: Record<WatchTable, string[]> = { data: [], exist: [], child: [], persistent: [], persistentRecursive: [] };
    let size = 0;
    const flush = (): void => {
      const b = batch;
      conn.sendSpecial(
        Xid.setWatches,
        buildFrame(persistent ? OpCode.setWatches2 : OpCode.setWatches, (w) => {
          const s = {
            relativeZxid: this._lastZxid,
            dataWatches: b.data,
            existWatches: b.exist,
            childWatches: b.child,
            persistentWatches: b.persistent,
            persistentRecursiveWatches: b.persistentRecursive,
          };
          if (persistent) writeSetWatches2(w, s);
          else writeSetWatches(w, s);
        }),
      );
      batch = { data: [], exist: [], child: [], persistent: [], persistentRecursive: [] };
      size = 0;
    };
    for (const t of tables) {
      for (const path of p[t]) {
        const sp = chrootPath(this.chroot, path);
        if (size + sp.length + 4 > SET_WATCHES_BATCH && size > 0) flush();
        batch[t].push(sp);
        size += sp.length + 4;
      }
    }
    if (size > 0) flush();
  }

  // -------------------------------------------------------------------------------------------
  // Operations

  /**
   * Creates a node. Sequential modes append a 10-digit counter; the returned path is the real
   * one. Container nodes are deleted by the server once their last child goes; TTL nodes once
   * they have had no change and no children for ttlMs (the servers need extended types).
   */
  create(path: string, data?: Data, options: CreateOptions = {}): Promise<{ path: string; stat: Stat }> {
    return this.call('create', () => createRequest(this.chroot, path, data, options), this.decodeCreate, options);
  }

  /**
   * Whether a watching read must ask the server for a watch. A 3.8 server keeps one watch mode
   * per path and connection: a one-shot watch set on a path with a persistent watch would turn
   * that watch back into a one-shot one. A persistent watch on the path already delivers every
   * event a one-shot watch wants, so the one-shot listener is recorded locally only. A recursive
   * watch does not deliver childrenChanged, and cannot share its path with a child watch.
   */
  private needsServerWatch(path: string, watch: WatchListener | undefined, table: 'data' | 'child'): boolean {
    if (watch === undefined) return false;
    if (this.watches.has('persistent', path)) return false;
    if (this.watches.has('persistentRecursive', path)) {
      if (table === 'data') return false;
      throw new InvalidArgumentError(
        'watch',
        `${path} has a persistent-recursive watch, which sends no childrenChanged; a child watch on the same path would replace it on the server (one watch mode per path and connection)`,
      );
    }
    return true;
  }

  /** A watching read: the path checked first, then the watch combination. */
  private watchedRead(type: number, path: string, watch: WatchListener | undefined, table: 'data' | 'child'): OpRequest {
    validatePath(path);
    return readRequest(type, this.chroot, path, this.needsServerWatch(path, watch, table));
  }

  /** Deletes a node; version -1 matches any version. */
  delete(path: string, version = -1, options: TimeoutOption = {}): Promise<void> {
    return this.call('delete', () => deleteRequest(this.chroot, path, version), decodeNothing, options);
  }

  /** The node's Stat, or null if there is none. A watch fires on create, delete or data change. */
  exists(path: string, options: WatchOption = {}): Promise<Stat | null> {
    const watch = options.watch;
    return this.call<Stat | null>(
      'exists',
      () => this.watchedRead(OpCode.exists, path, watch, 'data'),
      watch
        ? (_h, r) => {
            const stat = readStat(r, 'ExistsResponse.stat');
            this.watches.add('data', path, watch);
            return stat;
          }
        : decodeExists,
      options,
      // No node is an answer, not an error; the server then holds an exist watch (the reply
      // order guarantees no event for it can have arrived before this reply).
      (code) => {
        if (code !== ErrorCode.NO_NODE) return undefined;
        if (watch) this.watches.add('exist', path, watch);
        return NULL_VALUE;
      },
    );
  }

  /** The node's data and Stat. A watch fires on data change or delete. */
  getData(path: string, options: WatchOption = {}): Promise<{ data: Buffer; stat: Stat }> {
    const watch = options.watch;
    return this.call(
      'getData',
      () => this.watchedRead(OpCode.getData, path, watch, 'data'),
      watch
        ? (_h, r) => {
            const res = readGetDataResponse(r);
            this.watches.add('data', path, watch);
            return res;
          }
        : decodeGetData,
      options,
    );
  }

  /** Sets the data if the version matches (-1: any). Returns the new Stat. */
  setData(path: string, data: Data, version = -1, options: TimeoutOption = {}): Promise<Stat> {
    return this.call('setData', () => setDataRequest(this.chroot, path, data, version), decodeSetData, options);
  }

  /** Child names (unsorted, as the server returns them) and the parent's Stat. A watch fires on child create/delete or parent delete. */
  getChildren(path: string, options: WatchOption = {}): Promise<{ children: string[]; stat: Stat }> {
    const watch = options.watch;
    return this.call(
      'getChildren',
      () => this.watchedRead(OpCode.getChildren2, path, watch, 'child'),
      (_h, r) => {
        const res = readGetChildren2Response(r);
        if (watch) this.watches.add('child', path, watch);
        return res;
      },
      options,
    );
  }

  getACL(path: string, options: TimeoutOption = {}): Promise<{ acl: ACL[]; stat: Stat }> {
    return this.call(
      'getACL',
      () => pathRequest(OpCode.getACL, this.chroot, path),
      (_h, r) => readGetACLResponse(r),
      options,
    );
  }

  /** Replaces the ACL if the ACL version (stat.aversion) matches (-1: any). */
  setACL(path: string, acl: readonly ACL[], version = -1, options: TimeoutOption = {}): Promise<Stat> {
    return this.call(
      'setACL',
      () => setACLRequest(this.chroot, path, acl, version),
      (_h, r) => readStat(r, 'SetACLResponse.stat'),
      options,
    );
  }

  /** Waits until the connected server has applied every write the leader committed before. */
  sync(path = '/', options: TimeoutOption = {}): Promise<string> {
    return this.call(
      'sync',
      () => pathRequest(OpCode.sync, this.chroot, path),
      (_h, r) => this.strip(r.readUString('SyncResponse.path')),
      options,
    );
  }

  /**
   * A transaction: every op is applied, or none. On failure throws MultiError with the index
   * of the failing op and every op's result (0 for ops that would have succeeded).
   */
  async multi(ops: readonly Op[], options: TimeoutOption = {}): Promise<OpResult[]> {
    const results = await this.call(
      'multi',
      () => multiRequest(this.chroot, ops),
      (_h, r) => readMultiResponse(r, ops.length),
      options,
    );
    const mapped = results.map((res) => (res.op === 'create' ? { ...res, path: this.strip(res.path) } : res));
    const failed = mapped.findIndex((res) => res.op === 'error' && res.code !== 0);
    if (failed >= 0) {
      const code = (mapped[failed] as { code: number }).code;
      throw new MultiError(failed, errorFromCode(code, ops[failed]?.path, `multi op ${failed} (${ops[failed]?.op})`), mapped);
    }
    return mapped;
  }

  /**
   * Several reads in one round trip, from one consistent view of the server. Each op fails on
   * its own: a missing node gives { op: 'error', code } in its slot, the others still answer.
   */
  multiRead(ops: readonly ReadOp[], options: TimeoutOption = {}): Promise<OpResult[]> {
    return this.call(
      'multiRead',
      () => multiReadRequest(this.chroot, ops),
      (_h, r) => readMultiResponse(r, ops.length),
      options,
    );
  }

  /** Paths of this session's ephemeral nodes under prefixPath. */
  getEphemerals(prefixPath = '/', options: TimeoutOption = {}): Promise<string[]> {
    return this.call(
      'getEphemerals',
      () => pathRequest(OpCode.getEphemerals, this.chroot, prefixPath, 'prefixPath'),
      (_h, r) => readStringVector(r, 'GetEphemeralsResponse.ephemerals').map((p) => this.strip(p)),
      options,
    );
  }

  /** Number of all descendants of path (not counting path). */
  getAllChildrenNumber(path: string, options: TimeoutOption = {}): Promise<number> {
    return this.call(
      'getAllChildrenNumber',
      () => pathRequest(OpCode.getAllChildrenNumber, this.chroot, path),
      (_h, r) => r.readInt('GetAllChildrenNumberResponse.totalNumber'),
      options,
    );
  }

  /** The identities the server has attached to this session (ip, digest users, ...). */
  whoAmI(options: TimeoutOption = {}): Promise<ClientInfo[]> {
    return this.call(
      'whoAmI',
      () => ({ ...NO_BODY, type: OpCode.whoAmI }),
      (_h, r) => readWhoAmIResponse(r),
      options,
    );
  }

  /**
   * Adds a credential to the session (e.g. 'digest', 'user:password'). It is kept and re-sent
   * after every reconnect. Resolves once the server accepted it; an unknown scheme or a
   * rejected credential moves the client to authFailed.
   */
  async addAuth(scheme: string, auth: string | Buffer, options: TimeoutOption = {}): Promise<void> {
    if (typeof scheme !== 'string' || scheme === '') throw new InvalidArgumentError('scheme', 'expected a non-empty scheme name');
    const buf = toBuffer(auth, 'auth') ?? Buffer.alloc(0);
    const timeoutMs = options.timeoutMs === undefined ? this.opts.requestTimeoutMs : checkMillis(options.timeoutMs, 'timeoutMs');
    const stateError = this.stateError('addAuth', undefined);
    if (stateError) throw stateError;
    let entry = this.auths.find((a) => a.scheme === scheme && a.auth.equals(buf));
    const fresh = !entry;
    if (!entry) {
      entry = { scheme, auth: buf, waiters: [] };
      this.auths.push(entry);
    }
    const e = entry;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        e.waiters = e.waiters.filter((x) => x !== waiter);
        reject(new OperationTimeoutError(undefined, `addAuth ${scheme}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      e.waiters.push(waiter);
    });
    // A credential already known was sent on connect; sending it again costs one packet and
    // gives the caller a reply to wait for.
    if (this.machine.state === 'connected' && this.conn?.isOpen && (fresh || !this.authInflight.includes(e))) this.sendAuth(this.conn, e);
    return done;
  }

  /**
   * A watch that stays until removed: 'persistent' sees every event on path (including
   * childrenChanged); 'persistent_recursive' sees created/deleted/dataChanged on path and every
   * descendant. Re-registered on reconnect; events during a disconnection are not replayed.
   */
  addWatch(path: string, mode: AddWatchModeName, listener: WatchListener, options: TimeoutOption = {}): Promise<void> {
    const table: WatchTable = mode === 'persistent' ? 'persistent' : 'persistentRecursive';
    return this.call(
      'addWatch',
      () => {
        validatePath(path);
        const m = checkAddWatchMode(mode);
        const otherTable: WatchTable = m === 'persistent' ? 'persistentRecursive' : 'persistent';
        if (this.watches.has(otherTable, path) || (m === 'persistent_recursive' && this.watches.has('child', path))) {
          throw new InvalidArgumentError(
            'mode',
            `${path} already has a ${this.watches.has(otherTable, path) ? otherTable : 'child'} watch; the server keeps one watch mode per path and connection`,
          );
        }
        return pathIntRequest(OpCode.addWatch, this.chroot, path, AddWatchMode[m]);
      },
      () => {
        this.watches.add(table, path, listener);
      },
      options,
    );
  }

  /**
   * Removes watches of a kind ('data' covers data and exist watches) from path: only `listener`
   * if given, else all. The server is asked to drop its watch only when no listener of that
   * kind is left (with `local: true` it is not asked at all, e.g. while disconnected). Each
   * removed listener receives a dataWatchRemoved / childWatchRemoved / persistentWatchRemoved
   * event. Throws NoWatcherError when nothing matched.
   */
  async removeWatches(path: string, kind: WatcherKind = 'any', listener?: WatchListener, options: TimeoutOption & { local?: boolean } = {}): Promise<void> {
    validatePath(path);
    checkWatcherKind(kind);
    const tables = tablesOf(kind);
    if (!tables.some((t) => this.watches.has(t, path, listener))) throw new NoWatcherError(path);
    const removed: { l: WatchListener; type: WatchEventType }[] = [];
    for (const t of tables) {
      const type: WatchEventType = t === 'child' ? 'childWatchRemoved' : t === 'data' || t === 'exist' ? 'dataWatchRemoved' : 'persistentWatchRemoved';
      for (const l of this.watches.remove(t, path, listener)) removed.push({ l, type });
    }
    if (!options.local) {
      // The server (3.8) keeps one watch per path and connection, whose data and child parts
      // removeWatches can drop (types 1, 2, 3). Ask it only for what no local listener needs
      // any more; a remaining persistent watch lives in both parts, so then nothing is sent and
      // the events for the removed listeners are simply not delivered.
      const gone = (ts: WatchTable[]): boolean => ts.every((t) => !this.watches.has(t, path));
      let serverKind: WatcherKind | null = null;
      if (gone(tablesOf('any'))) serverKind = 'any';
      else if (gone(['persistent', 'persistentRecursive'])) {
        if (kind === 'data' && gone(['data', 'exist'])) serverKind = 'data';
        if (kind === 'children' && gone(['child'])) serverKind = 'children';
      }
      if (serverKind) {
        const t = WatcherType[serverKind];
        try {
          await this.call('removeWatches', () => pathIntRequest(OpCode.removeWatches, this.chroot, path, t), decodeNothing, options);
        } catch (e) {
          // The server may have fired (and so dropped) its watch in the meantime.
          if (!(e instanceof ZooKeeperError && e.code === ErrorCode.NO_WATCHER)) throw e;
        }
      }
    }
    for (const { l, type } of removed) {
      try {
        l({ type, path });
      } catch (e) {
        this.reportListenerError(e);
      }
    }
  }

  /** Resolves if this client and the server both hold a watch of this kind on path; else NoWatcherError. */
  checkWatches(path: string, kind: WatcherKind = 'any', options: TimeoutOption = {}): Promise<void> {
    return this.call(
      'checkWatches',
      () => {
        validatePath(path);
        checkWatcherKind(kind);
        if (!tablesOf(kind).some((t) => this.watches.has(t, path))) throw new NoWatcherError(path);
        // 3.8 servers know the types children, data and any; a persistent watch is in both parts.
        const t = kind === 'persistent' || kind === 'persistentRecursive' ? WatcherType.any : WatcherType[kind];
        return pathIntRequest(OpCode.checkWatches, this.chroot, path, t);
      },
      decodeNothing,
      options,
    );
  }

  /** Number of watched paths per table (for tests and diagnostics). */
  watchCount(): number {
    return this.watches.size;
  }
}

function tablesOf(kind: WatcherKind): WatchTable[] {
  switch (kind) {
    case 'data':
      return ['data', 'exist'];
    case 'children':
      return ['child'];
    case 'persistent':
      return ['persistent'];
    case 'persistentRecursive':
      return ['persistentRecursive'];
    case 'any':
      return ['data', 'exist', 'child', 'persistent', 'persistentRecursive'];
  }
}

/** `createClient('h1:2181,h2:2181/chroot', { sessionTimeoutMs: 4000 })`; call connect() next. */
export function createClient(connectString: string, options: ClientOptions = {}): ZooKeeperClient {
  return new ZooKeeperClient(connectString, options);
}
