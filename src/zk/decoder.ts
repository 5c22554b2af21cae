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

/** Splits a byte stream into frames. Keeps only the incomplete tail between chunks. */
export class FrameDecoder {
  private tail: Buffer = Buffer.alloc(0);
  /** Stream offset of the first byte of `tail`, for errors. */
  private consumed = 0;

  constructor(readonly maxFrameBytes: number) {}

  /** Bytes held for a frame that has not fully arrived. */
  get buffered(): number {
    return this.tail.length;
  }

  /**
   * Feeds one chunk and calls `onFrame` with every frame it completes, in order. `onFrame`
   * returns false to stop (the connection ended): the rest is dropped. Frames are views into the
   * input and are valid until the next push. Throws FrameLengthError on an impossible length.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => boolean | void): void {
    const buf = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    let pos = 0;
    while (buf.length - pos >= 4) {
      const len = buf.readInt32BE(pos);
      if (len < 0 || len > this.maxFrameBytes) throw new FrameLengthError(len, this.consumed + pos, this.maxFrameBytes);
      if (buf.length - pos - 4 < len) break;
      const frame = buf.subarray(pos + 4, pos + 4 + len);
      pos += 4 + len;
      if (onFrame(frame) === false) {
        this.tail = Buffer.alloc(0);
        return;
      }
    }
    this.consumed += pos;
    // Copying the tail detaches it from the large chunk it came from.
    this.tail = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
  }
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

/** Throws JuteDecodeError (naming the field) for a header or notification that does not decode. */
export function decodeServerMessage(frame: Buffer): ServerMessage {
  const body = new JuteReader(frame);
  const xid = body.readInt('ReplyHeader.xid');
  const zxid = body.readLong('ReplyHeader.zxid');
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
