// endSession on a real 3-server ensemble: a session whose holder is alive and reconnects at once
// (the wedged-but-heartbeating leader of the seed) is ended for good, wherever the holder is
// connected, and the holder is told its session expired. The race it closes: the holder, kicked
// off the closer's server by the attach, reconnects there and either pre-empts the close or keeps
// a connection that survives it (ZooKeeper closes the other servers' connections only).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '../until.ts';
import { BlackHole } from './fixtures/tcp.ts';
import {
  ConnectionLossError,
  EndSessionTimeoutError,
  InvalidArgumentError,
  OperationTimeoutError,
  SessionExpiredError,
  createClient,
  endSession,
  type ClientState,
  type ZooKeeperClient,
} from '../../src/zk/index.ts';

describe('endSession', () => {
  let ens: Ensemble;
  let observer: ZooKeeperClient;
  before(async () => {
    ens = await Ensemble.start({ size: 3, tickTime: 250 });
    observer = createClient(ens.connectString, { sessionTimeoutMs: 6000 });
    await observer.connect({ timeoutMs: 15_000 });
  });
  after(async () => {
    await observer?.close();
    await ens?.close();
  });

  /** A holder pinned to one server, so that every reconnect goes back to it. */
  async function holder(serverId: number, path: string): Promise<{ c: ZooKeeperClient; states: ClientState[] }> {
    const c = createClient(ens.address(serverId), { sessionTimeoutMs: 6000, localExpiry: false });
    const states: ClientState[] = [];
    for (const ev of ['suspended', 'reconnected', 'expired'] as const) c.on(ev, () => void states.push(c.state));
    await c.connect({ timeoutMs: 15_000 });
    await c.create(path, 'held', { mode: 'ephemeral' });
    return { c, states };
  }

  it("ends a live, reconnecting holder's session through its own server: ephemerals go, the holder learns it expired", async () => {
    // The attach kicks the holder off server 1, which it reconnects to at once: the case where a
    // plain attach-and-close left the session alive, or a connection serving a closed session.
    for (let round = 0; round < 5; round++) {
      const path = `/end-same-${round}`;
      const { c, states } = await holder(1, path);
      const order = [1, 2, 3].map((id) => ens.address(id)).join(',');
      const r = await endSession(order, c.sessionId, c.sessionPassword, { timeoutMs: 20_000 });
      assert.equal(r.outcome, 'closed', `round ${round}`);
      // In any order: when the holder's reconnect drops our handshake on server 1, the close goes
      // through another server and server 1 is confirmed last.
      assert.deepEqual([...r.confirmedBy].sort(), [1, 2, 3].map((id) => ens.address(id)).sort());
      assert.deepEqual(r.unreachable, []);
      assert.equal(await observer.exists(path), null, `round ${round}: the ephemeral went with the session`);
      await holderLearns(c, `${path}-after`, `round ${round}`);
      assert.ok(states.includes('expired'));
      await c.close();
    }
  });

  /**
   * The holder learns its session is over by itself (its connection closed, its reconnect told
   * "expired"), or, if its connection outlived the session on a server that lost track of it, at
   * its next write, which the leader answers SessionExpired. Either way it ends in `expired`.
   */
  async function holderLearns(c: ZooKeeperClient, probe: string, what: string, watcher: ZooKeeperClient = observer): Promise<void> {
    // SessionExpired: told at once; ConnectionLoss: the leader dropped it; OperationTimeout: the
    // holder was still reconnecting when the request's own deadline passed (a loaded machine).
    await assert.rejects(
      c.create(probe),
      (e: unknown) => e instanceof SessionExpiredError || e instanceof ConnectionLossError || e instanceof OperationTimeoutError,
      `${what}: a write on the ended session`,
    );
    await until(`${what}: the holder to learn its session expired`, () => c.state === 'expired', 20_000);
    await watcher.sync('/');
    assert.equal(await watcher.exists(probe), null, `${what}: nothing written on the ended session`);
  }

  it("ends it through another server than the holder's", async () => {
    const { c } = await holder(2, '/end-other');
    const r = await endSession(`${ens.address(3)},${ens.address(1)},${ens.address(2)}`, c.sessionId, c.sessionPassword);
    assert.equal(r.outcome, 'closed');
    assert.equal(r.confirmedBy.length, 3);
    assert.equal(await observer.exists('/end-other'), null);
    await holderLearns(c, '/end-other-after', 'another server');
    await c.close();
  });

  it('says alreadyEnded for a session that is gone, and closes nothing', async () => {
    const c = createClient(ens.connectString, { sessionTimeoutMs: 6000 });
    await c.connect({ timeoutMs: 15_000 });
    const id = c.sessionId;
    const pwd = c.sessionPassword;
    await c.close();
    const r = await endSession(ens.connectString, id, pwd);
    assert.equal(r.outcome, 'alreadyEnded');
    assert.equal(r.confirmedBy.length, 3);
    // One attach per server, more only where a handshake was dropped or timed out and retried.
    assert.ok(r.attaches >= 3, `${r.attaches} attaches`);
  });

  it('works with a server down, and names it', async () => {
    const { c } = await holder(1, '/end-one-down');
    await ens.kill(3);
    try {
      const r = await endSession(ens.connectString, c.sessionId, c.sessionPassword, { connectTimeoutMs: 1000 });
      assert.equal(r.outcome, 'closed');
      assert.deepEqual(r.unreachable, [ens.address(3)]);
      assert.equal(r.confirmedBy.length, 2);
      assert.equal(await observer.exists('/end-one-down'), null);
      await holderLearns(c, '/end-one-down-after', 'one server down');
    } finally {
      await c.close();
      await ens.startServer(3);
      await ens.waitForQuorum();
    }
  });

  it('retries a server that accepts TCP but does not serve until the deadline: not "unreachable"', async () => {
    // A black hole in the list stands for a server that is electing, paused or waiting on a dead
    // leader: it accepts connections and never answers a session handshake.
    const hole = await BlackHole.start();
    try {
      const { c } = await holder(2, '/end-not-serving');
      const err = await endSession(`${ens.connectString},${hole.address}`, c.sessionId, c.sessionPassword, { timeoutMs: 3000, connectTimeoutMs: 500 }).then(
        () => assert.fail('a server that never confirmed cannot be left out'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof EndSessionTimeoutError && err instanceof OperationTimeoutError, String(err));
      assert.deepEqual(err.pending, [hole.address]);
      assert.equal(err.result.outcome, 'closed');
      assert.deepEqual([...err.result.confirmedBy].sort(), [1, 2, 3].map((id) => ens.address(id)).sort());
      assert.deepEqual(err.result.unreachable, []);
      assert.ok(hole.held.length >= 2, `retried (${hole.held.length} attaches)`);
      assert.equal(await observer.exists('/end-not-serving'), null, 'the session was ended all the same');
      await holderLearns(c, '/end-not-serving-after', 'a server not serving');
      await c.close();
    } finally {
      await hole.close();
    }
  });

  it('ends a session while the ZooKeeper leader is being killed, 20 times in a row', { timeout: 900_000 }, async () => {
    // The moment of the kill moves through endSession's steps (attaching, the 150 ms hold, the
    // close, the confirmations): a fault schedule, not a wait; every assertion is on facts.
    const killAfterMs = [0, 30, 60, 100, 140, 180, 240, 320, 450, 600];
    for (let round = 0; round < 20; round++) {
      const what = `round ${round}`;
      const { leaderId } = await ens.waitForQuorum({ timeoutMs: 60_000 });
      const survivors = [1, 2, 3].filter((id) => id !== leaderId).map((id) => ens.address(id));
      const path = `/end-election-${round}`;
      // The holder reaches every server, so it rides out the election like a real leader would.
      const c = createClient(ens.connectString, { sessionTimeoutMs: 6000, localExpiry: false });
      const watcher = createClient(ens.connectString, { sessionTimeoutMs: 10_000, localExpiry: false });
      try {
        await c.connect({ timeoutMs: 15_000 });
        await c.create(path, 'held', { mode: 'ephemeral' });
        const id = c.sessionId;
        const password = c.sessionPassword;
        // A short connect timeout: a handshake the election slows down is retried, never taken
        // for an unreachable server.
        const ending = endSession(ens.connectString, id, password, { timeoutMs: 30_000, connectTimeoutMs: 500 });
        await sleep(killAfterMs[round % killAfterMs.length]!);
        await ens.kill(leaderId);
        const r = await ending;
        assert.equal(r.outcome, 'closed', what);
        // A live server is never reported unreachable; the dead leader may be either, depending on
        // whether it was visited before the kill.
        for (const s of survivors) assert.ok(r.confirmedBy.includes(s), `${what}: ${s} confirmed (${JSON.stringify(r)})`);
        assert.ok(
          r.unreachable.every((s) => s === ens.address(leaderId)),
          `${what}: unreachable ${r.unreachable.join(', ')}`,
        );
        assert.equal(r.confirmedBy.length + r.unreachable.length, 3, what);

        await ens.waitForQuorum({ timeoutMs: 60_000 });
        await watcher.connect({ timeoutMs: 15_000 });
        await watcher.sync('/');
        assert.equal(await watcher.exists(path), null, `${what}: the ephemeral went with the session`);
        const late = createClient(ens.connectString, { sessionId: id, sessionPassword: password });
        await assert.rejects(late.connect({ timeoutMs: 15_000 }), SessionExpiredError, `${what}: the session is gone on the servers`);
        await holderLearns(c, `${path}-after`, what, watcher);
      } finally {
        await c.close({ timeoutMs: 1000 });
        await watcher.close({ timeoutMs: 1000 });
        if (ens.state(leaderId) !== 'running') await ens.startServer(leaderId);
      }
    }
    await ens.waitForQuorum({ timeoutMs: 60_000 });
  });

  it('rejects bad arguments by name, and an unreachable ensemble with ConnectionLossError', async () => {
    const pwd = Buffer.alloc(16, 1);
    await assert.rejects(endSession('', 1n, pwd), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'connectString');
    await assert.rejects(endSession(ens.connectString, 0n, pwd), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'sessionId');
    await assert.rejects(endSession(ens.connectString, 1n, Buffer.alloc(0)), (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'password');
    await assert.rejects(
      endSession(ens.connectString, 1n, pwd, { timeoutMs: 0 }),
      (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'timeoutMs',
    );
    await assert.rejects(
      endSession('127.0.0.1:1', 1n, pwd, { connectTimeoutMs: 500 }),
      (e: unknown) => e instanceof ConnectionLossError && /127\.0\.0\.1:1/.test(e.message),
    );
  });
});
