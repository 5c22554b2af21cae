// A reply the server holds until its next request. ZooKeeper 3.8.0's CommitProcessor can miss
// the wake-up for a commit (ZOOKEEPER-4537; docs/client.md) and then answers only when another
// request reaches it: a client that waits silently waits for its own next ping, up to 10 s. The
// client pings once a request is overdue on a silent connection (options.overduePingMs). The
// scripted server plays the 3.8.0 server exactly: it holds the reply until it reads a ping, then
// sends the reply and the ping's reply, in that order. The real server (a paused follower) shows
// that pings sent behind a write are answered after it and leave the session connected.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { InvalidArgumentError, createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { OpCode } from '../../src/zk/protocol.ts';
import { ScriptedConnection, ScriptedServer } from './fixtures/scripted-server.ts';
import { until } from '../until.ts';

describe('overdue pings against a scripted server', () => {
  const servers: ScriptedServer[] = [];
  const clients: ZooKeeperClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close({ timeoutMs: 100 });
    for (const s of servers.splice(0)) await s.close();
  });

  /** A client on a scripted server that granted 30 s: its regular ping is 10 s after the last send. */
  async function connected(overduePingMs?: number): Promise<{ zk: ZooKeeperClient; conn: ScriptedConnection }> {
    const s = await ScriptedServer.start();
    servers.push(s);
    const zk = createClient(s.address, { sessionTimeoutMs: 30_000, overduePingMs });
    clients.push(zk);
    const p = zk.connect();
    const conn = await s.connection();
    await conn.connectRequest;
    conn.grant({ timeOut: 30_000, sessionId: 0x99n });
    await p;
    assert.equal(zk.timing.pingIntervalMs, 10_000);
    return { zk, conn };
  }

  it('a reply held until the server reads a ping: the client pings while the request is overdue, and gets the reply', async () => {
    const { zk, conn } = await connected(100);
    conn.answerPings = false;
    const write = zk.setData('/held', 'x');
    const req = await conn.request('setData');
    assert.equal(req.type, OpCode.setData);
    // Waited for far less than the 10 s after which the regular ping would come.
    await conn.ping('a ping while the reply is held', 5000);
    conn.write(
      Buffer.concat([
        ScriptedConnection.replyFrame(req.xid, { zxid: 7n, body: (w) => ScriptedConnection.stat(w) }),
        ScriptedConnection.replyFrame(-2, { zxid: 7n }),
      ]),
    );
    const stat = await write;
    assert.equal(stat.version, 0);
    assert.ok(zk.overduePings >= 1, 'counted');
    assert.equal(zk.state, 'connected');
  });

  it('a server that stays silent gets one ping per silent period, each answered; replies and pings then share the stream', async () => {
    const { zk, conn } = await connected(50);
    const reads = [zk.getData('/a'), zk.getData('/b')];
    const r1 = await conn.request('getData /a');
    const r2 = await conn.request('getData /b');
    for (let i = 1; i <= 3; i++) assert.equal(await conn.ping(`overdue ping ${i}`, 5000), i);
    assert.ok(zk.overduePings >= 3);
    conn.reply(r1.xid, { body: (w) => void (w.writeBuffer(Buffer.from('A')), ScriptedConnection.stat(w)) });
    conn.reply(r2.xid, { body: (w) => void (w.writeBuffer(Buffer.from('B')), ScriptedConnection.stat(w)) });
    assert.deepEqual(
      (await Promise.all(reads)).map((r) => r.data.toString()),
      ['A', 'B'],
    );
    // Idle again: the next request still gets its own reply.
    const next = zk.exists('/c');
    const r3 = await conn.request('exists');
    conn.reply(r3.xid, { err: -101 });
    assert.equal(await next, null);
  });

  it('overduePingMs takes 0 (never) or a positive duration; anything else is an InvalidArgumentError', () => {
    for (const bad of [-1, 1.5, Number.NaN, '100', 2 ** 31]) {
      assert.throws(
        () => createClient('127.0.0.1:1', { overduePingMs: bad as number }),
        (e: unknown) => e instanceof InvalidArgumentError && /overduePingMs/.test(e.message),
      );
    }
    for (const ok of [0, 1, 250]) assert.equal(createClient('127.0.0.1:1', { overduePingMs: ok }).state, 'idle');
  });
});

describe('overdue pings on a real server', () => {
  let ens: Ensemble;
  before(async () => {
    ens = await Ensemble.start({ size: 3, tickTime: 500 });
  });
  after(async () => {
    await ens.close();
  });

  it('a write outstanding on a paused follower: the pings sent behind it are answered on resume, the write succeeds, the session stays connected', async () => {
    const [follower] = await ens.followerIds();
    const zk = createClient(ens.address(follower!), { sessionTimeoutMs: 6000, overduePingMs: 50 });
    try {
      await zk.connect();
      await zk.create('/overdue', 'a');
      const events: string[] = [];
      zk.on('suspended', () => events.push('suspended'));
      await ens.pause(follower!);
      let write: Promise<{ version: number }> | undefined;
      try {
        write = zk.setData('/overdue', 'b');
        await until('two overdue pings', () => zk.overduePings >= 2, 3000);
      } finally {
        await ens.resume(follower!);
      }
      assert.equal((await write!).version, 1);
      assert.equal((await zk.getData('/overdue')).data.toString(), 'b');
      assert.equal(zk.state, 'connected');
      assert.deepEqual(events, [], 'no connection loss: every ping was answered');
    } finally {
      await zk.close();
    }
  });
});
