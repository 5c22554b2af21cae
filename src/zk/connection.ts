/**
 * One TCP connection to one ZooKeeper server: the session handshake, matching replies to
 * requests, pings, and the read timeout that detects a silent server. Bytes are decoded by the
 * pure decoder (decoder.ts); this module owns the socket and the timers.
 *
 * The connection knows nothing about sessions or watches: it reports notifications, special
 * replies and its own end to its owner (client.ts or end-session.ts), which decides what to do
 * next. Replies to ordinary requests come back in the order the requests were sent (the server
 * processes one connection's requests in order), so pending requests are a FIFO and a reply whose
 * xid is not the head's is a protocol violation that ends the connection.
 */
import type { Socket } from 'node:net';
import { JuteDecodeError, JuteWriter, type JuteReader } from './jute.ts';
import {
  AuthFailedError,
  ClientClosedError,
  ConnectionLossError,
  OperationTimeoutError,
  ProtocolError,
  SessionClosedRequireSaslAuthError,
  errorFromCode,
} from './errors.ts';
import { describeTransportError, openTransport, type PreparedTls, type TransportTarget } from './transport.ts';
import { SaslExchange } from './sasl-wire.ts';
import type { SaslMechanism } from './sasl.ts';
import { FrameDecoder, FrameLengthError, decodeHandshake, decodeServerMessage, type ServerMessage } from './decoder.ts';
import {
  OpCode,
  Xid,
  writeConnectRequest,
  writeRequestHeader,
  type ConnectRequest,
  type ConnectResponse,
  type ReplyHeader,
  type WatcherEvent,
} from './protocol.ts';

/** A request on the wire. The frame holds [length][xid][type][body]; xid is patched at send. */
export interface Packet {
  xid: number;
  type: number;
  frame: Buffer;
  /** Called with the reply header and a reader positioned at the body. */
  onReply(header: ReplyHeader, body: JuteReader): void;
  /** Called if the connection ends before the reply. */
  onLoss(err: Error): void;
}

export interface ConnectionHandlers {
  onNotification(event: WatcherEvent, zxid: bigint): void;
  /** Replies with the auth or setWatches xid: they bypass the FIFO (auth replies jump the queue). */
  onSpecialReply(header: ReplyHeader, body: JuteReader): void;
  onZxid(zxid: bigint): void;
  /** Exactly once, after every pending packet got onLoss. */
  onClose(reason: Error): void;
}

/** How long the connection may stay silent, and when it pings; from the negotiated session timeout. */
export interface LivenessTiming {
  readTimeoutMs: number;
  pingIntervalMs: number;
  /**
   * With requests outstanding and nothing sent or received for this long, a ping goes out (again
   * after each such stretch): ZooKeeper before the ZOOKEEPER-4537 fix (Debian 12's 3.8.0) can hold
   * a committed reply until its next request arrives (docs/client.md). 0 or absent: never.
   */
  overduePingMs?: number;
}

export interface OpenOptions {
  host: string;
  port: number;
  /** TCP connect plus session handshake. */
  connectTimeoutMs: number;
  request: ConnectRequest;
  /** Largest frame accepted from the server; larger ones end the connection (corrupt or hostile). */
  maxIncomingBytes: number;
  /** Aborting ends the attempt at once: its socket and its timer go, and open() resolves 'aborted'. */
  signal?: AbortSignal;
  /** TLS to the server's secureClientPort (transport.ts); absent: plain TCP. */
  tls?: PreparedTls;
  /**
   * A fresh SASL mechanism per connection: authentication runs right after the session
   * handshake and before anything else is sent (a server that enforces SASL refuses any other
   * request until then, pings included), within the same connect timeout.
   */
  sasl?: () => SaslMechanism;
}

/**
 * Why an attempt produced no session:
 * - refused: nothing listens there (TCP reset): no server process, so no connection to hold either;
 * - unanswered: TCP did not come up within the timeout (host silent or unreachable);
 * - dropped: TCP came up and the server closed before answering (not serving, e.g. electing);
 * - silent: TCP came up and no answer came within the timeout (paused, overloaded, a learner
 *   waiting on a leader that is gone);
 * - rejected: the server answered with an error instead of a session (`error` is typed by its code);
 * - protocol: the answer was not a ConnectResponse;
 * - unauthenticated: the server refused the SASL credential (`error`: AuthFailedError, or
 *   SessionClosedRequireSaslAuthError where SASL is enforced); every server would;
 * - aborted: the owner gave up (close()).
 * With TLS, "TCP came up" means the TLS handshake completed (the server's certificate verified).
 */
export type OpenFailure = 'refused' | 'unanswered' | 'dropped' | 'silent' | 'rejected' | 'protocol' | 'unauthenticated' | 'aborted';

export type OpenResult = { ok: true; conn: Connection; response: ConnectResponse } | { ok: false; failure: OpenFailure; error: Error; server: string };

/** Writes a request's body (an encoded operation, ops.ts). */
export interface FrameBody {
  write(w: JuteWriter): void;
}

/** Builds a request frame with room for the xid; the caller writes the body with `body`. */
export function buildFrame(type: number, body?: FrameBody | ((w: JuteWriter) => void), sizeHint = 128): Buffer {
  const w = new JuteWriter(sizeHint);
  w.writeInt(0);
  writeRequestHeader(w, 0, type);
  if (typeof body === 'function') body(w);
  else body?.write(w);
  w.patchInt(0, w.length - 4);
  return w.toBuffer();
}

/** The socket reads into one buffer of this size, reused for every read (Node's own read size). */
const READ_BUFFER_BYTES = 64 * 1024;

const PING_FRAME = (() => {
  const f = buildFrame(OpCode.ping);
  f.writeInt32BE(Xid.ping, 4);
  return f;
})();

/** A FIFO with O(1) push/shift that does not copy on every shift like Array#shift. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  push(v: T): void {
    this.items.push(v);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  get isEmpty(): boolean {
    return this.head >= this.items.length;
  }
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}

export class Connection {
  readonly server: string;
  private readonly socket: Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Fifo<Packet>();
  private handlers: ConnectionHandlers | null = null;
  /** Frames that arrived after the handshake but before start(). */
  private early: Buffer[] = [];
  /** Set while the handshake is outstanding: receives the first frame or the connection's end. */
  private handshake: { onFrame(frame: Buffer): void; onEnd(err: Error): void } | null = null;
  private closedWith: Error | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Armed while requests may be outstanding (see LivenessTiming.overduePingMs); re-armed at most once per period. */
  private overdueTimer: NodeJS.Timeout | null = null;
  private overduePingsSent = 0;
  private timing: LivenessTiming = { readTimeoutMs: 0, pingIntervalMs: 0 };
  private lastRecv = Date.now();
  private lastSend = Date.now();
  /** A frame went out since the last read or flush: the next one is corked, with the rest of its tick. */
  private wroteSinceRead = false;
  private corked = false;
  /** The first socket error's code (ECONNREFUSED tells "nothing listens" from other failures). */
  private socketError: string | null = null;
  private readonly onFrame = (buf: Buffer, start: number, end: number): boolean => this.frame(buf, start, end);
  private readonly onTimer = (): void => this.tick();
  private readonly onOverdue = (): void => this.checkOverdue();
  /** Every plain TCP read lands here; the socket's own buffer is never handed out. */
  private readonly readBuffer: Buffer | null;
  private readonly onRead = (nread: number): boolean => {
    this.read(this.readBuffer!, nread);
    return true;
  };
  private readonly flush = (): void => {
    this.corked = false;
    this.wroteSinceRead = false;
    this.socket.uncork();
  };

  /** Starts the connect; `onReady` runs once bytes can flow (after TCP, or after the TLS handshake). */
  private constructor(target: TransportTarget, maxIncoming: number, onReady: () => void) {
    const server = `${target.host}:${target.port}`;
    this.server = server;
    this.decoder = new FrameDecoder(maxIncoming);
    // Plain TCP reads land in one reused buffer and go straight to the decoder: no buffer
    // allocated per read, no readable-stream queue, no 'data' event. The decoder copies what
    // outlives a read. TLS decrypts into buffers of its own, which come as 'data'.
    this.readBuffer = target.tls ? null : Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const socket = openTransport(target, onReady, this.readBuffer ? { buffer: this.readBuffer, callback: this.onRead } : undefined);
    if (!this.readBuffer) socket.on('data', (d: Buffer) => this.read(d, d.length));
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.socketError ??= e.code ?? e.message;
      this.close(new ConnectionLossError(undefined, `${server}: ${describeTransportError(e)}`));
    });
    socket.on('close', () => this.close(new ConnectionLossError(undefined, `${server} closed the connection`)));
  }

  /**
   * Connects, sends the ConnectRequest and waits for the ConnectResponse, all within
   * connectTimeoutMs. Never rejects: a failed attempt says why (OpenFailure), so the caller can
   * tell a server that is not there from one that is there but not serving.
   */
  static open(opts: OpenOptions): Promise<OpenResult> {
    const server = `${opts.host}:${opts.port}`;
    if (opts.signal?.aborted) return Promise.resolve({ ok: false, failure: 'aborted', error: new ClientClosedError('connect'), server });
    return new Promise((resolve) => {
      let tcpUp = false;
      const conn = new Connection({ host: opts.host, port: opts.port, tls: opts.tls }, opts.maxIncomingBytes, () => {
        tcpUp = true;
        const w = new JuteWriter(64);
        w.writeInt(0);
        writeConnectRequest(w, opts.request);
        w.patchInt(0, w.length - 4);
        conn.socket.write(w.toBuffer());
      });
      let done = false;
      const onAbort = (): void => fail('aborted', new ClientClosedError('connect'));
      const finish = (result: OpenResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        conn.handshake = null;
        resolve(result);
      };
      const fail = (failure: OpenFailure, error: Error): void => {
        if (done) return;
        finish({ ok: false, failure, error, server });
        conn.close(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            tcpUp ? 'silent' : 'unanswered',
            new OperationTimeoutError(undefined, `no ${tcpUp ? 'session handshake' : 'TCP connection'} from ${server} within ${opts.connectTimeoutMs} ms`),
          ),
        opts.connectTimeoutMs,
      );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      conn.handshake = {
        onEnd: (err) => fail(tcpUp ? 'dropped' : conn.socketError === 'ECONNREFUSED' ? 'refused' : 'unanswered', err),
        onFrame: (frame) => {
          let answer;
          try {
            answer = decodeHandshake(frame);
          } catch (e) {
            const err = e instanceof JuteDecodeError ? new ProtocolError(server, `bad ConnectResponse: ${e.message}`) : (e as Error);
            fail('protocol', err);
            return;
          }
          if (answer.kind === 'refused') fail('rejected', errorFromCode(answer.code, undefined, `${server} refused the session`));
          // A session the server does not know (timeOut 0) is reported as it is: nothing to authenticate.
          else if (!opts.sasl || answer.response.timeOut <= 0) finish({ ok: true, conn, response: answer.response });
          else authenticate(answer.response, opts.sasl());
        },
      };
      const authenticate = (response: ConnectResponse, mechanism: SaslMechanism): void => {
        const sasl = new SaslExchange(mechanism, server);
        conn.handshake = {
          onEnd: (err) => fail('dropped', err),
          onFrame: (frame) => {
            let step;
            try {
              step = sasl.onReply(frame);
            } catch (e) {
              const refused = e instanceof AuthFailedError || e instanceof SessionClosedRequireSaslAuthError;
              fail(refused ? 'unauthenticated' : 'protocol', e as Error);
              return;
            }
            if (step.done) finish({ ok: true, conn, response });
            else conn.socket.write(step.send);
          },
        };
        conn.socket.write(sasl.start());
      };
    });
  }

  /**
   * Hands the connection to its owner: frames flow, pings start, the read timeout is armed.
   * Frames (or an end) that came before start() are delivered on the next microtask, never
   * inside the caller's own call, so an owner can finish its state change first.
   */
  start(handlers: ConnectionHandlers, timing: LivenessTiming): void {
    this.handlers = handlers;
    this.timing = timing;
    this.lastRecv = Date.now();
    this.lastSend = Date.now();
    if (this.closedWith) {
      const reason = this.closedWith;
      queueMicrotask(() => handlers.onClose(reason));
      return;
    }
    this.schedule();
    if (this.early.length > 0) {
      const early = this.early;
      this.early = [];
      queueMicrotask(() => {
        for (const f of early) if (!this.frame(f, 0, f.length)) return;
      });
    }
  }

  get isOpen(): boolean {
    return this.closedWith === null;
  }

  /** Pings sent because a reply was overdue on a silent connection. */
  get overduePings(): number {
    return this.overduePingsSent;
  }

  /** When the last byte arrived (session liveness is measured from here). */
  get lastReceiveTime(): number {
    return this.lastRecv;
  }

  /** Sends a request whose reply is matched by xid. */
  send(p: Packet): void {
    if (this.closedWith) {
      p.onLoss(this.closedWith);
      return;
    }
    p.frame.writeInt32BE(p.xid, 4);
    this.pending.push(p);
    this.write(p.frame);
    // One timer for all requests, not one each: while it is armed, a send costs one comparison.
    if (this.overdueTimer === null && (this.timing.overduePingMs ?? 0) > 0) this.overdueTimer = setTimeout(this.onOverdue, this.timing.overduePingMs);
  }

  /** Sends a frame with a special xid (auth, setWatches); its reply goes to onSpecialReply. */
  sendSpecial(xid: number, frame: Buffer): void {
    if (this.closedWith) return;
    frame.writeInt32BE(xid, 4);
    this.write(frame);
  }

  /**
   * The first frame after a read goes out at once: with one request outstanding nothing waits
   * for the end of the tick. A frame after it is corked until the end of the tick, so the
   * requests that the replies of one read start (all of them at many outstanding) leave in one
   * writev.
   */
  private write(frame: Buffer): void {
    this.lastSend = Date.now();
    if (this.wroteSinceRead && !this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.flush);
    }
    this.wroteSinceRead = true;
    this.socket.write(frame);
  }

  /**
   * One timer, set for the earlier of "silent for the read timeout" and "nothing sent for the
   * ping interval". Traffic only moves both later, so a timer that fires early just re-arms.
   */
  private schedule(): void {
    const due = Math.min(this.lastRecv + this.timing.readTimeoutMs, this.lastSend + this.timing.pingIntervalMs);
    this.timer = setTimeout(this.onTimer, Math.max(1, due - Date.now()));
  }

  private tick(): void {
    this.timer = null;
    if (this.closedWith) return;
    const now = Date.now();
    if (now - this.lastRecv >= this.timing.readTimeoutMs) {
      this.close(new ConnectionLossError(undefined, `${this.server} silent for ${now - this.lastRecv} ms (read timeout ${this.timing.readTimeoutMs} ms)`));
      return;
    }
    if (now - this.lastSend >= this.timing.pingIntervalMs) this.write(PING_FRAME);
    this.schedule();
  }

  /**
   * A ping wakes a server that holds a reply it has already committed (any request it receives
   * does; see docs/client.md). It is sent only when requests are outstanding and the connection
   * has been silent both ways for the whole period: a connection with traffic either way sends
   * none, and a server that is just slow gets one ping per silent period.
   */
  private checkOverdue(): void {
    this.overdueTimer = null;
    const period = this.timing.overduePingMs ?? 0;
    if (this.closedWith || this.pending.isEmpty || period <= 0) return;
    const now = Date.now();
    const due = Math.max(this.lastRecv, this.lastSend) + period;
    if (now >= due) {
      this.overduePingsSent++;
      this.write(PING_FRAME);
      this.overdueTimer = setTimeout(this.onOverdue, period);
    } else {
      this.overdueTimer = setTimeout(this.onOverdue, due - now);
    }
  }

  private read(chunk: Buffer, nread: number): void {
    this.lastRecv = Date.now();
    this.wroteSinceRead = false;
    try {
      this.decoder.push(chunk, this.onFrame, nread);
    } catch (e) {
      if (!(e instanceof FrameLengthError)) throw e;
      this.close(new ProtocolError(this.server, e.message));
    }
  }

  /** One frame, buf[start, end); false once the connection has ended (the decoder then stops). */
  private frame(buf: Buffer, start: number, end: number): boolean {
    if (this.closedWith) return false;
    if (this.handshake) {
      this.handshake.onFrame(buf.subarray(start, end));
      return !this.closedWith;
    }
    const h = this.handlers;
    if (!h) {
      this.early.push(Buffer.from(buf.subarray(start, end)));
      return true;
    }
    let m: ServerMessage;
    try {
      m = decodeServerMessage(buf, start, end);
    } catch (e) {
      this.close(new ProtocolError(this.server, `bad reply: ${(e as Error).message}`));
      return false;
    }
    switch (m.kind) {
      case 'notification':
        h.onNotification(m.event!, m.zxid);
        break;
      case 'ping':
        // A server that enforces authentication answers an unauthenticated ping with an error, then closes.
        if (m.err !== 0) h.onSpecialReply(m, m.body);
        break;
      case 'auth':
      case 'setWatches':
        h.onSpecialReply(m, m.body);
        break;
      case 'reply': {
        const p = this.pending.shift();
        if (!p || p.xid !== m.xid) {
          this.close(new ProtocolError(this.server, `reply xid ${m.xid} but the oldest request in flight is ${p ? p.xid : 'none'}`));
          if (p) p.onLoss(new ConnectionLossError(undefined, `protocol error from ${this.server}`));
          return false;
        }
        if (m.zxid > 0n) h.onZxid(m.zxid);
        p.onReply(m, m.body);
      }
    }
    return !this.closedWith;
  }

  /** Ends the connection; pending requests fail with `reason` (a ConnectionLoss by default). */
  close(reason: Error): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.overdueTimer) clearTimeout(this.overdueTimer);
    this.overdueTimer = null;
    this.socket.destroy();
    const loss = reason instanceof ConnectionLossError ? reason : new ConnectionLossError(undefined, reason.message);
    for (const p of this.pending.drain()) p.onLoss(loss);
    this.handshake?.onEnd(reason);
    this.handlers?.onClose(reason);
  }
}
