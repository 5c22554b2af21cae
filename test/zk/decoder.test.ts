// The pure decoder (src/zk/decoder.ts), without a socket: a byte stream cut anywhere gives the
// same frames, impossible lengths are refused with their stream offset, and every kind of
// server frame decodes to the message the connection routes on.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JuteDecodeError, type JuteWriter } from '../../src/zk/jute.ts';
import { FrameDecoder, FrameLengthError, decodeHandshake, decodeServerMessage } from '../../src/zk/decoder.ts';
import { framed } from './fixtures/scripted-server.ts';

const frame = framed;

const reply = (xid: number, err = 0, body?: (w: JuteWriter) => void): Buffer =>
  frame((w) => {
    w.writeInt(xid).writeLong(0x100000005n).writeInt(err);
    body?.(w);
  });

describe('FrameDecoder', () => {
  it('gives the same frames however the stream is cut, and keeps only the incomplete tail', () => {
    const stream = Buffer.concat([
      reply(1),
      reply(-2),
      reply(2, 0, (w) => w.writeString('/x')),
      frame(() => undefined),
      reply(-1, 0, (w) => w.writeInt(3).writeInt(3).writeString('/w')),
    ]);
    const whole: string[] = [];
    new FrameDecoder(1024).push(stream, (b, start, end) => void whole.push(b.toString('hex', start, end)));
    assert.equal(whole.length, 5);
    assert.equal(whole[3], '', 'an empty frame is a frame');
    for (const size of [1, 2, 3, 5, 7, 13]) {
      const d = new FrameDecoder(1024);
      const got: string[] = [];
      for (let at = 0; at < stream.length; at += size) {
        d.push(stream.subarray(at, at + size), (b, start, end) => void got.push(b.toString('hex', start, end)));
        assert.ok(d.buffered < 40, 'never more than one frame held');
      }
      assert.deepEqual(got, whole, `chunks of ${size}`);
      assert.equal(d.buffered, 0);
    }
  });

  it('assembles a frame cut across reads into one reused buffer, as the connection reads', () => {
    const big = reply(5, 0, (w) => w.writeBuffer(Buffer.alloc(3000, 7)));
    const stream = Buffer.concat([reply(1), big, reply(2), reply(3)]);
    for (const size of [1, 4, 7, 100, 1024]) {
      const d = new FrameDecoder(1 << 16);
      const read = Buffer.alloc(size);
      const got: string[] = [];
      for (let at = 0; at < stream.length; at += size) {
        const n = stream.copy(read, 0, at, at + size);
        d.push(read, (b, start, end) => void got.push(b.toString('hex', start, end)), n);
        // The next read overwrites the buffer: nothing decoded from it may depend on it now.
        read.fill(0xee);
      }
      assert.deepEqual(
        got,
        [reply(1), big, reply(2), reply(3)].map((f) => f.subarray(4).toString('hex')),
        `reads of ${size}`,
      );
      assert.equal(d.buffered, 0);
    }
  });

  it('refuses a negative or oversized length with its stream offset; a false from onFrame stops the rest', () => {
    const d = new FrameDecoder(100);
    const ok = reply(1);
    const bad = Buffer.alloc(4);
    bad.writeInt32BE(101);
    d.push(ok, () => undefined);
    assert.throws(
      () => d.push(bad, () => undefined),
      (e: unknown) => e instanceof FrameLengthError && e.length === 101 && e.offset === ok.length && /outside 0\.\.100/.test(e.message),
    );
    const neg = Buffer.alloc(4);
    neg.writeInt32BE(-1);
    assert.throws(() => new FrameDecoder(100).push(neg, () => undefined), FrameLengthError);
    const seen: number[] = [];
    const stop = new FrameDecoder(100);
    stop.push(Buffer.concat([reply(1), reply(2), reply(3)]), (b, start) => {
      seen.push(b.readInt32BE(start));
      return seen.length < 2;
    });
    assert.deepEqual(seen, [1, 2]);
    assert.equal(stop.buffered, 0, 'what followed the stop is dropped');
  });
});

describe('messages', () => {
  it('decodes the handshake: a session, a gone session (timeOut 0) and a refusal by error code', () => {
    const session = decodeHandshake(frame((w) => w.writeInt(0).writeInt(4000).writeLong(0x42n).writeBuffer(Buffer.alloc(16, 1)).writeBool(true)).subarray(4));
    assert.equal(session.kind, 'session');
    assert.ok(session.kind === 'session' && session.response.timeOut === 4000 && session.response.sessionId === 0x42n && session.response.readOnly);
    const gone = decodeHandshake(frame((w) => w.writeInt(0).writeInt(0).writeLong(0n).writeBuffer(Buffer.alloc(16))).subarray(4));
    assert.ok(gone.kind === 'session' && gone.response.timeOut === 0 && !gone.response.readOnly, 'no readOnly byte: read-write');
    assert.deepEqual(decodeHandshake(reply(0, -119).subarray(4)), { kind: 'refused', code: -119 });
    assert.throws(() => decodeHandshake(Buffer.from([0, 0, 0])), JuteDecodeError);
  });

  it('tells replies, pings, auth and setWatches replies, and notifications apart by xid', () => {
    const kinds = [reply(7), reply(-2), reply(-4, -115), reply(-8)].map((f) => {
      const m = decodeServerMessage(f.subarray(4));
      return [m.kind, m.xid, m.err, m.zxid];
    });
    assert.deepEqual(kinds, [
      ['reply', 7, 0, 0x100000005n],
      ['ping', -2, 0, 0x100000005n],
      ['auth', -4, -115, 0x100000005n],
      ['setWatches', -8, 0, 0x100000005n],
    ]);
    // A frame inside a larger buffer decodes the same, and offsets in errors count from its start.
    const inside = Buffer.concat([Buffer.alloc(9, 0xff), reply(7).subarray(4), Buffer.alloc(3, 0xff)]);
    const m = decodeServerMessage(inside, 9, inside.length - 3);
    assert.deepEqual([m.kind, m.xid, m.err, m.zxid, m.body.remaining], ['reply', 7, 0, 0x100000005n, 0]);
    assert.throws(
      () => decodeServerMessage(inside, 9, 9 + 14),
      (e: unknown) => e instanceof JuteDecodeError && e.field === 'ReplyHeader.err' && e.offset === 12,
    );
    // Replies carrying the same zxid share it; a new one is read, never a stale one returned.
    const zxids = [5n, 5n, 6n, 5n, 2n ** 40n + 1n, 2n ** 40n + 1n, -1n].map((z) => {
      const f = frame((w) => w.writeInt(1).writeLong(z).writeInt(0));
      return decodeServerMessage(f.subarray(4)).zxid;
    });
    assert.deepEqual(zxids, [5n, 5n, 6n, 5n, 2n ** 40n + 1n, 2n ** 40n + 1n, -1n]);
    const n = decodeServerMessage(reply(-1, 0, (w) => w.writeInt(4).writeInt(3).writeString('/kids')).subarray(4));
    assert.deepEqual([n.kind, n.event], ['notification', { type: 4, state: 3, path: '/kids' }]);
    const body = decodeServerMessage(reply(9, 0, (w) => w.writeString('/created')).subarray(4)).body;
    assert.equal(body.readUString(), '/created', 'the body reader starts after the header');
    assert.throws(
      () => decodeServerMessage(Buffer.alloc(14)),
      (e: unknown) => e instanceof JuteDecodeError && e.field === 'ReplyHeader.err',
    );
    assert.throws(
      () => decodeServerMessage(reply(-1).subarray(4)),
      (e: unknown) => e instanceof JuteDecodeError && e.field === 'WatcherEvent.type',
    );
  });
});
