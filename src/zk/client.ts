/**
 * ZooKeeperClient: the session over a changing sequence of connections.
 *
 * State model (docs/client.md draws it):
 *   idle --connect()--> connecting --handshake--> connected
 *   connected --connection lost--> suspended --handshake on any server--> connected ('reconnected')
 *   suspended --server says the session is gone / session timeout passed without contact--> expired
 *   any --close()--> closed;  auth rejected --> authFailed
 * expired, closed and authFailed are final: open a new client (or hand the session over).
 *
 * Requests made while suspended wait in an outbox and go out after the reconnect, within their
 * own timeout. Requests in flight when a connection drops fail with ConnectionLossError: they may
 * or may not have been applied, and only the caller knows whether retrying is safe.
 */
import { EventEmitter } from 'node:events';
import { JuteDecodeError, type JuteReader, type JuteWriter } from './jute.ts';
import { OPEN_ACL_UNSAFE, readStat, type ACL, type Stat } from './records.ts';
import { Connection, buildFrame, type Packet } from './connection.ts';
import {
  AddWatchMode,
  CreateFlag,
  EventType,
  OpCode,
  WatcherType,
  Xid,
  createOpCode,
  isTtlMode,
  readCreate2Response,
  readGetACLResponse,
  readGetChildren2Response,
  readGetDataResponse,
  readMultiResponse,
  readStringVector,
  readWhoAmIResponse,
  writeAuthPacket,
  writeCreateRequest,
  writeCreateTTLRequest,
  writeMultiEnd,
  writeMultiHeader,
  writePath,
  writePathInt,
  writePathVersion,
  writePathWatch,
  writeSetACLRequest,
  writeSetDataRequest,
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
  SessionClosedRequireSaslAuthError,
  SessionExpiredError,
  ZooKeeperError,
  errorFromCode,
} from './errors.ts';
import { WatchManager, type WatchListener, type WatchTable } from './watches.ts';
import { PreparedTls, type TlsOptions } from './transport.ts';
import { digestMd5Factory, type DigestMd5Credentials, type SaslMechanism } from './sasl.ts';
import { parseConnectString, validatePath, type ServerAddress } from './paths.ts';

export type ClientState = 'idle' | 'connecting' | 'connected' | 'suspended' | 'expired' | 'authFailed' | 'closed';

export interface ClientOptions {
  /** Requested session timeout; the server clamps it to [2, 20] x tickTime. Default 10 000. */
  sessionTimeoutMs?: number;
  /** Per server: TCP connect plus session handshake. Default: session timeout / number of servers (at least 250). */
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
  /** TLS to the servers' secureClientPort (every connection, reconnects included). See transport.ts. */
  tls?: TlsOptions;
  /** SASL DIGEST-MD5, done on every connection before any request; a refused credential moves the client to authFailed. */
  sasl?: DigestMd5Credentials;
}

export interface ConnectedInfo {
  sessionId: bigint;
  server: string;
  readOnly: boolean;
  timeoutMs: number;
}

export type ExpiryReason = 'server' | 'local';

export interface ClientEvents {
  connected: [info: ConnectedInfo];
  suspended: [info: { server: string; reason: Error }];
  reconnected: [info: ConnectedInfo];
  expired: [info: { reason: ExpiryReason; sessionId: bigint }];
  closed: [];
  /** `error`: what the server refused (AuthFailedError, or SessionClosedRequireSaslAuthError where authentication is enforced). */
  authFailed: [info: { scheme: string; error?: Error }];
  /** A watch listener or event handler threw; the client carries on. */
  listenerError: [err: unknown];
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
  /** Required for the TTL modes: the node goes once it has had no children and no change for this long. */
  ttlMs?: number;
}

export type Data = Uint8Array | string | null | undefined;

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

interface AuthEntry {
  scheme: string;
  auth: Buffer;
  waiters: { resolve(): void; reject(e: Error): void }[];
}

const DEFAULT_MAX_PACKET = 0xfffff;
/** setWatches batches stay well under any packet limit (ClientCnxn uses 128 KiB too). */
const SET_WATCHES_BATCH = 128 * 1024;

function toBuffer(d: Data): Buffer | null {
  if (d === null || d === undefined) return null;
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** The error for a bad version argument, or undefined. */
function checkVersion(version: number, argument = 'version'): InvalidArgumentError | undefined {
  if (!Number.isInteger(version) || version < -1 || version > 0x7fffffff) {
    return new InvalidArgumentError(argument, `expected an integer from -1 (any) to 2^31-1, got ${version}`);
  }
  return undefined;
}

/** validatePath as a value, for operations that report bad arguments as rejections. */
function checkPath(path: string, argument = 'path', sequential = false): InvalidArgumentError | undefined {
  try {
    validatePath(path, argument, sequential);
    return undefined;
  } catch (e) {
    return e as InvalidArgumentError;
  }
}

// Decoders without per-request state, shared by every request.
const decodeNothing = (): void => undefined;
const decodeExists = (_h: ReplyHeader, r: JuteReader): Stat => readStat(r, 'ExistsResponse.stat');
const decodeGetData = (_h: ReplyHeader, r: JuteReader): { data: Buffer; stat: Stat } => readGetDataResponse(r);
const decodeSetData = (_h: ReplyHeader, r: JuteReader): Stat => readStat(r, 'SetDataResponse.stat');

const eventTypeNames = new Map<number, WatchEventType>(
  (Object.entries(EventType) as [keyof typeof EventType, number][])
    .filter(([k]) => k !== 'none')
    .map(([k, v]) => [v, k as WatchEventType]),
);

export class ZooKeeperClient extends EventEmitter<ClientEvents> {
  readonly servers: readonly ServerAddress[];
  readonly chroot: string;
  private readonly opts: Required<Omit<ClientOptions, 'sessionId' | 'sessionPassword' | 'connectTimeoutMs' | 'auth' | 'tls' | 'sasl'>> & {
    connectTimeoutMs: number;
  };
  private _state: ClientState = 'idle';
  private conn: Connection | null = null;
  private _sessionId = 0n;
  private passwd: Buffer = Buffer.alloc(16);
  private negotiatedTimeout = 0;
  private _readOnly = false;
  private _lastZxid = 0n;
  private nextXid = 1;
  private hostIndex = 0;
  private outbox: Request<unknown>[] = [];
  private readonly watches = new WatchManager();
  private readonly auths: AuthEntry[] = [];
  private authInflight: AuthEntry[] = [];
  private expiryTimer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  /** Requests not yet settled (queued or in flight), for the deadline sweeper. */
  private readonly live = new Set<Request<unknown>>();
  private sweeper: NodeJS.Timeout | null = null;
  private readonly owner: RequestOwner = {
    replyTo: (req, h, r) => this.onReply(req, h, r),
    fail: (req, err) => this.settle(req, err),
  };
  private everConnected = false;
  private readonly tls: PreparedTls | undefined;
  /** A new mechanism per connection; the credential lives only in this closure. */
  private readonly sasl: (() => SaslMechanism) | undefined;
  /** A connection on which the server answered SESSIONCLOSEDREQUIRESASLAUTH, and that answer. */
  private authRequired: { conn: Connection; error: Error } | null = null;
  /** Why the last connection attempt failed, for the connect timeout's message. */
  private lastConnectError: Error | null = null;
  /** When the last byte came from any server (for local expiry). */
  private lastContact = Date.now();

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
    const sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    if (!Number.isInteger(sessionTimeoutMs) || sessionTimeoutMs <= 0) {
      throw new InvalidArgumentError('sessionTimeoutMs', `expected a positive integer, got ${sessionTimeoutMs}`);
    }
    this.opts = {
      sessionTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? Math.max(250, Math.floor(sessionTimeoutMs / servers.length)),
      requestTimeoutMs: options.requestTimeoutMs ?? sessionTimeoutMs,
      readOnly: options.readOnly ?? false,
      maxPacketBytes: options.maxPacketBytes ?? DEFAULT_MAX_PACKET,
      shuffleServers: options.shuffleServers ?? true,
      localExpiry: options.localExpiry ?? true,
    };
    if ((options.sessionId === undefined) !== (options.sessionPassword === undefined)) {
      throw new InvalidArgumentError('sessionId', 'a session hand-over needs both sessionId and sessionPassword');
    }
    if (options.sessionId !== undefined && options.sessionPassword !== undefined) {
      this._sessionId = options.sessionId;
      this.passwd = Buffer.from(options.sessionPassword);
    }
    for (const a of options.auth ?? []) this.auths.push({ scheme: a.scheme, auth: toBuffer(a.auth) ?? Buffer.alloc(0), waiters: [] });
    this.tls = options.tls ? new PreparedTls(options.tls) : undefined;
    this.sasl = options.sasl === undefined ? undefined : digestMd5Factory(options.sasl);
  }

  // -------------------------------------------------------------------------------------------
  // Session

  get state(): ClientState {
    return this._state;
  }

  /** 0n until the first handshake (or the hand-over id). */
  get sessionId(): bigint {
    return this._sessionId;
  }

  /** A copy: whoever holds id and password can resume or close the session. */
  get sessionPassword(): Buffer {
    return Buffer.from(this.passwd);
  }

  /** The timeout the server granted (0 before the first handshake). */
  get sessionTimeoutMs(): number {
    return this.negotiatedTimeout;
  }

  /** host:port of the current connection, or null. */
  get server(): string | null {
    return this._state === 'connected' && this.conn ? this.conn.server : null;
  }

  get readOnly(): boolean {
    return this._readOnly;
  }

  /**
   * When a byte last arrived from a server (epoch ms): how stale this client's view of its
   * session is. A guard can compare it with sessionTimeoutMs without waiting for events.
   */
  get lastContactAt(): number {
    return this._state === 'connected' && this.conn ? Math.max(this.lastContact, this.conn.lastReceiveTime) : this.lastContact;
  }

  /** The newest zxid seen in any reply. */
  get lastZxid(): bigint {
    return this._lastZxid;
  }

  /**
   * Connects and resolves once a session is established (new, or the handed-over one).
   * Rejects with SessionExpiredError if a handed-over session no longer exists, with
   * OperationTimeoutError (and closes the client) if no server answers within timeoutMs.
   */
  connect(options: TimeoutOption = {}): Promise<ConnectedInfo> {
    if (this._state === 'connected' && this.conn) return Promise.resolve(this.connectedInfo(this.conn));
    if (this._state === 'closed') return Promise.reject(new ClientClosedError('connect'));
    if (this._state === 'expired') return Promise.reject(new SessionExpiredError());
    if (this._state === 'authFailed') return Promise.reject(new AuthFailedError());
    const timeoutMs = options.timeoutMs ?? Math.max(this.opts.sessionTimeoutMs, this.opts.connectTimeoutMs * this.servers.length);
    return new Promise<ConnectedInfo>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('connected', onConnected);
        this.off('reconnected', onConnected);
        this.off('expired', onExpired);
        this.off('authFailed', onAuthFailed);
        this.off('closed', onClosed);
      };
      const onConnected = (info: ConnectedInfo): void => {
        cleanup();
        resolve(info);
      };
      const onExpired = (): void => {
        cleanup();
        reject(new SessionExpiredError(undefined, `session ${this.sessionHex()} no longer exists`));
      };
      const onAuthFailed = ({ scheme, error }: { scheme: string; error?: Error }): void => {
        cleanup();
        reject(error ?? new AuthFailedError(undefined, `scheme ${scheme}`));
      };
      const onClosed = (): void => {
        cleanup();
        reject(new ClientClosedError('connect'));
      };
      const timer = setTimeout(() => {
        cleanup();
        const tried = this.servers.map((s) => `${s.host}:${s.port}`).join(', ');
        const last = this.lastConnectError ? `; last error: ${this.lastConnectError.message}` : '';
        reject(new OperationTimeoutError(undefined, `no session with any of ${tried} within ${timeoutMs} ms${last}`));
        void this.close();
      }, timeoutMs);
      this.on('connected', onConnected);
      this.on('reconnected', onConnected);
      this.on('expired', onExpired);
      this.on('authFailed', onAuthFailed);
      this.on('closed', onClosed);
      if (this._state === 'idle') {
        this._state = 'connecting';
        this.startLoop();
      }
    });
  }

  /**
   * Ends the session (closeSession: the server deletes its ephemerals at once) and the
   * connection. Requests still waiting fail with ClientClosedError. Idempotent.
   */
  async close(options: TimeoutOption = {}): Promise<void> {
    this.closePromise ??= this.doClose(options.timeoutMs ?? Math.min(this.opts.requestTimeoutMs, 5000));
    return this.closePromise;
  }

  private async doClose(timeoutMs: number): Promise<void> {
    if (this._state === 'closed') return;
    const deadline = Date.now() + timeoutMs;
    if (this._state === 'suspended') {
      // Ending the session is the point of close() (a watchdog closing a handed-over session
      // relies on it): give the reconnect a chance within the same timeout.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.off('reconnected', done);
          this.off('expired', done);
          resolve();
        };
        const t = setTimeout(done, timeoutMs);
        this.on('reconnected', done);
        this.on('expired', done);
      });
    }
    this.closing = true;
    const conn = this.conn;
    if (this._state === 'connected' && conn?.isOpen) {
      try {
        await this.submit('closeSession', OpCode.closeSession, undefined, undefined, () => undefined, {
          timeoutMs: Math.max(1, deadline - Date.now()),
          direct: true,
        });
      } catch {
        // The session ends on the server anyway once it times out; close() must not throw.
      }
    }
    if (this._state === 'expired' || this._state === 'authFailed') {
      this._state = 'closed';
      this.emitSafe('closed');
      return;
    }
    this.finish('closed', new ClientClosedError('request'));
    this.emitSafe('closed');
  }

  private sessionHex(): string {
    return `0x${BigInt.asUintN(64, this._sessionId).toString(16)}`;
  }

  private connectedInfo(conn: Connection): ConnectedInfo {
    return { sessionId: this._sessionId, server: conn.server, readOnly: this._readOnly, timeoutMs: this.negotiatedTimeout };
  }

  private startLoop(): void {
    if (this.loop) return;
    this.loop = this.connectLoop().finally(() => {
      this.loop = null;
      // The new connection may have died before the loop returned (its close handler could
      // not start a second loop while this one ran): go on seeking.
      if (this.seeking && !this.conn) this.startLoop();
    });
  }

  private get seeking(): boolean {
    return (this._state === 'connecting' || this._state === 'suspended') && !this.closing;
  }

  /** Tries the servers in turn until one grants the session (or the session is gone). */
  private async connectLoop(): Promise<void> {
    let failuresInRound = 0;
    while (this.seeking) {
      const addr = this.servers[this.hostIndex % this.servers.length];
      this.hostIndex = (this.hostIndex + 1) % this.servers.length;
      let opened: { conn: Connection; response: ConnectResponse };
      try {
        opened = await Connection.open({
          host: addr.host,
          port: addr.port,
          connectTimeoutMs: this.opts.connectTimeoutMs,
          maxIncomingBytes: this.opts.maxPacketBytes + 64 * 1024,
          request: {
            protocolVersion: 0,
            lastZxidSeen: this._lastZxid,
            timeOut: this.opts.sessionTimeoutMs,
            sessionId: this._sessionId,
            passwd: this.passwd,
            readOnly: this.opts.readOnly,
          },
          tls: this.tls,
          sasl: this.sasl,
        });
      } catch (e) {
        this.lastConnectError = e as Error;
        if (e instanceof AuthFailedError || e instanceof SessionClosedRequireSaslAuthError) {
          // The server refused the SASL credential: every server would (they share the JAAS set-up).
          if (this.seeking) this.authRefused('sasl', e);
          return;
        }
        failuresInRound++;
        if (failuresInRound >= this.servers.length) {
          failuresInRound = 0;
          // A whole round failed: back off a little so a down ensemble is not hammered.
          await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 200)));
        }
        continue;
      }
      const { conn, response } = opened;
      if (!this.seeking) {
        conn.close(new ClientClosedError('connect'));
        return;
      }
      if (!conn.isOpen) continue;
      if (response.timeOut <= 0) {
        // The server no longer knows the session (expired, closed by another holder, or a
        // wrong password): it is gone for good.
        conn.close(new SessionExpiredError());
        this.expire('server');
        return;
      }
      if (response.readOnly && !this.opts.readOnly) {
        conn.close(new ConnectionLossError(undefined, `${conn.server} is read-only`));
        continue;
      }
      this.onHandshake(conn, response);
      return;
    }
  }

  private onHandshake(conn: Connection, response: ConnectResponse): void {
    const reconnect = this.everConnected;
    this.conn = conn;
    this._sessionId = response.sessionId;
    this.passwd = Buffer.from(response.passwd);
    this.negotiatedTimeout = response.timeOut;
    this._readOnly = response.readOnly;
    this.lastContact = Date.now();
    this.clearExpiryTimer();
    this._state = 'connected';
    this.everConnected = true;
    conn.start(
      {
        onNotification: (ev, zxid) => this.onNotification(ev, zxid),
        onSpecialReply: (h, r) => this.onSpecialReply(h, r),
        onZxid: (z) => {
          if (z > this._lastZxid) this._lastZxid = z;
        },
        onClose: (reason) => this.onConnectionClosed(conn, reason),
      },
      Math.floor((response.timeOut * 2) / 3),
    );
    if (!conn.isOpen) return;
    // Credentials first: the server applies auth packets as they arrive, ahead of queued requests.
    for (const a of this.auths) this.sendAuth(conn, a);
    this.sendSetWatches(conn);
    const queued = this.outbox;
    this.outbox = [];
    for (const req of queued) if (!req.settled) this.sendRequest(conn, req);
    this.emitSafe(reconnect ? 'reconnected' : 'connected', this.connectedInfo(conn));
  }

  private onConnectionClosed(conn: Connection, reason: Error): void {
    if (conn !== this.conn) return;
    this.lastContact = Math.max(this.lastContact, conn.lastReceiveTime);
    this.conn = null;
    for (const a of this.authInflight) this.failAuth(a, new ConnectionLossError(undefined, reason.message));
    this.authInflight = [];
    const required = this.authRequired;
    this.authRequired = null;
    // The server said it requires authentication and closed the connection (what
    // AuthenticationHelper does): every reconnect would end the same way.
    if (required?.conn === conn && !(reason instanceof ProtocolError) && !this.closing) {
      this.authRefused(this.sasl ? 'sasl' : 'none', required.error);
      return;
    }
    if (this._state !== 'connected' || this.closing) return;
    this._state = 'suspended';
    this.emitSafe('suspended', { server: conn.server, reason });
    if (this.opts.localExpiry && this._state === 'suspended') {
      const left = this.negotiatedTimeout - (Date.now() - this.lastContact);
      this.expiryTimer = setTimeout(() => {
        this.expiryTimer = null;
        if (this._state === 'suspended') this.expire('local');
      }, Math.max(0, left));
    }
    if (this._state === 'suspended') this.startLoop();
  }

  private clearExpiryTimer(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
  }

  private expire(reason: ExpiryReason): void {
    if (this._state === 'expired' || this._state === 'closed') return;
    const id = this._sessionId;
    this.finish('expired', new SessionExpiredError(undefined, `session 0x${BigInt.asUintN(64, id).toString(16)}`));
    this.emitSafe('expired', { reason, sessionId: id });
  }

  /** Moves to a final state: no connection, no timers, every waiting request failed. */
  private finish(state: 'expired' | 'closed' | 'authFailed', err: Error): void {
    this._state = state;
    this.clearExpiryTimer();
    const conn = this.conn;
    this.conn = null;
    conn?.close(err);
    const queued = this.outbox;
    this.outbox = [];
    for (const req of queued) this.settle(req, err);
    for (const req of [...this.live]) this.settle(req, err);
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const a of this.auths) this.failAuth(a, err);
    this.authInflight = [];
    this.watches.clear();
  }

  private emitSafe<K extends keyof ClientEvents>(event: K, ...args: ClientEvents[K]): void {
    try {
      // The generic EventEmitter cannot relate K to its argument tuple here; the signature above does.
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

  private prefix(path: string): string {
    if (this.chroot === '') return path;
    return path === '/' ? this.chroot : this.chroot + path;
  }

  /** A server path back to the caller's (chroot removed). */
  private strip(serverPath: string): string {
    if (this.chroot === '') return serverPath;
    if (serverPath === this.chroot) return '/';
    if (serverPath.startsWith(this.chroot + '/')) return serverPath.slice(this.chroot.length);
    return serverPath;
  }

  private submit<T>(
    op: string,
    type: number,
    path: string | undefined,
    body: ((w: JuteWriter) => void) | undefined,
    decode: (header: ReplyHeader, r: JuteReader) => T,
    options: TimeoutOption & { sizeHint?: number; direct?: boolean; recover?: (code: number) => { value: T } | undefined } = {},
  ): Promise<T> {
    const stateError = this.stateError(op, path);
    if (stateError && !(options.direct && this._state === 'connected')) return Promise.reject(stateError);
    const frame = buildFrame(type, body, options.sizeHint);
    if (frame.length - 4 > this.opts.maxPacketBytes) {
      return Promise.reject(new PacketTooLargeError(op, frame.length - 4, this.opts.maxPacketBytes, path));
    }
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs;
    const req = new Request<T>(this.owner, op, type, path, frame, decode, Date.now() + timeoutMs, timeoutMs, options.recover);
    const promise = new Promise<T>((resolve, reject) => {
      req.resolve = resolve;
      req.reject = reject;
    });
    this.live.add(req as Request<unknown>);
    if (this.sweeper === null) this.startSweeper();
    if (this._state === 'connected' && this.conn?.isOpen) this.sendRequest(this.conn, req as Request<unknown>);
    else this.outbox.push(req as Request<unknown>);
    return promise;
  }

  /** One timer for all request deadlines, running only while requests are waiting. */
  private startSweeper(): void {
    const every = Math.max(10, Math.min(100, Math.floor(this.opts.requestTimeoutMs / 10)));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const req of this.live) {
        if (req.deadline <= now) {
          this.settle(req, new OperationTimeoutError(req.path, `${req.op}: no reply within ${req.timeoutMs} ms (state ${this._state})`));
        }
      }
      if (this.live.size === 0 && this.sweeper) {
        clearInterval(this.sweeper);
        this.sweeper = null;
      }
    }, every);
  }

  private stateError(op: string, path: string | undefined): Error | null {
    if (this.closing || this._state === 'closed') return new ClientClosedError(op);
    switch (this._state) {
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

  private sendRequest(conn: Connection, req: Request<unknown>): void {
    req.xid = this.nextXid;
    this.nextXid = this.nextXid >= 0x7ffffffe ? 1 : this.nextXid + 1;
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
      // shows; from then on the session is over here too.
      if (h.err === ErrorCode.SESSION_EXPIRED && !this.closing) this.expire('server');
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
      const scheme = entry?.scheme ?? '?';
      this.finish('authFailed', new AuthFailedError(undefined, `scheme ${scheme}`));
      this.emitSafe('authFailed', { scheme });
    }
    // setWatches replies carry nothing; the events the server owes arrive as notifications.
  }

  /**
   * The server refused this client's authentication (a bad SASL credential, or none where one is
   * enforced): final, like a refused addAuth. The server closes the connection itself.
   */
  private noteAuthRequired(err: Error): void {
    if (this.conn) this.authRequired = { conn: this.conn, error: err };
  }

  private authRefused(scheme: string, err: Error): void {
    if (this._state === 'authFailed' || this._state === 'closed') return;
    this.finish('authFailed', err);
    this.emitSafe('authFailed', { scheme, error: err });
  }

  private sendAuth(conn: Connection, a: AuthEntry): void {
    this.authInflight.push(a);
    conn.sendSpecial(Xid.auth, buildFrame(OpCode.auth, (w) => writeAuthPacket(w, a.scheme, a.auth)));
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
        const sp = this.prefix(path);
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
    try {
      return this.createUnchecked(path, data, options);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  private createUnchecked(path: string, data: Data, options: CreateOptions): Promise<{ path: string; stat: Stat }> {
    const mode = options.mode ?? 'persistent';
    if (!(mode in CreateFlag)) throw new InvalidArgumentError('mode', `unknown create mode ${String(mode)}`);
    validatePath(path, 'path', mode.includes('sequential'));
    const ttl = this.checkTtl(mode, options.ttlMs);
    const acl = options.acl ?? OPEN_ACL_UNSAFE;
    const buf = toBuffer(data);
    const sp = this.prefix(path);
    const type = createOpCode(mode);
    return this.submit(
      'create',
      type,
      path,
      (w) => {
        if (type === OpCode.createTTL) writeCreateTTLRequest(w, sp, buf, acl, CreateFlag[mode], ttl);
        else writeCreateRequest(w, sp, buf, acl, CreateFlag[mode]);
      },
      (_h, r) => {
        const res = readCreate2Response(r);
        return { path: this.strip(res.path), stat: res.stat };
      },
      { timeoutMs: options.timeoutMs, sizeHint: (buf?.length ?? 0) + sp.length + 64 },
    );
  }

  /**
   * A 3.8 server keeps one watch mode per path and connection: a one-shot watch set on a path
   * with a persistent watch would turn that watch back into a one-shot one. A persistent watch
   * on the path already delivers every event a one-shot watch wants, so the one-shot listener
   * is recorded locally only. A recursive watch does not deliver childrenChanged, and cannot
   * share its path with a child watch.
   */
  /**
   * What every watching read starts with: a valid path, its chrooted form, and whether the
   * server must be asked to set a watch (a combination 3.8 cannot hold is refused here).
   */
  private prepareRead(path: string, watch: WatchListener | undefined, table: 'data' | 'child'): { sp: string; serverWatch: boolean } | Error {
    const invalid = checkPath(path);
    if (invalid) return invalid;
    try {
      return { sp: this.prefix(path), serverWatch: watch !== undefined && this.needsServerWatch(path, table) };
    } catch (e) {
      return e as Error;
    }
  }

  private needsServerWatch(path: string, table: 'data' | 'child'): boolean {
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

  private checkTtl(mode: CreateMode, ttlMs: number | undefined): number {
    if (isTtlMode(mode)) {
      if (ttlMs === undefined || !Number.isInteger(ttlMs) || ttlMs <= 0) {
        throw new InvalidArgumentError('ttlMs', `mode ${mode} needs a positive integer ttlMs, got ${ttlMs}`);
      }
      return ttlMs;
    }
    if (ttlMs !== undefined) throw new InvalidArgumentError('ttlMs', `only the ttl modes take a ttlMs (mode is ${mode})`);
    return 0;
  }

  /** Deletes a node; version -1 matches any version. */
  delete(path: string, version = -1, options: TimeoutOption = {}): Promise<void> {
    const invalid = checkPath(path) ?? checkVersion(version);
    if (invalid) return Promise.reject(invalid);
    const sp = this.prefix(path);
    return this.submit('delete', OpCode.delete, path, (w) => writePathVersion(w, sp, version), decodeNothing, options);
  }

  /** The node's Stat, or null if there is none. A watch fires on create, delete or data change. */
  exists(path: string, options: WatchOption = {}): Promise<Stat | null> {
    const watch = options.watch;
    const prep = this.prepareRead(path, watch, 'data');
    if (prep instanceof Error) return Promise.reject(prep);
    const { sp, serverWatch } = prep;
    return this.submit<Stat | null>(
      'exists',
      OpCode.exists,
      path,
      (w) => writePathWatch(w, sp, serverWatch),
      watch
        ? (_h, r) => {
            const stat = readStat(r, 'ExistsResponse.stat');
            this.watches.add('data', path, watch);
            return stat;
          }
        : decodeExists,
      {
        ...options,
        // No node is an answer, not an error; the server then holds an exist watch (the reply
        // order guarantees no event for it can have arrived before this reply).
        recover: (code) => {
          if (code !== ErrorCode.NO_NODE) return undefined;
          if (watch) this.watches.add('exist', path, watch);
          return { value: null };
        },
      },
    );
  }

  /** The node's data and Stat. A watch fires on data change or delete. */
  getData(path: string, options: WatchOption = {}): Promise<{ data: Buffer; stat: Stat }> {
    const watch = options.watch;
    const prep = this.prepareRead(path, watch, 'data');
    if (prep instanceof Error) return Promise.reject(prep);
    const { sp, serverWatch } = prep;
    return this.submit(
      'getData',
      OpCode.getData,
      path,
      (w) => writePathWatch(w, sp, serverWatch),
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
    const invalid = checkPath(path) ?? checkVersion(version);
    if (invalid) return Promise.reject(invalid);
    const sp = this.prefix(path);
    const buf = toBuffer(data);
    return this.submit('setData', OpCode.setData, path, (w) => writeSetDataRequest(w, sp, buf, version), decodeSetData, {
      ...options,
      sizeHint: (buf?.length ?? 0) + sp.length + 32,
    });
  }

  /** Child names (unsorted, as the server returns them) and the parent's Stat. A watch fires on child create/delete or parent delete. */
  getChildren(path: string, options: WatchOption = {}): Promise<{ children: string[]; stat: Stat }> {
    const watch = options.watch;
    const prep = this.prepareRead(path, watch, 'child');
    if (prep instanceof Error) return Promise.reject(prep);
    const { sp, serverWatch } = prep;
    return this.submit(
      'getChildren',
      OpCode.getChildren2,
      path,
      (w) => writePathWatch(w, sp, serverWatch),
      (_h, r) => {
        const res = readGetChildren2Response(r);
        if (watch) this.watches.add('child', path, watch);
        return res;
      },
      options,
    );
  }

  async getACL(path: string, options: TimeoutOption = {}): Promise<{ acl: ACL[]; stat: Stat }> {
    validatePath(path);
    const sp = this.prefix(path);
    return this.submit('getACL', OpCode.getACL, path, (w) => writePath(w, sp), (_h, r) => readGetACLResponse(r), options);
  }

  /** Replaces the ACL if the ACL version (stat.aversion) matches (-1: any). */
  async setACL(path: string, acl: readonly ACL[], version = -1, options: TimeoutOption = {}): Promise<Stat> {
    validatePath(path);
    const badVersion = checkVersion(version);
    if (badVersion) throw badVersion;
    if (acl.length === 0) throw new InvalidArgumentError('acl', 'an ACL needs at least one entry');
    const sp = this.prefix(path);
    return this.submit(
      'setACL',
      OpCode.setACL,
      path,
      (w) => writeSetACLRequest(w, sp, acl, version),
      (_h, r) => readStat(r, 'SetACLResponse.stat'),
      options,
    );
  }

  /** Waits until the connected server has applied every write the leader committed before. */
  async sync(path = '/', options: TimeoutOption = {}): Promise<string> {
    validatePath(path);
    const sp = this.prefix(path);
    return this.submit(
      'sync',
      OpCode.sync,
      path,
      (w) => writePath(w, sp),
      (_h, r) => this.strip(r.readUString('SyncResponse.path')),
      options,
    );
  }

  /**
   * A transaction: every op is applied, or none. On failure throws MultiError with the index
   * of the failing op and every op's result (0 for ops that would have succeeded).
   */
  async multi(ops: readonly Op[], options: TimeoutOption = {}): Promise<OpResult[]> {
    const writers: ((w: JuteWriter) => void)[] = ops.map((o, i) => this.multiOpWriter(o, i));
    const results = await this.submit(
      'multi',
      OpCode.multi,
      undefined,
      (w) => {
        for (const wr of writers) wr(w);
        writeMultiEnd(w);
      },
      (_h, r) => readMultiResponse(r, ops.length),
      { ...options, sizeHint: 256 + ops.length * 64 },
    );
    const mapped = results.map((res) => (res.op === 'create' ? { ...res, path: this.strip(res.path) } : res));
    const failed = mapped.findIndex((res) => res.op === 'error' && res.code !== 0);
    if (failed >= 0) {
      const code = (mapped[failed] as { code: number }).code;
      throw new MultiError(failed, errorFromCode(code, ops[failed]?.path, `multi op ${failed} (${ops[failed]?.op})`), mapped);
    }
    return mapped;
  }

  private multiOpWriter(o: Op, i: number): (w: JuteWriter) => void {
    const arg = `ops[${i}]`;
    switch (o.op) {
      case 'create': {
        const mode = o.mode ?? 'persistent';
        if (!(mode in CreateFlag)) throw new InvalidArgumentError(`${arg}.mode`, `unknown create mode ${String(mode)}`);
        validatePath(o.path, `${arg}.path`, mode.includes('sequential'));
        const ttl = this.checkTtl(mode, o.ttlMs);
        const sp = this.prefix(o.path);
        const buf = toBuffer(o.data);
        const acl = o.acl ?? OPEN_ACL_UNSAFE;
        const type = createOpCode(mode);
        return (w) => {
          writeMultiHeader(w, type, false, -1);
          if (type === OpCode.createTTL) writeCreateTTLRequest(w, sp, buf, acl, CreateFlag[mode], ttl);
          else writeCreateRequest(w, sp, buf, acl, CreateFlag[mode]);
        };
      }
      case 'delete': {
        validatePath(o.path, `${arg}.path`);
        const version = o.version ?? -1;
        const badVersion = checkVersion(version, `${arg}.version`);
        if (badVersion) throw badVersion;
        const sp = this.prefix(o.path);
        return (w) => {
          writeMultiHeader(w, OpCode.delete, false, -1);
          writePathVersion(w, sp, version);
        };
      }
      case 'setData': {
        validatePath(o.path, `${arg}.path`);
        const version = o.version ?? -1;
        const badVersion = checkVersion(version, `${arg}.version`);
        if (badVersion) throw badVersion;
        const sp = this.prefix(o.path);
        const buf = toBuffer(o.data);
        return (w) => {
          writeMultiHeader(w, OpCode.setData, false, -1);
          writeSetDataRequest(w, sp, buf, version);
        };
      }
      case 'check': {
        validatePath(o.path, `${arg}.path`);
        const badVersion = checkVersion(o.version, `${arg}.version`);
        if (badVersion) throw badVersion;
        const sp = this.prefix(o.path);
        return (w) => {
          writeMultiHeader(w, OpCode.check, false, -1);
          writePathVersion(w, sp, o.version);
        };
      }
      default:
        throw new InvalidArgumentError(`${arg}.op`, `unknown op ${String((o as { op: unknown }).op)}`);
    }
  }

  /**
   * Several reads in one round trip, from one consistent view of the server. Each op fails on
   * its own: a missing node gives { op: 'error', code } in its slot, the others still answer.
   */
  async multiRead(ops: readonly ReadOp[], options: TimeoutOption = {}): Promise<OpResult[]> {
    const paths = ops.map((o, i) => {
      if (o.op !== 'getData' && o.op !== 'getChildren') {
        throw new InvalidArgumentError(`ops[${i}].op`, `multiRead takes getData and getChildren, got ${String((o as { op: unknown }).op)}`);
      }
      validatePath(o.path, `ops[${i}].path`);
      return this.prefix(o.path);
    });
    return this.submit(
      'multiRead',
      OpCode.multiRead,
      undefined,
      (w) => {
        ops.forEach((o, i) => {
          writeMultiHeader(w, o.op === 'getData' ? OpCode.getData : OpCode.getChildren, false, -1);
          writePathWatch(w, paths[i], false);
        });
        writeMultiEnd(w);
      },
      (_h, r) => readMultiResponse(r, ops.length),
      options,
    );
  }

  /** Paths of this session's ephemeral nodes under prefixPath. */
  async getEphemerals(prefixPath = '/', options: TimeoutOption = {}): Promise<string[]> {
    validatePath(prefixPath, 'prefixPath');
    const sp = this.prefix(prefixPath);
    return this.submit(
      'getEphemerals',
      OpCode.getEphemerals,
      prefixPath,
      (w) => writePath(w, sp),
      (_h, r) => readStringVector(r, 'GetEphemeralsResponse.ephemerals').map((p) => this.strip(p)),
      options,
    );
  }

  /** Number of all descendants of path (not counting path). */
  async getAllChildrenNumber(path: string, options: TimeoutOption = {}): Promise<number> {
    validatePath(path);
    const sp = this.prefix(path);
    return this.submit(
      'getAllChildrenNumber',
      OpCode.getAllChildrenNumber,
      path,
      (w) => writePath(w, sp),
      (_h, r) => r.readInt('GetAllChildrenNumberResponse.totalNumber'),
      options,
    );
  }

  /** The identities the server has attached to this session (ip, digest users, ...). */
  async whoAmI(options: TimeoutOption = {}): Promise<ClientInfo[]> {
    return this.submit('whoAmI', OpCode.whoAmI, undefined, undefined, (_h, r) => readWhoAmIResponse(r), options);
  }

  /**
   * Adds a credential to the session (e.g. 'digest', 'user:password'). It is kept and re-sent
   * after every reconnect. Resolves once the server accepted it; an unknown scheme or a
   * rejected credential moves the client to authFailed.
   */
  async addAuth(scheme: string, auth: string | Buffer, options: TimeoutOption = {}): Promise<void> {
    if (!scheme) throw new InvalidArgumentError('scheme', 'empty');
    const stateError = this.stateError('addAuth', undefined);
    if (stateError) throw stateError;
    const buf = toBuffer(auth) ?? Buffer.alloc(0);
    let entry = this.auths.find((a) => a.scheme === scheme && a.auth.equals(buf));
    const fresh = !entry;
    if (!entry) {
      entry = { scheme, auth: buf, waiters: [] };
      this.auths.push(entry);
    }
    const e = entry;
    const timeoutMs = options.timeoutMs ?? this.opts.requestTimeoutMs;
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
    if (this._state === 'connected' && this.conn?.isOpen && (fresh || !this.authInflight.includes(e))) this.sendAuth(this.conn, e);
    return done;
  }

  /**
   * A watch that stays until removed: 'persistent' sees every event on path (including
   * childrenChanged); 'persistent_recursive' sees created/deleted/dataChanged on path and every
   * descendant. Re-registered on reconnect; events during a disconnection are not replayed.
   */
  async addWatch(path: string, mode: AddWatchModeName, listener: WatchListener, options: TimeoutOption = {}): Promise<void> {
    validatePath(path);
    if (!(mode in AddWatchMode)) throw new InvalidArgumentError('mode', `expected persistent or persistent_recursive, got ${String(mode)}`);
    const sp = this.prefix(path);
    const table: WatchTable = mode === 'persistent' ? 'persistent' : 'persistentRecursive';
    const otherTable: WatchTable = mode === 'persistent' ? 'persistentRecursive' : 'persistent';
    if (this.watches.has(otherTable, path) || (mode === 'persistent_recursive' && this.watches.has('child', path))) {
      throw new InvalidArgumentError(
        'mode',
        `${path} already has a ${this.watches.has(otherTable, path) ? otherTable : 'child'} watch; the server keeps one watch mode per path and connection`,
      );
    }
    return this.submit(
      'addWatch',
      OpCode.addWatch,
      path,
      (w) => writePathInt(w, sp, AddWatchMode[mode]),
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
  async removeWatches(
    path: string,
    kind: WatcherKind = 'any',
    listener?: WatchListener,
    options: TimeoutOption & { local?: boolean } = {},
  ): Promise<void> {
    validatePath(path);
    if (!(kind in WatcherType)) throw new InvalidArgumentError('kind', `unknown watcher kind ${String(kind)}`);
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
        const sp = this.prefix(path);
        const t = WatcherType[serverKind];
        try {
          await this.submit('removeWatches', OpCode.removeWatches, path, (w) => writePathInt(w, sp, t), () => undefined, options);
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
  async checkWatches(path: string, kind: WatcherKind = 'any', options: TimeoutOption = {}): Promise<void> {
    validatePath(path);
    if (!(kind in WatcherType)) throw new InvalidArgumentError('kind', `unknown watcher kind ${String(kind)}`);
    if (!tablesOf(kind).some((t) => this.watches.has(t, path))) throw new NoWatcherError(path);
    const sp = this.prefix(path);
    // 3.8 servers know the types children, data and any; a persistent watch is in both parts.
    const t = kind === 'persistent' || kind === 'persistentRecursive' ? WatcherType.any : WatcherType[kind];
    return this.submit('checkWatches', OpCode.checkWatches, path, (w) => writePathInt(w, sp, t), () => undefined, options);
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
