/**
 * One TCP connection to one ZooKeeper server: length-prefixed framing, the session handshake,
 * matching replies to requests, pings, and the read timeout that detects a silent server.
 *
 * The connection knows nothing about sessions or watches: it reports notifications, special
 * replies and its own end to its owner (client.ts), which decides what to do next. Replies to
 * ordinary requests come back in the order the requests were sent (the server processes one
 * connection's requests in order), so pending requests are a FIFO and a reply whose xid is not
 * the head's is a protocol violation that ends the connection.
 */
import type { Socket } from 'node:net';
import { JuteDecodeError, JuteReader, JuteWriter } from './jute.ts';
import { describeTransportError, openTransport, type PreparedTls } from './transport.ts';
import { SaslExchange } from './sasl-wire.ts';
import type { SaslMechanism } from './sasl.ts';
import { ConnectionLossError, OperationTimeoutError, ProtocolError, errorFromCode } from './errors.ts';
import {
  OpCode,
  Xid,
  readConnectResponse,
  readReplyHeader,
  readWatcherEvent,
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

export interface OpenOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  request: ConnectRequest;
  /** Largest frame accepted from the server; larger ones end the connection (corrupt or hostile). */
  maxIncomingBytes: number;
  /** Told when TCP (and TLS, if any) is up, before the handshake: a caller can tell "refused" from "dropped mid-handshake". */
  onTcpConnected?: () => void;
  /** TLS to the server's secureClientPort; absent: plain TCP. */
  tls?: PreparedTls;
  /**
   * A fresh SASL mechanism per connection: authentication runs right after the session
   * handshake and before anything else is sent (the server refuses other requests until then
   * when it enforces SASL), within the same connect timeout. A refused credential rejects open()
   * with AuthFailedError or SessionClosedRequireSaslAuthError.
   */
  sasl?: () => SaslMechanism;
}

/** Builds a request frame with room for the xid; the caller writes the body with `body`. */
export function buildFrame(type: number, body?: (w: JuteWriter) => void, sizeHint = 128): Buffer {
  const w = new JuteWriter(sizeHint);
  w.writeInt(0);
  writeRequestHeader(w, 0, type);
  body?.(w);
  w.patchInt(0, w.length - 4);
  return w.toBuffer();
}

const PING_FRAME = (() => {
  const f = buildFrame(OpCode.ping);
  f.writeInt32BE(Xid.ping, 4);
  return f;
})();

/** A FIFO with O(1) push/shift that does not copy on every shift like Array#shift. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
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
  private readonly maxIncoming: number;
  private chunk: Buffer = Buffer.alloc(0);
  private readonly pending = new Fifo<Packet>();
  private handlers: ConnectionHandlers | null = null;
  /** Frames that arrived after the handshake but before start(). */
  private early: Buffer[] = [];
  private handshake: ((frame: Buffer) => void) | null = null;
  private closedWith: Error | null = null;
  private earlyClose: ((err: Error) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readTimeoutMs = 0;
  private lastRecv = Date.now();
  private lastSend = Date.now();
  private corked = false;

  private constructor(socket: Socket, server: string, maxIncoming: number) {
    this.socket = socket;
    this.server = server;
    this.maxIncoming = maxIncoming;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (e) => this.close(new ConnectionLossError(undefined, `${server}: ${describeTransportError(e)}`)));
    socket.on('close', () => this.close(new ConnectionLossError(undefined, `${server} closed the connection`)));
  }

  /**
   * Connects, sends the ConnectRequest and waits for the ConnectResponse, all within
   * connectTimeoutMs. A server that accepts TCP but never answers (paused, overloaded, not
   * serving) fails here with OperationTimeoutError, and the caller moves to the next server.
   */
  static open(opts: OpenOptions): Promise<{ conn: Connection; response: ConnectResponse }> {
    const server = `${opts.host}:${opts.port}`;
    return new Promise((resolve, reject) => {
      const socket = openTransport({ host: opts.host, port: opts.port, tls: opts.tls }, () => {
        opts.onTcpConnected?.();
        const w = new JuteWriter(64);
        w.writeInt(0);
        writeConnectRequest(w, opts.request);
        w.patchInt(0, w.length - 4);
        socket.write(w.toBuffer());
      });
      const conn = new Connection(socket, server, opts.maxIncomingBytes);
      let done = false;
      const finish = (err: Error | null, response?: ConnectResponse): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        conn.handshake = null;
        conn.earlyClose = null;
        if (err) {
          conn.close(err);
          reject(err);
        } else resolve({ conn, response: response as ConnectResponse });
      };
      const timer = setTimeout(
        () => finish(new OperationTimeoutError(undefined, `no session handshake from ${server} within ${opts.connectTimeoutMs} ms`)),
        opts.connectTimeoutMs,
      );
      conn.earlyClose = (err) => finish(err);
      conn.handshake = (frame) => {
        try {
          // A server that refuses the session in its request pipeline (a read-only server asked
          // for a global session, for one) answers with a bare ReplyHeader carrying the error.
          if (frame.length === 16 && frame.readInt32BE(0) === 0 && frame.readInt32BE(12) < 0) {
            finish(errorFromCode(frame.readInt32BE(12), undefined, `${server} refused the session`));
            return;
          }
          const response = readConnectResponse(new JuteReader(frame));
          // A session the server does not know (timeOut 0) is reported as is: there is nothing to authenticate.
          if (!opts.sasl || response.timeOut <= 0) {
            finish(null, response);
            return;
          }
          const sasl = new SaslExchange(opts.sasl(), server);
          conn.handshake = (reply) => {
            try {
              const step = sasl.onReply(reply);
              if (step.done) finish(null, response);
              else socket.write(step.send);
            } catch (e) {
              finish(e as Error);
            }
          };
          socket.write(sasl.start());
        } catch (e) {
          finish(e instanceof JuteDecodeError ? new ProtocolError(server, `bad ConnectResponse: ${e.message}`) : (e as Error));
        }
      };
    });
  }

  /** Hands the connection to its owner: frames flow, pings start, the read timeout is armed. */
  start(handlers: ConnectionHandlers, readTimeoutMs: number): void {
    this.handlers = handlers;
    this.readTimeoutMs = readTimeoutMs;
    this.lastRecv = Date.now();
    this.lastSend = Date.now();
    if (this.closedWith) {
      handlers.onClose(this.closedWith);
      return;
    }
    // Java's client pings after readTimeout/2 without sending; checking six times per read
    // timeout keeps both the ping and the silence detection within a sixth of their target.
    const tick = Math.max(10, Math.floor(readTimeoutMs / 6));
    this.timer = setInterval(() => this.onTick(), tick);
    const early = this.early;
    this.early = [];
    for (const f of early) this.onFrame(f);
  }

  get isOpen(): boolean {
    return this.closedWith === null;
  }

  /** When the last byte arrived (session liveness is measured from here). */
  get lastReceiveTime(): number {
    return this.lastRecv;
  }

  get outstanding(): number {
    return this.pending.size;
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
  }

  /** Sends a frame with a special xid (auth, setWatches); its reply goes to onSpecialReply. */
  sendSpecial(xid: number, frame: Buffer): void {
    if (this.closedWith) return;
    frame.writeInt32BE(xid, 4);
    this.write(frame);
  }

  private write(frame: Buffer): void {
    this.lastSend = Date.now();
    // Requests issued in the same tick go out in one writev.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  private onTick(): void {
    const now = Date.now();
    if (now - this.lastRecv > this.readTimeoutMs) {
      this.close(new ConnectionLossError(undefined, `${this.server} silent for ${now - this.lastRecv} ms (read timeout ${this.readTimeoutMs} ms)`));
      return;
    }
    if (now - this.lastSend >= this.readTimeoutMs / 2) this.write(PING_FRAME);
  }

  private onData(d: Buffer): void {
    this.lastRecv = Date.now();
    const buf = this.chunk.length === 0 ? d : Buffer.concat([this.chunk, d]);
    let pos = 0;
    while (buf.length - pos >= 4) {
      const len = buf.readInt32BE(pos);
      if (len < 0 || len > this.maxIncoming) {
        this.close(new ProtocolError(this.server, `frame length ${len} at stream offset ${pos} outside 0..${this.maxIncoming}`));
        return;
      }
      if (buf.length - pos - 4 < len) break;
      const frame = buf.subarray(pos + 4, pos + 4 + len);
      pos += 4 + len;
      this.onFrame(frame);
      if (this.closedWith) return;
    }
    // Keep the tail; copying it detaches it from the large chunk it came from.
    this.chunk = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
  }

  private onFrame(frame: Buffer): void {
    if (this.handshake) {
      this.handshake(frame);
      return;
    }
    const h = this.handlers;
    if (!h) {
      this.early.push(Buffer.from(frame));
      return;
    }
    const r = new JuteReader(frame);
    let header: ReplyHeader;
    try {
      header = readReplyHeader(r);
    } catch (e) {
      this.close(new ProtocolError(this.server, `bad reply header: ${(e as Error).message}`));
      return;
    }
    switch (header.xid) {
      case Xid.notification: {
        let ev: WatcherEvent;
        try {
          ev = readWatcherEvent(r);
        } catch (e) {
          this.close(new ProtocolError(this.server, `bad notification: ${(e as Error).message}`));
          return;
        }
        h.onNotification(ev, header.zxid);
        return;
      }
      case Xid.ping:
        // A server that enforces authentication answers an unauthenticated ping with an error and closes.
        if (header.err !== 0) h.onSpecialReply(header, r);
        return;
      case Xid.auth:
      case Xid.setWatches:
        h.onSpecialReply(header, r);
        return;
      default: {
        const p = this.pending.shift();
        if (!p || p.xid !== header.xid) {
          this.close(new ProtocolError(this.server, `reply xid ${header.xid} but the oldest request in flight is ${p ? p.xid : 'none'}`));
          if (p) p.onLoss(new ConnectionLossError(undefined, `protocol error from ${this.server}`));
          return;
        }
        if (header.zxid > 0n) h.onZxid(header.zxid);
        p.onReply(header, r);
      }
    }
  }

  /** Ends the connection; pending requests fail with `reason` (a ConnectionLoss by default). */
  close(reason: Error): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.socket.destroy();
    const loss = reason instanceof ConnectionLossError ? reason : new ConnectionLossError(undefined, reason.message);
    for (const p of this.pending.drain()) p.onLoss(loss);
    this.earlyClose?.(reason);
    this.handlers?.onClose(reason);
  }
}
