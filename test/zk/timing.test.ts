// Session timing follows the NEGOTIATED session timeout (ClientCnxn.onConnected: connect timeout
// = timeout / servers, read timeout 2/3, ping at half of that), on real servers whose
// min/maxSessionTimeout force the grant far from the request, each with a black-holed server
// (accepts TCP, never answers) ahead of a healthy one in the list.
//
// - Granted far below the request: the connect timeout from the request (60 s / 3 servers) would
//   hold the client on the black hole past the whole granted session (6 s), and it would expire
//   its own session although a healthy server is next. From the grant: 2 s, then it reconnects.
// - Granted far above the request: the connect timeout from the request (1 s / 3 = 333 ms) gives
//   up on a server that answers the handshake in 1.5 s, every time, until the session expires.
//   From the grant (12 s / 3 = 4 s) that slow server is good enough.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { BlackHole, Proxy } from './fixtures/tcp.ts';

let below: Ensemble;
let above: Ensemble;
const closers: (() => Promise<unknown>)[] = [];

before(async () => {
  [below, above] = await Promise.all([
    Ensemble.start({ size: 1, tickTime: 500, maxSessionTimeout: 6000 }),
    Ensemble.start({ size: 1, tickTime: 500, minSessionTimeout: 12_000, maxSessionTimeout: 20_000 }),
  ]);
});

after(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await Promise.all([below?.close(), above?.close()]);
});

/** Resolves with the first of 'reconnected' (the server) and 'expired' (the reason). */
function nextVerdict(zk: ZooKeeperClient): Promise<string> {
  return new Promise((resolve) => {
    zk.once('reconnected', ({ server }) => resolve(`reconnected ${server}`));
    zk.once('expired', ({ reason }) => resolve(`expired ${reason}`));
  });
}

/**
 * A client on [a proxy to the server, a black hole, `healthy`], connected through the proxy
 * with an ephemeral node. Closing `first` takes that server away (the connection drops, the
 * address refuses): the client must get past the black hole to `healthy`.
 */
async function scenario(ens: Ensemble, requestMs: number, healthy: string): Promise<{ zk: ZooKeeperClient; first: Proxy; hole: BlackHole }> {
  const first = await Proxy.start(ens.address(ens.servers[0]!.id));
  const hole = await BlackHole.start();
  closers.push(
    () => first.close(),
    () => hole.close(),
  );
  const zk = createClient([first.address, hole.address, healthy].join(','), { sessionTimeoutMs: requestMs, shuffleServers: false });
  closers.push(() => zk.close({ timeoutMs: 1000 }));
  assert.equal(zk.timing.connectTimeoutMs, Math.max(250, Math.floor(requestMs / 3)), 'before the handshake: from the request');
  assert.equal((await zk.connect({ timeoutMs: 20_000 })).server, first.address);
  await zk.create('/held', null, { mode: 'ephemeral' });
  return { zk, first, hole };
}

/** After the first server went away: reconnected to `healthy`, the same session, the black hole given up by the client. */
async function ridesThrough(zk: ZooKeeperClient, first: Proxy, hole: BlackHole, healthy: string): Promise<void> {
  const id = zk.sessionId;
  // The first connect may have been through the black hole already: from a 1 s request the
  // connect timeout is 333 ms, which a handshake on a loaded machine can exceed.
  const earlier = hole.held.length;
  const verdict = nextVerdict(zk);
  await first.close();
  assert.equal(await verdict, `reconnected ${healthy}`);
  assert.equal(zk.sessionId, id);
  // The client left the black hole at its own connect timeout: the socket was closed by the client.
  await (
    await hole.connection(earlier)
  ).closedByPeer;
  assert.equal(hole.held.length, earlier + 1, 'one attempt on the black hole on the way to the healthy server');
  assert.equal((await zk.exists('/held'))?.ephemeralOwner, id, 'the session and its ephemeral survived');
}

describe('session timing follows the negotiated timeout', () => {
  it('granted far below the request (6 s for 60 s): 2 s per server, so the black hole does not cost the session', async () => {
    const healthy = below.address(1);
    const { zk, first, hole } = await scenario(below, 60_000, healthy);
    assert.equal(zk.sessionTimeoutMs, 6000);
    assert.deepEqual(zk.timing, { connectTimeoutMs: 2000, readTimeoutMs: 4000, pingIntervalMs: 2000 });
    await ridesThrough(zk, first, hole, healthy);
  });

  it('granted far above the request (12 s for 1 s): 4 s per server, so a server answering in 1.5 s is reached', async () => {
    const slow = await Proxy.start(above.address(1), { holdAnswerMs: 1500 });
    closers.push(() => slow.close());
    const { zk, first, hole } = await scenario(above, 1000, slow.address);
    assert.equal(zk.sessionTimeoutMs, 12_000);
    assert.deepEqual(zk.timing, { connectTimeoutMs: 4000, readTimeoutMs: 8000, pingIntervalMs: 4000 });
    await ridesThrough(zk, first, hole, slow.address);
  });
});
