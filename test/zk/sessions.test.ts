// Sessions and connections against a real 3-server ensemble: a session survives the kill of
// its server, watches survive it without loss or duplicates, a silent (paused) server is left
// for another one, expiry is reported (hand-over close from a second client, and a client
// stalled past its timeout), requests in flight or after expiry fail with typed errors, and a
// read-only server serves a client that asked for it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { until } from '../until.ts';
import { BlackHole, Proxy } from './fixtures/tcp.ts';
import {
  ConnectionLossError,
  NotReadOnlyError,
  SessionExpiredError,
  createClient,
  type ClientOptions,
  type WatchEvent,
  type ZooKeeperClient,
} from '../../src/zk/index.ts';

let ens: Ensemble;
const clients: ZooKeeperClient[] = [];

function open(connectString: string, opts: ClientOptions = {}): ZooKeeperClient {
  const zk = createClient(connectString, { sessionTimeoutMs: 6000, shuffleServers: false, ...opts });
  clients.push(zk);
  return zk;
}

function once<T>(zk: ZooKeeperClient, event: 'suspended' | 'reconnected' | 'expired' | 'connected'): Promise<T> {
  return new Promise((resolve) => zk.once(event, ((info: T) => resolve(info)) as never));
}

/** Ids of two ZooKeeper followers: killing or pausing one keeps the quorum and its leader. */
async function followers(): Promise<number[]> {
  await ens.waitForQuorum({ timeoutMs: 60_000 });
  for (const s of ens.servers) await ens.waitForServing(s.id, 60_000);
  const leader = await ens.leaderId();
  return ens.servers.map((s) => s.id).filter((id) => id !== leader);
}

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 500, extendedTypesEnabled: true });
});

after(async () => {
  for (const c of clients) await c.close({ timeoutMs: 1000 }).catch(() => undefined);
  await ens?.close();
});

describe('sessions', () => {
  it('a session survives the kill of its server; watches fire once, none lost or duplicated', async () => {
    const [victim, other] = await followers();
    const cs = [ens.address(victim), ens.address(other)].join(',');
    const a = open(cs);
    await a.connect();
    assert.equal(a.server, ens.address(victim));
    const id = a.sessionId;
    const b = open(ens.address(other));
    await b.connect();
    await a.create('/k', 'v0');
    await a.create('/k/eph', null, { mode: 'ephemeral' });
    const events: WatchEvent[] = [];
    const push = (e: WatchEvent): void => void events.push(e);
    await a.getData('/k', { watch: push });
    await a.exists('/k/new', { watch: push });
    await a.getChildren('/k', { watch: push });
    const persistent: WatchEvent[] = [];
    await a.addWatch('/k', 'persistent', (e) => void persistent.push(e));

    const suspended = once<{ server: string }>(a, 'suspended');
    const reconnected = once<{ server: string; sessionId: bigint }>(a, 'reconnected');
    await ens.kill(victim);
    try {
      // The changes race with the reconnect: whichever way it goes, each watch fires once.
      await b.setData('/k', 'v1');
      await b.create('/k/new');
      assert.equal((await suspended).server, ens.address(victim));
      const info = await reconnected;
      assert.equal(info.server, ens.address(other));
      assert.equal(info.sessionId, id);
      assert.equal(a.sessionId, id);
      await until('three one-shot events', () => events.length >= 3);
      await b.setData('/k', 'v2');
      await until('the persistent watch to see v2', () => persistent.some((e) => e.type === 'dataChanged'));
      await a.sync('/k');
      const sorted = events.map((e) => `${e.type} ${e.path}`).sort();
      assert.deepEqual(sorted, ['childrenChanged /k', 'created /k/new', 'dataChanged /k']);
      // The persistent watch sees each change at most once: changes made while disconnected
      // are not replayed to persistent watches (ZooKeeper semantics), later ones all arrive.
      const seen = persistent.map((e) => `${e.type} ${e.path}`);
      const all = ['dataChanged /k', 'childrenChanged /k', 'dataChanged /k'];
      assert.deepEqual(seen, all.slice(all.length - seen.length), `persistent events ${seen.join(', ')}`);
      assert.ok(seen.length >= 1);
      // The ephemeral node of the session is still there, seen from another client.
      await b.sync('/k');
      assert.equal((await b.exists('/k/eph'))?.ephemeralOwner, id);
    } finally {
      await ens.startServer(victim);
    }
  });

  it('watches set before a disconnection fire exactly once for changes made during it (setWatches)', async () => {
    const [only] = await followers();
    // A client that can only reach one server stays disconnected while that server is down.
    const a = open(ens.address(only), { sessionTimeoutMs: 10_000 });
    await a.connect();
    // The writer must not share the doomed server, or its writes fail with the kill.
    const b = open(
      ens.servers
        .filter((s) => s.id !== only)
        .map((s) => ens.address(s.id))
        .join(','),
    );
    await b.connect();
    await b.create('/sw');
    await b.create('/sw/d', 'x');
    await a.sync('/sw');
    const events: WatchEvent[] = [];
    const push = (e: WatchEvent): void => void events.push(e);
    await a.getData('/sw/d', { watch: push });
    await a.exists('/sw/new', { watch: push });
    await a.getChildren('/sw', { watch: push });
    await a.exists('/sw/untouched', { watch: push });
    // Enough watches that re-registration needs several setWatches packets (128 KiB each).
    const many = Array.from({ length: 1500 }, (_, i) => `/sw/${'w'.repeat(100)}-${i}`);
    const noop = (): void => undefined;
    await Promise.all(many.map((p) => a.exists(p, { watch: noop })));
    const suspended = once(a, 'suspended');
    await ens.kill(only);
    let restarted = false;
    try {
      await suspended;
      // In flight or queued while suspended: a request waits in the outbox for the reconnect.
      const queued = a.getData('/sw/d', { timeoutMs: 30_000 });
      await b.setData('/sw/d', 'y');
      await b.create('/sw/new');
      assert.equal(events.length, 0, 'nothing can arrive while disconnected');
      const reconnected = once(a, 'reconnected');
      await ens.startServer(only);
      restarted = true;
      await reconnected;
      assert.equal((await queued).data.toString(), 'y');
      await until('the missed events', () => events.length >= 3);
      // One round trip on the watched connection: its reply follows every notification the
      // server had sent, so a duplicate would have arrived before it.
      await a.sync('/sw');
      assert.deepEqual(events.map((e) => `${e.type} ${e.path}`).sort(), ['childrenChanged /sw', 'created /sw/new', 'dataChanged /sw/d']);
      // Every one of the 1500 watches is registered on the new connection's server.
      await Promise.all(many.map((p) => a.checkWatches(p, 'data')));
      // The untouched exist watch is still registered and fires on its own change, once.
      await b.create('/sw/untouched');
      await until('the untouched watch', () => events.length >= 4);
      assert.deepEqual(events[3], { type: 'created', path: '/sw/untouched' });
    } finally {
      if (!restarted) await ens.startServer(only);
    }
  });

  it('a silent (paused) server is left for another; the request in flight fails with ConnectionLoss', async () => {
    const [victim, other] = await followers();
    const a = open([ens.address(victim), ens.address(other)].join(','));
    await a.connect();
    assert.equal(a.server, ens.address(victim));
    const id = a.sessionId;
    await a.create('/silent', null, { mode: 'ephemeral' });
    const reconnected = once<{ server: string }>(a, 'reconnected');
    await ens.pause(victim);
    try {
      await assert.rejects(a.getData('/silent'), ConnectionLossError);
      assert.equal((await reconnected).server, ens.address(other));
      assert.equal(a.sessionId, id);
      assert.equal((await a.exists('/silent'))?.ephemeralOwner, id);
    } finally {
      await ens.resume(victim);
    }
  });

  it('session hand-over: a second client on the same id and password closes the session', async () => {
    const [s1, s2] = await followers();
    const leader = open(ens.address(s1), { localExpiry: false });
    await leader.connect();
    await leader.create('/leader', 'me', { mode: 'ephemeral' });
    const expired = once<{ reason: string; sessionId: bigint }>(leader, 'expired');

    const wrong = open(ens.address(s2), { sessionId: leader.sessionId, sessionPassword: Buffer.alloc(16, 7) });
    await assert.rejects(wrong.connect(), SessionExpiredError);
    assert.equal(wrong.state, 'expired');

    const watchdog = open(ens.address(s2), { sessionId: leader.sessionId, sessionPassword: leader.sessionPassword });
    const info = await watchdog.connect();
    assert.equal(info.sessionId, leader.sessionId);
    await watchdog.close();

    const ev = await expired;
    assert.equal(ev.reason, 'server');
    assert.equal(ev.sessionId, info.sessionId);
    assert.equal(leader.state, 'expired');
    await assert.rejects(leader.getData('/'), SessionExpiredError);
    const observer = open(ens.connectString);
    await observer.connect();
    await observer.sync('/');
    assert.equal(await observer.exists('/leader'), null);

    const late = open(ens.connectString, { sessionId: info.sessionId, sessionPassword: watchdog.sessionPassword });
    await assert.rejects(late.connect(), SessionExpiredError);
  });

  it('a client stalled past its session timeout learns that its session expired', async () => {
    const serverVerdict = open(ens.connectString, { sessionTimeoutMs: 3000, localExpiry: false });
    const localVerdict = open(ens.connectString, { sessionTimeoutMs: 3000 });
    await serverVerdict.connect();
    await localVerdict.connect();
    await serverVerdict.create('/stalled-a', null, { mode: 'ephemeral' });
    await localVerdict.create('/stalled-b', null, { mode: 'ephemeral' });
    const e1 = once<{ reason: string }>(serverVerdict, 'expired');
    const e2 = once<{ reason: string }>(localVerdict, 'expired');
    // Block the whole event loop (a stuck process): no pings leave, the servers expire both.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000 * 2);
    assert.equal((await e1).reason, 'server');
    assert.ok(['server', 'local'].includes((await e2).reason));
    await assert.rejects(serverVerdict.exists('/'), SessionExpiredError);
    // Opened after the stall: a client of this process would have stalled too.
    const observer = open(ens.connectString);
    await observer.connect();
    await until('the ephemerals to go', async () => (await observer.exists('/stalled-a')) === null && (await observer.exists('/stalled-b')) === null);
  });

  it('a client process paused (SIGSTOP) past its session timeout is told, once resumed, that its session expired', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/paused-client.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, ens.connectString, '/paused'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => void lines.push(l));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until('the child to be ready', () => lines.some((l) => l.startsWith('ready ')));
      const sessionId = BigInt(lines.find((l) => l.startsWith('ready '))!.slice(6));
      const observer = open(ens.connectString);
      await observer.connect();
      await observer.sync('/');
      assert.equal((await observer.exists('/paused'))?.ephemeralOwner, sessionId);
      child.kill('SIGSTOP');
      // Frozen: no pings. The servers expire the session and delete its ephemeral.
      await until('the ephemeral of the frozen client to go', async () => (await observer.exists('/paused')) === null);
      child.kill('SIGCONT');
      await until('the resumed client to report expiry', () => lines.includes('expired server'));
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });

  it('close() ends the session at once and says so; requests fail fast with typed errors before connect and after close', async () => {
    const zk = open(ens.connectString);
    await assert.rejects(zk.getData('/'), ConnectionLossError);
    await zk.connect();
    await zk.create('/closing', null, { mode: 'ephemeral' });
    const id = zk.sessionId;
    assert.deepEqual(await zk.close(), { session: 'closed', sessionId: id });
    assert.equal(zk.state, 'closed');
    // close() sent closeSession: the ephemeral is gone at once, not after the session timeout.
    const observer = open(ens.connectString);
    await observer.connect();
    await observer.sync('/');
    assert.equal(await observer.exists('/closing'), null);
    await assert.rejects(zk.getData('/'), (e: Error) => e.name === 'ClientClosedError');
    const closed = open(ens.connectString);
    const p = closed.connect({ timeoutMs: 20_000 });
    await closed.close();
    await assert.rejects(p, (e: Error) => e.name === 'ClientClosedError');
  });

  it('close() while suspended returns at once: the attempt in flight is aborted and the session abandoned', { timeout: 30_000 }, async () => {
    // Suspended, and stuck on a server that never answers, with every timeout at 10 minutes and
    // no local expiry: only close() itself can end this, and it must not wait for a reconnect.
    const server = ens.address(ens.servers[0]!.id);
    const first = await Proxy.start(server);
    const hole = await BlackHole.start();
    try {
      const zk = open(`${first.address},${hole.address}`, { connectTimeoutMs: 600_000, requestTimeoutMs: 600_000, localExpiry: false });
      await zk.connect();
      await zk.create('/abandoned', null, { mode: 'ephemeral' });
      const id = zk.sessionId;
      const suspended = once(zk, 'suspended');
      await first.close();
      await suspended;
      const held = await hole.connection(0);
      const queued = zk.getData('/abandoned').then(
        () => 'answered',
        (e: Error) => e.name,
      );
      assert.deepEqual(await zk.close({ timeoutMs: 600_000 }), { session: 'abandoned', sessionId: id });
      await held.closedByPeer;
      assert.equal(await queued, 'ClientClosedError', 'the request queued while suspended fails with the close');
      // Abandoned, not closed: the session lives on the servers until its timeout.
      const observer = open(ens.connectString);
      await observer.connect();
      await observer.sync('/');
      assert.equal((await observer.exists('/abandoned'))?.ephemeralOwner, id);
    } finally {
      await first.close();
      await hole.close();
    }
  });

  it('a process whose client is closed mid-handshake exits at once: no socket or timer is left', { timeout: 30_000 }, async () => {
    const hole = await BlackHole.start();
    const fixture = fileURLToPath(new URL('./fixtures/close-mid-handshake.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, hole.address], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => void lines.push(l));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const held = await hole.connection(0);
      // The ConnectRequest arrived: the handshake is in flight (never to be answered).
      if (held.socket.bytesRead === 0) await new Promise((resolve) => held.socket.once('data', resolve));
      child.stdin!.end('close\n');
      // The child exits by itself once close() returns: its connect timeout (10 minutes) would
      // keep it alive if the attempt's socket or timer had been left behind.
      assert.equal(await exited, 0);
      await held.closedByPeer;
      const report = JSON.parse(lines.find((l) => l.startsWith('{'))!) as { result: string; state: string; connect: string; resources: string[] };
      assert.deepEqual([report.result, report.state, report.connect], ['none', 'closed', 'ClientClosedError']);
      assert.deepEqual(
        report.resources.filter((r) => /TCP|Timeout|Timer/.test(r)),
        [],
        `resources left: ${report.resources.join(', ')}`,
      );
    } finally {
      child.kill('SIGKILL');
      await hole.close();
    }
  });

  it('25 concurrent connect() calls share one attempt and one session, with no listener warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const zk = open(ens.connectString);
      const infos = await Promise.all(Array.from({ length: 25 }, () => zk.connect()));
      assert.equal(new Set(infos.map((i) => i.sessionId)).size, 1);
      assert.equal(infos[0]!.sessionId, zk.sessionId);
      for (const e of ['connected', 'reconnected', 'expired', 'closed', 'authFailed'] as const) assert.equal(zk.listenerCount(e), 0, e);
      // Warnings are emitted on the next tick: one round trip later any would have been.
      await zk.sync('/');
      assert.deepEqual(
        warnings.map((w) => w.name),
        [],
      );
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('read-only mode', () => {
  it('a read-only client is served by a server cut off from its quorum; writes fail with NotReadOnly', async () => {
    // Its own ensemble: read-only mode needs a server property (and local sessions: a read-only
    // server refuses to create global ones), and this test breaks the quorum.
    const ro = await Ensemble.start({
      size: 3,
      tickTime: 500,
      systemProperties: { 'readonlymode.enabled': true },
      extraConfig: { localSessionsEnabled: true },
    });
    try {
      const survivor = ro.servers[0].id;
      // Written through the survivor, so it has the node before the others go.
      const writer = createClient(ro.address(survivor), { sessionTimeoutMs: 6000 });
      await writer.connect();
      await writer.create('/ro', 'kept');
      await writer.close();
      for (const s of ro.servers.slice(1)) await ro.kill(s.id);
      // Until the survivor notices the lost quorum it may still serve read-write; wait for its
      // own word that it is read-only.
      await until('the survivor to enter read-only mode', async () => (await ro.srvr(survivor))?.mode === 'read-only');
      const zk = createClient(ro.address(survivor), { sessionTimeoutMs: 6000, readOnly: true });
      clients.push(zk);
      const info = await zk.connect({ timeoutMs: 30_000 });
      assert.equal(info.readOnly, true);
      assert.equal(zk.readOnly, true);
      assert.equal((await zk.getData('/ro')).data.toString(), 'kept');
      await assert.rejects(zk.create('/ro/new'), NotReadOnlyError);
      await zk.close();
    } finally {
      await ro.close();
    }
  });
});
