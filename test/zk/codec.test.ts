// The jute codec and the protocol records: round trips, bounds checks, and a fuzz run of
// random and mutated frames through every decoder (and through a live client connection to a
// hostile server) that must end in typed errors only: no crash, no hang, no huge allocation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { JuteDecodeError, JuteReader, JuteUnderflowError, JuteWriter } from '../../src/zk/jute.ts';
import { readStat, writeStat, type Stat } from '../../src/zk/records.ts';
import {
  OpCode,
  readConnectResponse,
  readCreate2Response,
  readGetACLResponse,
  readGetChildren2Response,
  readGetDataResponse,
  readMultiResponse,
  readWatcherEvent,
  readWhoAmIResponse,
  writeConnectRequest,
  writeMultiEnd,
  writeMultiHeader,
} from '../../src/zk/protocol.ts';
import { createClient, parseConnectString, validatePath, InvalidArgumentError, ZooKeeperError } from '../../src/zk/index.ts';
import { WatchManager, ancestorsAndSelf } from '../../src/zk/watches.ts';
import { decodeServerMessage } from '../../src/zk/decoder.ts';
// The lab's seeded PRNG (mulberry32), so a failing case can be replayed from its seed.
import { prng } from '../../src/lab/scenario/prng.ts';

const stat: Stat = {
  czxid: 0x100000002,
  mzxid: 0x100000003,
  ctime: 1_700_000_000_000,
  mtime: 1_700_000_000_001,
  version: 3,
  cversion: 1,
  aversion: 0,
  ephemeralOwner: 0x1000000aabbccn,
  dataLength: 5,
  numChildren: 2,
  pzxid: 0x100000004,
};

function frame(build: (w: JuteWriter) => void): Buffer {
  const w = new JuteWriter(64);
  build(w);
  return Buffer.from(w.toBuffer());
}

/** Valid samples of every reply body the client decodes, with their decoder. */
const samples: { name: string; body: Buffer; decode: (r: JuteReader) => unknown }[] = [
  {
    name: 'ConnectResponse',
    body: frame((w) => w.writeInt(0).writeInt(6000).writeLong(0x100000abcn).writeBuffer(Buffer.alloc(16, 1)).writeBool(false)),
    decode: readConnectResponse,
  },
  { name: 'ReplyHeader', body: frame((w) => w.writeInt(7).writeLong(9n).writeInt(0)), decode: (r) => decodeServerMessage(r.buf.subarray(r.pos)) },
  {
    name: 'Notification',
    body: frame((w) => w.writeInt(-1).writeLong(9n).writeInt(0).writeInt(3).writeInt(3).writeString('/a/b')),
    decode: (r) => decodeServerMessage(r.buf.subarray(r.pos)),
  },
  { name: 'WatcherEvent', body: frame((w) => w.writeInt(3).writeInt(3).writeString('/a/b')), decode: readWatcherEvent },
  { name: 'Create2Response', body: frame((w) => (w.writeString('/x-0000000001'), writeStat(w, stat))), decode: readCreate2Response },
  { name: 'GetDataResponse', body: frame((w) => (w.writeBuffer(Buffer.from('hello')), writeStat(w, stat))), decode: readGetDataResponse },
  {
    name: 'GetChildren2Response',
    body: frame((w) => (w.writeVector(['a', 'b'], (ww, v) => void ww.writeString(v)), writeStat(w, stat))),
    decode: readGetChildren2Response,
  },
  {
    name: 'GetACLResponse',
    body: frame((w) => {
      w.writeInt(1).writeInt(31).writeString('world').writeString('anyone');
      writeStat(w, stat);
    }),
    decode: readGetACLResponse,
  },
  {
    name: 'WhoAmIResponse',
    body: frame((w) => w.writeInt(1).writeString('ip').writeString('127.0.0.1')),
    decode: readWhoAmIResponse,
  },
  {
    name: 'MultiResponse',
    body: frame((w) => {
      writeMultiHeader(w, OpCode.create, false, 0);
      w.writeString('/a');
      writeMultiHeader(w, OpCode.create2, false, 0);
      w.writeString('/b');
      writeStat(w, stat);
      writeMultiHeader(w, OpCode.setData, false, 0);
      writeStat(w, stat);
      writeMultiHeader(w, OpCode.delete, false, 0);
      writeMultiHeader(w, OpCode.check, false, 0);
      writeMultiHeader(w, OpCode.getData, false, 0);
      w.writeBuffer(Buffer.from('d'));
      writeStat(w, stat);
      writeMultiHeader(w, OpCode.getChildren, false, 0);
      w.writeVector(['k'], (ww, v) => void ww.writeString(v));
      writeMultiHeader(w, OpCode.error, false, -101);
      w.writeInt(-101);
      writeMultiEnd(w);
    }),
    decode: (r) => readMultiResponse(r, 8),
  },
];

describe('jute codec', () => {
  it('round-trips every primitive and refuses lengths it cannot satisfy', () => {
    const w = new JuteWriter(4);
    w.writeByte(-5)
      .writeBool(true)
      .writeInt(-123456)
      .writeLong(-(2n ** 63n))
      .writeLong(2 ** 52);
    w.writeBuffer(Buffer.from([1, 2, 3]))
      .writeBuffer(null)
      .writeString('zk✓')
      .writeString(null);
    w.writeVector([1, 2], (ww, v) => void ww.writeInt(v));
    const r = new JuteReader(w.toBuffer());
    assert.equal(r.readByte(), -5);
    assert.equal(r.readBool(), true);
    assert.equal(r.readInt(), -123456);
    assert.equal(r.readLong(), -(2n ** 63n));
    assert.equal(r.readLongNumber(), 2 ** 52);
    assert.deepEqual(r.readBuffer(), Buffer.from([1, 2, 3]));
    assert.equal(r.readBuffer(), null);
    assert.equal(r.readString(), 'zk✓');
    assert.equal(r.readString(), null);
    assert.deepEqual(
      r.readVector('v', 4, (rr) => rr.readInt()),
      [1, 2],
    );
    assert.equal(r.remaining, 0);

    // A huge length in a short input fails before any allocation, naming field and offset.
    const huge = new JuteReader(
      frame((ww) => ww.writeInt(0x7fffffff).writeInt(1)),
      0,
      undefined,
      100,
    );
    assert.throws(
      () => huge.readBuffer('GetDataResponse.data'),
      (e: unknown) => e instanceof JuteUnderflowError && e.field === 'GetDataResponse.data' && e.offset === 104,
    );
    const negative = new JuteReader(frame((ww) => ww.writeInt(-7)));
    assert.throws(
      () => negative.readString('path'),
      (e: unknown) => e instanceof JuteDecodeError && /-7/.test(e.message),
    );
    const manyItems = new JuteReader(frame((ww) => ww.writeInt(1_000_000_000)));
    assert.throws(() => manyItems.readVector('children', 4, (rr) => rr.readUString()), JuteUnderflowError);
    assert.throws(() => new JuteReader(frame((ww) => ww.writeInt(-1))).readUString('path'), /got null/);
  });

  it('reads every long exactly and writes every string as UTF-8, on the fast paths and off them', () => {
    const longs = [
      0n,
      1n,
      -1n,
      2n ** 32n,
      -(2n ** 32n),
      2n ** 53n - 1n,
      -(2n ** 53n),
      2n ** 53n,
      -(2n ** 53n) - 1n,
      0x1fffffn << 32n,
      0x200000n << 32n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      0x01000000000000abn,
    ];
    const lw = new JuteWriter(8);
    for (const v of longs) lw.writeLong(v);
    const bytes = lw.toBuffer();
    const lr = new JuteReader(bytes);
    longs.forEach((v, i) => assert.equal(lr.readLong(), bytes.readBigInt64BE(i * 8), `long ${v}`));
    const strings = ['', '/', '/zk/a-0000000001', 'x'.repeat(256), 'x'.repeat(257), '/é', `/${'a'.repeat(255)}✓`, '/\u{1f600}', '/\ud800', 'a\u007f'];
    for (const v of strings) {
      const w = new JuteWriter(2);
      w.writeString(v);
      const expected = Buffer.from(v, 'utf8');
      const out = w.toBuffer();
      assert.equal(out.readInt32BE(0), expected.length, `length of ${JSON.stringify(v)}`);
      assert.deepEqual(out.subarray(4), expected, `bytes of ${JSON.stringify(v)}`);
    }
  });

  it('decodes the records the server sends and ConnectRequest as the server reads it', () => {
    const c = readConnectResponse(new JuteReader(samples[0].body));
    assert.equal(c.timeOut, 6000);
    assert.equal(c.sessionId, 0x100000abcn);
    assert.equal(c.readOnly, false);
    assert.deepEqual(readStat(new JuteReader(frame((w) => writeStat(w, stat)))), stat);
    const multi = readMultiResponse(new JuteReader(samples.at(-1)!.body), 8);
    assert.deepEqual(
      multi.map((m) => m.op),
      ['create', 'create', 'setData', 'delete', 'check', 'getData', 'getChildren', 'error'],
    );
    assert.deepEqual(multi[7], { op: 'error', code: -101 });
    assert.throws(() => readMultiResponse(new JuteReader(samples.at(-1)!.body), 3), /more results than ops/);

    const req = frame((w) =>
      writeConnectRequest(w, { protocolVersion: 0, lastZxidSeen: 5n, timeOut: 4000, sessionId: 0n, passwd: Buffer.alloc(16), readOnly: true }),
    );
    const r = new JuteReader(req);
    assert.deepEqual([r.readInt(), r.readLong(), r.readInt(), r.readLong(), r.readBuffer()?.length, r.readBool(), r.remaining], [0, 5n, 4000, 0n, 16, true, 0]);
  });

  it('survives a fuzz run of random and mutated frames with typed errors only', () => {
    const rand = prng(0x5eed);
    const cases = 20_000;
    let ok = 0;
    let typed = 0;
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < cases; i++) {
      const sample = samples[i % samples.length];
      let body: Buffer;
      const kind = rand();
      if (kind < 0.25) {
        body = Buffer.alloc(Math.floor(rand() * 96));
        for (let j = 0; j < body.length; j++) body[j] = Math.floor(rand() * 256);
      } else if (kind < 0.5) {
        body = sample.body.subarray(0, Math.floor(rand() * sample.body.length));
      } else {
        body = Buffer.from(sample.body);
        const flips = 1 + Math.floor(rand() * 4);
        for (let f = 0; f < flips; f++) {
          const at = Math.floor(rand() * body.length);
          // Bias towards the values that break length fields: 0xff (negative), 0x7f (huge).
          const choice = rand();
          body[at] = choice < 0.3 ? 0xff : choice < 0.5 ? 0x7f : Math.floor(rand() * 256);
        }
      }
      try {
        sample.decode(new JuteReader(body));
        ok++;
      } catch (e) {
        if (!(e instanceof JuteDecodeError)) throw new Error(`case ${i} (${sample.name}, ${body.toString('hex')}): untyped ${String(e)}`);
        typed++;
      }
    }
    assert.equal(ok + typed, cases);
    assert.ok(typed > cases / 4, `most mangled frames are refused (${typed})`);
    // No decoded length was trusted: nothing close to a large buffer was allocated.
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  });

  it('a client facing a server that sends garbage fails requests with typed errors and does not crash', async () => {
    const rand = prng(42);
    const dataReply = samples.find((x) => x.name === 'GetDataResponse')!.body;
    const withLength = (b: Buffer): Buffer => Buffer.concat([frame((w) => w.writeInt(b.length)), b]);
    /** The hostile server answers each request with its xid and a mangled body, a bad error code or raw noise. */
    const reply = (xid: number): Buffer => {
      const k = rand();
      if (k < 0.6) {
        const body = Buffer.from(dataReply);
        for (let f = 0; f < 3; f++) body[Math.floor(rand() * body.length)] = rand() < 0.5 ? 0xff : Math.floor(rand() * 256);
        const cut = rand() < 0.3 ? body.subarray(0, Math.floor(rand() * body.length)) : body;
        return withLength(Buffer.concat([frame((w) => w.writeInt(xid).writeLong(1n).writeInt(0)), cut]));
      }
      if (k < 0.8)
        return withLength(
          frame((w) =>
            w
              .writeInt(xid)
              .writeLong(1n)
              .writeInt(-Math.floor(rand() * 130)),
          ),
        );
      const noise = Buffer.alloc(Math.floor(rand() * 40));
      for (let j = 0; j < noise.length; j++) noise[j] = Math.floor(rand() * 256);
      return noise;
    };
    const sockets = new Set<Socket>();
    const server: Server = createServer((sock) => {
      sockets.add(sock);
      sock.on('error', () => undefined);
      sock.on('close', () => sockets.delete(sock));
      let handshaken = false;
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
          const f = buf.subarray(4, 4 + buf.readInt32BE(0));
          buf = buf.subarray(4 + f.length);
          if (!handshaken) {
            handshaken = true;
            sock.write(withLength(frame((w) => w.writeInt(0).writeInt(4000).writeLong(0x42n).writeBuffer(Buffer.alloc(16, 9)).writeBool(false))));
            continue;
          }
          const xid = f.readInt32BE(0);
          if (xid > 0) sock.write(reply(xid));
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const zk = createClient(`127.0.0.1:${port}`, { sessionTimeoutMs: 4000, requestTimeoutMs: 500, localExpiry: false });
    const requests = 300;
    try {
      await zk.connect({ timeoutMs: 5000 });
      const outcomes = new Map<string, number>();
      for (let i = 0; i < requests; i++) {
        try {
          await zk.getData('/x');
          outcomes.set('resolved', (outcomes.get('resolved') ?? 0) + 1);
        } catch (e) {
          const typedError = e instanceof ZooKeeperError || e instanceof JuteDecodeError;
          assert.ok(typedError, `request ${i}: untyped ${String(e)}`);
          outcomes.set((e as Error).name, (outcomes.get((e as Error).name) ?? 0) + 1);
        }
      }
      // Every request settled (a value or a typed error); decode errors, server error codes and
      // broken framing all occurred, and the client is still usable.
      assert.equal(
        [...outcomes.values()].reduce((a, b) => a + b, 0),
        requests,
      );
      assert.ok(outcomes.has('JuteUnderflowError') || outcomes.has('JuteDecodeError'), JSON.stringify([...outcomes]));
      assert.ok(outcomes.has('ConnectionLossError'), JSON.stringify([...outcomes]));
      assert.ok(['connected', 'suspended'].includes(zk.state), zk.state);
    } finally {
      await zk.close({ timeoutMs: 200 });
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe('paths and watch table', () => {
  it('parses connect strings with ports, IPv6 and a chroot; rejects bad ones by name', () => {
    assert.deepEqual(parseConnectString('a:1,b,[::1]:3/app/x'), {
      servers: [
        { host: 'a', port: 1 },
        { host: 'b', port: 2181 },
        { host: '::1', port: 3 },
      ],
      chroot: '/app/x',
    });
    assert.equal(parseConnectString('h:2181/').chroot, '');
    assert.throws(() => parseConnectString('h:99999'), InvalidArgumentError);
    assert.throws(() => parseConnectString('/only-chroot'), /no servers/);
    assert.throws(() => parseConnectString('h/bad//chroot'), /chroot/);
  });

  it('validates paths like the server does', () => {
    for (const ok of ['/', '/a', '/a/b-c.d', '/a/ü']) validatePath(ok);
    validatePath('/a/', 'path', true);
    for (const bad of ['', 'a', '/a/', '/a//b', '/a/./b', '/a/..', '/a\u0000b']) {
      assert.throws(() => validatePath(bad), InvalidArgumentError, JSON.stringify(bad));
    }
  });

  it('dispatches each event to the right watches, once, and keeps persistent ones', () => {
    const wm = new WatchManager();
    const calls: string[] = [];
    const l = (name: string) => () => void calls.push(name);
    const data = l('data');
    const rec = l('rec');
    wm.add('data', '/a/b', data);
    wm.add('exist', '/a/b', data);
    wm.add('child', '/a/b', l('child'));
    wm.add('persistentRecursive', '/a', rec);
    wm.add('persistent', '/a/b', l('persistent'));
    for (const f of wm.dispatch({ type: 'dataChanged', path: '/a/b' })) f({ type: 'dataChanged', path: '/a/b' });
    assert.deepEqual(calls, ['data', 'persistent', 'rec']);
    calls.length = 0;
    for (const f of wm.dispatch({ type: 'deleted', path: '/a/b' })) f({ type: 'deleted', path: '/a/b' });
    assert.deepEqual(calls, ['child', 'persistent', 'rec']);
    assert.deepEqual(wm.paths(), { data: [], exist: [], child: [], persistent: ['/a/b'], persistentRecursive: ['/a'] });
    assert.deepEqual(ancestorsAndSelf('/x/y'), ['/x/y', '/x', '/']);
  });
});
