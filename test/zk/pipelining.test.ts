// Many requests in flight on one connection, with the byte stream cut where the test says: a
// scripted server (test/zk/fixtures/scripted-server.ts) holds every request until all have
// arrived, then answers them in order in one write, or cut so that each reply is split between
// two reads (the cut moving through the length prefix, the header and the body). The client reads
// into one reused buffer, so a frame split across reads and a reply that outlives its read are
// the cases that could go wrong. Against real servers: operations.test.ts ("requests issued in
// one tick ...").
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { JuteReader } from '../../src/zk/jute.ts';
import { OpCode } from '../../src/zk/protocol.ts';
import { ScriptedConnection, ScriptedServer } from './fixtures/scripted-server.ts';

let server: ScriptedServer;
let zk: ZooKeeperClient;
let conn: ScriptedConnection;

before(async () => {
  server = await ScriptedServer.start();
  zk = createClient(server.address, { sessionTimeoutMs: 30_000 });
  const connecting = zk.connect();
  conn = await server.connection();
  await conn.connectRequest;
  conn.grant({ timeOut: 30_000, sessionId: 0x77n });
  await connecting;
});

after(async () => {
  await zk.close({ timeoutMs: 100 });
  await server.close();
});

/** getData's reply: `data`, then a Stat whose version says which reply it is. */
function dataReply(xid: number, data: Buffer, version: number): Buffer {
  return ScriptedConnection.replyFrame(xid, {
    zxid: BigInt(0x100 + version),
    body: (w) => {
      w.writeBuffer(data);
      for (let i = 0; i < 4; i++) w.writeLong(0n);
      w.writeInt(version).writeInt(0).writeInt(0).writeLong(0n).writeInt(data.length).writeInt(0).writeLong(0n);
    },
  });
}

/** Issues getData for each path at once and returns the calls and the requests as the server read them. */
async function outstanding(paths: string[]): Promise<{ calls: Promise<{ data: Buffer; version: number }>[]; xids: number[] }> {
  const calls = paths.map((p) => zk.getData(p).then((r) => ({ data: r.data, version: r.stat.version })));
  const xids: number[] = [];
  for (const want of paths) {
    const req = await conn.request(`getData ${want}`);
    assert.equal(req.type, OpCode.getData);
    assert.equal(new JuteReader(req.body).readString(), want, 'requests reach the server in the order they were issued');
    if (xids.length > 0) assert.ok(req.xid > xids[xids.length - 1]!, 'xids increase');
    xids.push(req.xid);
  }
  return { calls, xids };
}

describe('pipelining against a scripted server', () => {
  it('64 requests outstanding, all replies in one write (a 200 KiB one among them): each reaches its own request', async () => {
    const n = 64;
    const paths = Array.from({ length: n }, (_, i) => `/p/a${i}`);
    const { calls, xids } = await outstanding(paths);
    // Nothing was answered yet: every request really was in flight at once.
    const data = (i: number): Buffer => (i === 20 ? Buffer.alloc(200 * 1024, i) : Buffer.from(`a${i}`));
    conn.write(Buffer.concat(xids.map((xid, i) => dataReply(xid, data(i), i))));
    const got = await Promise.all(calls);
    got.forEach((r, i) => {
      assert.equal(r.version, i, `reply ${i} went to request ${i}`);
      assert.ok(r.data.equals(data(i)), `data of reply ${i}`);
    });
  });

  it('each reply split between two reads, the cut moving through length prefix, header and body', async () => {
    const n = 40;
    const paths = Array.from({ length: n }, (_, i) => `/p/b${i}`);
    const { calls, xids } = await outstanding(paths);
    const frames = xids.map((xid, i) => dataReply(xid, Buffer.from(`b${i}`.repeat(3)), i));
    // Write k holds the rest of reply k-1 and the first cut(k) bytes of reply k, and is written
    // only once reply k-1 has been delivered: its read is over, so reply k straddles two reads.
    const cut = (k: number): number => 1 + (k % (frames[k]!.length - 1));
    conn.write(frames[0]!.subarray(0, cut(0)));
    for (let k = 1; k <= n; k++) {
      const rest = frames[k - 1]!.subarray(cut(k - 1));
      conn.write(k < n ? Buffer.concat([rest, frames[k]!.subarray(0, cut(k))]) : rest);
      const r = await calls[k - 1]!;
      assert.equal(r.version, k - 1);
      assert.equal(r.data.toString(), `b${k - 1}`.repeat(3));
    }
    const cuts = new Set(frames.map((_, k) => cut(k)));
    for (const c of [1, 3, 4, 5, 8, 12, 20]) assert.ok(cuts.has(c), `a cut after byte ${c}`);
  });

  it('the data of a reply stays intact once the next read reuses the read buffer', async () => {
    // The reply callback issues the next request at once (the first write after a read goes out
    // immediately); its answer arrives in a later read into the same buffer.
    const first = zk.getData('/p/c0').then(async (r) => {
      const again = zk.getData('/p/c1');
      const req = await conn.request('getData /p/c1');
      conn.reply(req.xid, { body: (w) => void (w.writeBuffer(Buffer.alloc(64, 0x33)), ScriptedConnection.stat(w)) });
      return [r.data, (await again).data];
    });
    const req = await conn.request('getData /p/c0');
    conn.reply(req.xid, { body: (w) => void (w.writeBuffer(Buffer.alloc(64, 0x11)), ScriptedConnection.stat(w)) });
    const [a, b] = await first;
    assert.ok(a!.equals(Buffer.alloc(64, 0x11)) && b!.equals(Buffer.alloc(64, 0x33)));
  });
});
