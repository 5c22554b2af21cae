/**
 * What a ZooKeeper server sends a client, decoded without a socket (the shape of node-postgres'
 * pg-protocol Parser): bytes in, frames and typed messages out. connection.ts feeds it what the
 * socket reads; tests feed it bytes one at a time, cut anywhere.
 *
 * A frame is a 4-byte big-endian length and that many bytes. The first frame of a connection
 * answers the handshake; every later one starts with a ReplyHeader whose xid says what it is
 * (notification -1, ping -2, auth -4, setWatches -8, else the reply to the request with that xid).
 */
import { JuteReader } from './jute.ts';
import { Xid, readConnectResponse, readWatcherEvent, type ConnectResponse, type WatcherEvent } from './protocol.ts';

/** A frame length outside 0..limit: the stream is corrupt or hostile, and cannot be resynchronised. */
export class FrameLengthError extends Error {
  readonly length: number;
  readonly offset: number;
  constructor(length: number, offset: number, limit: number) {
    super(`frame length ${length} at stream offset ${offset} outside 0..${limit}`);
    this.name = 'FrameLengthError';
    this.length = length;
    this.offset = offset;
  }
}

/**
 * Splits a byte stream into frames. A frame cut by the end of a chunk is assembled in a buffer of
 * its own, allocated once its length is known, so a large frame read in many chunks is copied
 * once and the input chunk is never kept: the connection reads into one reused buffer.
 */
export class FrameDecoder {
  /** The frame being assembled (length prefix included), or null between frames. */
  private partial: Buffer | null = null;
  /** Bytes of `partial` filled so far. */
  private filled = 0;
  /** Stream offset of the first byte of the next chunk, for errors. */
  private received = 0;
  private readonly prefix = Buffer.alloc(4);

  constructor(readonly maxFrameBytes: number) {}

  /** Bytes held for a frame that has not fully arrived. */
  get buffered(): number {
    return this.filled;
  }

  /**
   * Feeds the first `length` bytes of `chunk` and calls `onFrame` with every frame they
   * complete, in order, as `buf[start, end)` (no view is made per frame): a frame that lies
   * whole in the chunk is in the chunk itself, valid until push returns. `onFrame` returns false
   * to stop (the connection ended): the rest is dropped. Throws FrameLengthError on an
   * impossible length.
   */
  push(chunk: Buffer, onFrame: (buf: Buffer, start: number, end: number) => boolean | void, length = chunk.length): void {
    const base = this.received;
    const end = length;
    this.received += end;
    let pos = 0;
    if (this.partial !== null) {
      pos = this.fill(chunk, 0, end, base);
      if (this.filled < this.partial.length) return;
      const whole = this.partial;
      this.partial = null;
      this.filled = 0;
      if (onFrame(whole, 4, whole.length) === false) return;
    }
    while (end - pos >= 4) {
      const len = chunk.readInt32BE(pos);
      if (len < 0 || len > this.maxFrameBytes) throw new FrameLengthError(len, base + pos, this.maxFrameBytes);
      if (end - pos - 4 < len) break;
      const start = pos + 4;
      pos = start + len;
      if (onFrame(chunk, start, pos) === false) return;
    }
    if (pos < end) {
      // The start of a frame: held in its own buffer (the chunk may be reused for the next read).
      this.partial = this.prefix;
      this.filled = 0;
      this.fill(chunk, pos, end, base);
    }
  }

  /**
   * Copies what `partial` still needs from chunk[from, end); once its length prefix is complete,
   * `partial` becomes a buffer of the whole frame. `base` is the stream offset of chunk[0].
   * Returns the position after the bytes taken.
   */
  private fill(chunk: Buffer, from: number, end: number, base: number): number {
    let pos = from;
    if (this.filled < 4) {
      const take = Math.min(4 - this.filled, end - pos);
      chunk.copy(this.prefix, this.filled, pos, pos + take);
      this.filled += take;
      pos += take;
      if (this.filled < 4) return pos;
      const len = this.prefix.readInt32BE(0);
      if (len < 0 || len > this.maxFrameBytes) {
        this.partial = null;
        this.filled = 0;
        throw new FrameLengthError(len, base + pos - 4, this.maxFrameBytes);
      }
      const whole = Buffer.allocUnsafe(4 + len);
      this.prefix.copy(whole, 0);
      this.partial = whole;
    }
    const partial = this.partial!;
    const take = Math.min(partial.length - this.filled, end - pos);
    chunk.copy(partial, this.filled, pos, pos + take);
    this.filled += take;
    return pos + take;
  }
}

/**
 * Consecutive replies mostly carry the same zxid (the server's last, unchanged by reads), so the
 * last one decoded is kept and reused instead of making a new bigint for each.
 */
let lastHi = 0;
let lastLo = 0;
let lastZxid = 0n;

function readZxid(r: JuteReader): bigint {
  if (r.remaining < 8) return r.readLong('ReplyHeader.zxid');
  const hi = r.buf.readInt32BE(r.pos);
  const lo = r.buf.readUInt32BE(r.pos + 4);
  if (hi !== lastHi || lo !== lastLo) {
    lastZxid = r.readLong('ReplyHeader.zxid');
    lastHi = hi;
    lastLo = lo;
  } else {
    r.pos += 8;
  }
  return lastZxid;
}

/** The first frame: a session (possibly timeOut 0: the session is gone), or a refusal. */
export type HandshakeAnswer = { kind: 'session'; response: ConnectResponse } | { kind: 'refused'; code: number };

/**
 * A server that refuses the session in its request pipeline (a read-only server asked for a
 * global session, for one) answers with a bare ReplyHeader {xid 0, zxid, err < 0} instead.
 * Throws JuteDecodeError for anything else that is not a ConnectResponse.
 */
export function decodeHandshake(frame: Buffer): HandshakeAnswer {
  if (frame.length === 16 && frame.readInt32BE(0) === 0 && frame.readInt32BE(12) < 0) return { kind: 'refused', code: frame.readInt32BE(12) };
  return { kind: 'session', response: readConnectResponse(new JuteReader(frame)) };
}

/**
 * A frame after the handshake: its ReplyHeader fields, what it is, and a reader at its body.
 * One object per frame: the message is the header (xid, zxid, err), so the client's reply path
 * allocates nothing more.
 */
export interface ServerMessage {
  kind: 'reply' | 'notification' | 'ping' | 'auth' | 'setWatches';
  xid: number;
  zxid: bigint;
  err: number;
  /** Positioned after the header (for a notification, after the event). */
  body: JuteReader;
  /** Only for notifications. */
  event?: WatcherEvent;
}

/**
 * The frame in frame[start, end) (offsets in errors count from `start`). Throws JuteDecodeError
 * (naming the field) for a header or notification that does not decode.
 */
export function decodeServerMessage(frame: Buffer, start = 0, end = frame.length): ServerMessage {
  const body = new JuteReader(frame, start, end, -start);
  const xid = body.readInt('ReplyHeader.xid');
  const zxid = readZxid(body);
  const err = body.readInt('ReplyHeader.err');
  switch (xid) {
    case Xid.notification:
      return { kind: 'notification', xid, zxid, err, body, event: readWatcherEvent(body) };
    case Xid.ping:
      return { kind: 'ping', xid, zxid, err, body };
    case Xid.auth:
      return { kind: 'auth', xid, zxid, err, body };
    case Xid.setWatches:
      return { kind: 'setWatches', xid, zxid, err, body };
    default:
      return { kind: 'reply', xid, zxid, err, body };
  }
}
