// Conformance of every client operation against a real 3-server ensemble: create modes (TTL
// and container included), reads, conditional writes, ACLs with digest auth, multi and
// multiRead, watches of every kind, chroot, the packet limit and 1 MiB of data.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { until } from '../until.ts';
import {
  AuthFailedError,
  BadVersionError,
  MultiError,
  NoAuthError,
  NoNodeError,
  NoWatcherError,
  NodeExistsError,
  NotEmptyError,
  PacketTooLargeError,
  InvalidArgumentError,
  MAX_TTL_MS,
  Perms,
  type Op,
  READ_ACL_UNSAFE,
  createClient,
  digestAcl,
  digestId,
  type WatchEvent,
  type ZooKeeperClient,
} from '../../src/zk/index.ts';

const MiB = 1024 * 1024;
let ens: Ensemble;
const clients: ZooKeeperClient[] = [];

async function client(suffix = '', opts: Parameters<typeof createClient>[1] = {}): Promise<ZooKeeperClient> {
  const zk = createClient(ens.connectString + suffix, { sessionTimeoutMs: 6000, ...opts });
  clients.push(zk);
  await zk.connect();
  return zk;
}

/** Polls until fn returns true; the deadline is generous (no timing assertion, just no hang). */

function collector(): { events: WatchEvent[]; fn: (e: WatchEvent) => void; next(n?: number): Promise<WatchEvent[]> } {
  const events: WatchEvent[] = [];
  return {
    events,
    fn: (e) => void events.push(e),
    async next(n = 1) {
      await until(`${n} watch event(s)`, () => events.length >= n, 20_000);
      return events.slice(0, n);
    },
  };
}

before(async () => {
  ens = await Ensemble.start({
    size: 3,
    tickTime: 500,
    extendedTypesEnabled: true,
    juteMaxBuffer: 4 * MiB,
    // The container manager sweeps TTL and empty container nodes; its default period is a minute.
    systemProperties: { 'znode.container.checkIntervalMs': 300 },
  });
});

after(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await ens?.close();
});

describe('operations', () => {
  it('create in every plain mode returns the real path and Stat', async () => {
    const zk = await client();
    const p = await zk.create('/ops', 'root');
    assert.equal(p.path, '/ops');
    assert.equal(p.stat.version, 0);
    assert.equal(p.stat.dataLength, 4);
    assert.equal(p.stat.ephemeralOwner, 0n);
    const e = await zk.create('/ops/eph', null, { mode: 'ephemeral' });
    assert.equal(e.stat.ephemeralOwner, zk.sessionId);
    const s1 = await zk.create('/ops/seq-', 'a', { mode: 'persistent_sequential' });
    const s2 = await zk.create('/ops/seq-', 'b', { mode: 'ephemeral_sequential' });
    assert.match(s1.path, /^\/ops\/seq-\d{10}$/);
    assert.ok(s2.path > s1.path, 'sequence numbers increase');
    assert.equal(s2.stat.ephemeralOwner, zk.sessionId);
    await assert.rejects(zk.create('/ops', 'again'), NodeExistsError);
    await assert.rejects(zk.create('/missing/child'), NoNodeError);
    await assert.rejects(zk.create('/ops/eph/child'), (err: Error) => err.name === 'NoChildrenForEphemeralsError');
    await assert.rejects(zk.create('bad'), InvalidArgumentError);
    await assert.rejects(zk.create('/a//b'), InvalidArgumentError);
    await assert.rejects(zk.create('/ttl-missing', null, { mode: 'ttl' }), InvalidArgumentError);
    const { children, stat } = await zk.getChildren('/ops');
    assert.deepEqual([...children].sort(), ['eph', s1.path.slice(5), s2.path.slice(5)].sort());
    assert.equal(stat.numChildren, 3);
  });

  it('getData, exists, setData and delete honour versions', async () => {
    const zk = await client();
    await zk.create('/v', 'one');
    const got = await zk.getData('/v');
    assert.equal(got.data.toString(), 'one');
    assert.equal(got.stat.version, 0);
    const st = await zk.setData('/v', 'two', 0);
    assert.equal(st.version, 1);
    await assert.rejects(zk.setData('/v', 'three', 0), BadVersionError);
    assert.equal((await zk.getData('/v')).data.toString(), 'two');
    assert.equal((await zk.setData('/v', Buffer.from([0, 1, 2]))).version, 2);
    assert.deepEqual((await zk.getData('/v')).data, Buffer.from([0, 1, 2]));
    assert.equal((await zk.exists('/v'))?.version, 2);
    assert.equal(await zk.exists('/nothing'), null);
    await zk.create('/v/c');
    await assert.rejects(zk.delete('/v'), NotEmptyError);
    await zk.delete('/v/c');
    await assert.rejects(zk.delete('/v', 1), BadVersionError);
    await zk.delete('/v', 2);
    assert.equal(await zk.exists('/v'), null);
    await assert.rejects(zk.delete('/v'), NoNodeError);
    await assert.rejects(zk.getData('/v'), (e: unknown) => e instanceof NoNodeError && e.path === '/v');
  });

  it('sync, getEphemerals, getAllChildrenNumber and whoAmI', async () => {
    const zk = await client();
    await zk.create('/count');
    await zk.create('/count/a');
    await zk.create('/count/a/b');
    await zk.create('/count/e1', null, { mode: 'ephemeral' });
    assert.equal(await zk.getAllChildrenNumber('/count'), 3);
    assert.equal(await zk.sync('/count'), '/count');
    assert.deepEqual(await zk.getEphemerals('/count'), ['/count/e1']);
    const other = await client();
    assert.deepEqual(await other.getEphemerals('/count'), []);
    const who = await zk.whoAmI();
    assert.ok(
      who.some((w) => w.authScheme === 'ip'),
      JSON.stringify(who),
    );
  });

  it('container nodes vanish after their last child; TTL nodes after their TTL', async () => {
    const zk = await client();
    await zk.create('/box', null, { mode: 'container' });
    await zk.create('/box/item', 'x');
    await zk.delete('/box/item');
    await until('the container manager to delete /box', async () => (await zk.exists('/box')) === null, 20_000);
    const ttl = await zk.create('/ttl-', 'x', { mode: 'persistent_sequential_ttl', ttlMs: 500 });
    assert.match(ttl.path, /^\/ttl-\d{10}$/);
    await zk.create('/ttl', 'y', { mode: 'ttl', ttlMs: 500 });
    assert.notEqual(await zk.exists('/ttl'), null);
    await until('TTL nodes to expire', async () => (await zk.exists('/ttl')) === null && (await zk.exists(ttl.path)) === null, 20_000);
  });

  it("TTLs beyond ZooKeeper's maximum (2^40-1 ms) or the wire are refused before encoding, in create and in multi; the maximum is accepted", async () => {
    const zk = await client();
    for (const ttlMs of [2 ** 40, 2 ** 63, Number.MAX_SAFE_INTEGER, 1.5, 0, -1, Number.NaN]) {
      await assert.rejects(
        zk.create('/ttl-bad', null, { mode: 'ttl', ttlMs }),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'ttlMs',
        String(ttlMs),
      );
      await assert.rejects(
        zk.multi([
          { op: 'check', path: '/', version: -1 },
          { op: 'create', path: '/ttl-bad', mode: 'ttl', ttlMs },
        ]),
        (e: unknown) => e instanceof InvalidArgumentError && e.argument === 'ops[1].ttlMs',
        String(ttlMs),
      );
    }
    assert.equal(zk.state, 'connected', 'nothing was sent');
    // The server takes the maximum (it keeps the TTL in the low 40 bits of the node's owner field;
    // clients are shown 0 there for TTL nodes).
    assert.equal((await zk.create('/ttl-max', 'x', { mode: 'ttl', ttlMs: MAX_TTL_MS })).path, '/ttl-max');
    assert.notEqual(await zk.exists('/ttl-max'), null);
    const [made] = await zk.multi([{ op: 'create', path: '/ttl-max-multi', mode: 'persistent_sequential_ttl', ttlMs: MAX_TTL_MS }]);
    assert.ok(made?.op === 'create' && /^\/ttl-max-multi\d{10}$/.test(made.path));
  });

  it('single calls and multi ops check their arguments alike, naming them as the caller wrote them', async () => {
    const zk = await client();
    const named = (argument: string) => (e: unknown) => e instanceof InvalidArgumentError && e.argument === argument;
    await assert.rejects(zk.setData('/x', 'y', 2 ** 31), named('version'));
    await assert.rejects(zk.multi([{ op: 'setData', path: '/x', data: 'y', version: 2 ** 31 }]), named('ops[0].version'));
    await assert.rejects(zk.delete('x'), named('path'));
    await assert.rejects(
      zk.multi([
        { op: 'check', path: '/', version: 0 },
        { op: 'delete', path: 'x' },
      ]),
      named('ops[1].path'),
    );
    await assert.rejects(zk.create('/x', 42 as unknown as string), named('data'));
    await assert.rejects(zk.multi([{ op: 'create', path: '/x', data: 42 as unknown as string }]), named('ops[0].data'));
    await assert.rejects(zk.create('/x', null, { mode: 'bogus' as 'ttl' }), named('mode'));
    await assert.rejects(zk.multi([{ op: 'create', path: '/x', mode: 'bogus' as 'ttl' }]), named('ops[0].mode'));
    await assert.rejects(zk.multi([{ op: 'bogus' } as unknown as Op]), named('ops[0].op'));
    await assert.rejects(zk.getData('/x', { timeoutMs: -5 }), named('timeoutMs'));
    assert.equal(zk.state, 'connected');
  });

  it('digest ACLs: NoAuth without the credential, access with it; getACL/setACL with aversion', async () => {
    const owner = await client();
    await owner.addAuth('digest', 'alice:secret');
    const acl = digestAcl('alice', 'secret');
    await owner.create('/vault', 'gold', { acl });
    const got = await owner.getACL('/vault');
    assert.deepEqual(got.acl, [{ perms: Perms.ALL, id: digestId('alice', 'secret') }]);
    assert.equal((await owner.getData('/vault')).data.toString(), 'gold');

    const stranger = await client();
    // Clients may sit on different servers: sync before reading another client's writes.
    await stranger.sync('/vault');
    await assert.rejects(stranger.getData('/vault'), NoAuthError);
    await assert.rejects(stranger.setData('/vault', 'lead'), NoAuthError);
    await stranger.addAuth('digest', 'mallory:guess');
    await assert.rejects(stranger.getData('/vault'), NoAuthError);
    assert.ok((await stranger.whoAmI()).some((w) => w.authScheme === 'digest' && w.user === 'mallory'));

    const friend = await client('', { auth: [{ scheme: 'digest', auth: 'alice:secret' }] });
    await friend.sync('/vault');
    assert.equal((await friend.getData('/vault')).data.toString(), 'gold');

    const st = await owner.setACL('/vault', [...acl, ...READ_ACL_UNSAFE], 0);
    assert.equal(st.aversion, 1);
    await assert.rejects(owner.setACL('/vault', acl, 0), BadVersionError);
    await stranger.sync('/vault');
    assert.equal((await stranger.getData('/vault')).data.toString(), 'gold');
    await assert.rejects(stranger.setData('/vault', 'lead'), NoAuthError);
  });

  it('an unknown auth scheme moves the client to authFailed', async () => {
    const zk = createClient(ens.connectString, { sessionTimeoutMs: 6000 });
    clients.push(zk);
    await zk.connect();
    const failed = new Promise<string>((resolve) => zk.once('authFailed', ({ scheme }) => resolve(scheme)));
    await assert.rejects(zk.addAuth('no-such-scheme', 'x'), AuthFailedError);
    assert.equal(await failed, 'no-such-scheme');
    assert.equal(zk.state, 'authFailed');
    await assert.rejects(zk.getData('/'), AuthFailedError);
  });

  it('multi applies all ops or none and reports per-op results', async () => {
    const zk = await client();
    await zk.create('/tx', 'v0');
    const res = await zk.multi([
      { op: 'check', path: '/tx', version: 0 },
      { op: 'create', path: '/tx/a', data: 'a' },
      { op: 'create', path: '/tx/s-', data: 's', mode: 'persistent_sequential' },
      { op: 'setData', path: '/tx', data: 'v1', version: 0 },
      { op: 'create', path: '/tx/c', mode: 'container' },
      { op: 'delete', path: '/tx/a' },
    ]);
    assert.deepEqual(
      res.map((r) => r.op),
      ['check', 'create', 'create', 'setData', 'create', 'delete'],
    );
    assert.equal(res[1].op === 'create' && res[1].path, '/tx/a');
    assert.ok(res[2].op === 'create' && /^\/tx\/s-\d{10}$/.test(res[2].path));
    assert.equal(res[3].op === 'setData' && res[3].stat.version, 1);

    // The third op fails: the first two must not be visible afterwards.
    const err = await zk
      .multi([
        { op: 'create', path: '/tx/rolled-back', data: 'x' },
        { op: 'setData', path: '/tx', data: 'v2', version: 1 },
        { op: 'delete', path: '/tx/missing' },
        { op: 'create', path: '/tx/after' },
      ])
      .then(
        () => assert.fail('multi should fail'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof MultiError, String(err));
    assert.equal(err.index, 2);
    assert.ok(err.cause instanceof NoNodeError);
    assert.equal(err.cause.path, '/tx/missing');
    assert.deepEqual(
      err.results.map((r) => (r.op === 'error' ? r.code : r.op)),
      [0, 0, -101, -2],
    );
    assert.equal(await zk.exists('/tx/rolled-back'), null);
    assert.equal((await zk.getData('/tx')).data.toString(), 'v1');
    await assert.rejects(zk.multi([{ op: 'check', path: '/tx', version: 0 }]), (e: unknown) => e instanceof MultiError && e.cause instanceof BadVersionError);
  });

  it('multiRead answers each op on its own', async () => {
    const zk = await client();
    await zk.create('/mr', 'data');
    await zk.create('/mr/k1');
    const res = await zk.multiRead([
      { op: 'getData', path: '/mr' },
      { op: 'getChildren', path: '/mr' },
      { op: 'getData', path: '/mr/none' },
    ]);
    assert.equal(res[0].op === 'getData' && res[0].data.toString(), 'data');
    assert.deepEqual(res[1].op === 'getChildren' && res[1].children, ['k1']);
    assert.deepEqual(res[2], { op: 'error', code: -101 });
  });

  it('a chroot is applied to every path and stripped from every answer', async () => {
    const root = await client();
    await root.create('/app');
    const zk = await client('/app');
    const c = await zk.create('/job-', 'x', { mode: 'ephemeral_sequential' });
    assert.match(c.path, /^\/job-\d{10}$/);
    await root.sync('/app');
    assert.deepEqual((await root.getChildren('/app')).children, [c.path.slice(1)]);
    assert.deepEqual((await zk.getChildren('/')).children, [c.path.slice(1)]);
    assert.deepEqual(await zk.getEphemerals('/'), [c.path]);
    assert.equal(await zk.sync('/'), '/');
    const w = collector();
    await zk.exists('/later', { watch: w.fn });
    await root.create('/app/later');
    assert.deepEqual(await w.next(), [{ type: 'created', path: '/later' }]);
    const res = await zk.multi([{ op: 'create', path: '/m' }]);
    assert.equal(res[0].op === 'create' && res[0].path, '/m');
    await root.sync('/app');
    assert.notEqual(await root.exists('/app/m'), null);
  });

  it('requests issued in one tick, across ticks and from reply callbacks each get their own answer', async () => {
    // One request at a time goes out at once; the ones a tick adds after it leave together. Either
    // way every reply must reach its own request. Every 25th value is 100 KiB, more than one read
    // of the client's buffer (64 KiB), so those replies span reads among small ones.
    const zk = await client();
    await zk.create('/pipe');
    const n = 200;
    const value = (i: number): string => (i % 25 === 7 ? `v${i}`.padEnd(100 * 1024, '.') : `v${i}`);
    await Promise.all(Array.from({ length: n }, (_, i) => zk.create(`/pipe/n${i}`, value(i))));
    const reads: Promise<string>[] = [];
    for (let i = 0; i < n; i++) {
      const read = (): Promise<string> => zk.getData(`/pipe/n${i}`).then((r) => r.data.toString());
      if (i % 3 === 0) reads.push(read());
      else if (i % 3 === 1) reads.push(new Promise((resolve) => setImmediate(resolve)).then(read));
      else reads.push(zk.exists('/pipe').then(read));
    }
    const got = await Promise.all(reads);
    for (let i = 0; i < n; i++) assert.ok(got[i] === value(i), `getData /pipe/n${i} got its own data`);
    let chained = '';
    for (let i = 0; i < 20; i++) chained += (await zk.getData(`/pipe/n${i}`)).data.toString();
    assert.equal(chained, Array.from({ length: 20 }, (_, i) => value(i)).join(''));
  });

  it('1 MiB of data round-trips; a request over the packet limit fails before it is sent', async () => {
    const big = await client('', { maxPacketBytes: 4 * MiB });
    const data = Buffer.alloc(MiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
    await big.create('/big', data);
    const got = await big.getData('/big');
    assert.equal(got.stat.dataLength, MiB);
    assert.ok(got.data.equals(data));

    const small = await client(); // default limit: jute.maxbuffer's default, 0xfffff
    const err = await small.create('/too-big', data).then(
      () => assert.fail('should not send'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PacketTooLargeError);
    assert.equal(err.limit, 0xfffff);
    assert.equal(err.path, '/too-big');
    // Nothing was sent: the connection is fine and the node does not exist.
    assert.equal(small.state, 'connected');
    assert.equal(await small.exists('/too-big'), null);
    await small.sync('/big');
    assert.ok((await small.getData('/big', { timeoutMs: 10_000 })).data.equals(data), 'large replies are read');
  });
});

describe('watches', () => {
  it('one-shot data, exist and child watches fire once with the right type', async () => {
    const zk = await client();
    const other = await client();
    await zk.create('/w');
    const data = collector();
    const exist = collector();
    const child = collector();
    await zk.getData('/w', { watch: data.fn });
    await zk.exists('/w/new', { watch: exist.fn });
    await zk.getChildren('/w', { watch: child.fn });
    await other.create('/w/new');
    await other.setData('/w', 'changed');
    await other.setData('/w', 'changed again');
    assert.deepEqual(await exist.next(), [{ type: 'created', path: '/w/new' }]);
    assert.deepEqual(await child.next(), [{ type: 'childrenChanged', path: '/w' }]);
    assert.deepEqual(await data.next(), [{ type: 'dataChanged', path: '/w' }]);
    const del = collector();
    await zk.getData('/w/new', { watch: del.fn });
    await other.delete('/w/new');
    assert.deepEqual(await del.next(), [{ type: 'deleted', path: '/w/new' }]);
    await zk.sync('/w');
    assert.equal(data.events.length, 1, 'one-shot: the second change is not delivered');
    assert.equal(exist.events.length, 1);
    assert.equal(child.events.length, 1);
    assert.equal(zk.watchCount(), 0);
  });

  it('persistent and persistent-recursive watches see every event until removed', async () => {
    const zk = await client();
    const zk2 = await client();
    const other = await client();
    await zk.create('/pw');
    const p = collector();
    const r = collector();
    await zk.addWatch('/pw', 'persistent', p.fn);
    // One connection holds one watch mode per path (3.8): the recursive one goes on zk2.
    await assert.rejects(zk.addWatch('/pw', 'persistent_recursive', r.fn), InvalidArgumentError);
    await zk2.sync('/pw');
    await zk2.addWatch('/pw', 'persistent_recursive', r.fn);
    // A one-shot watch under a persistent one is served by the persistent one.
    const once = collector();
    await zk.getData('/pw', { watch: once.fn });
    await other.create('/pw/a');
    await other.create('/pw/a/b');
    await other.setData('/pw/a/b', '1');
    await other.setData('/pw', '1');
    await other.delete('/pw/a/b');
    await zk.checkWatches('/pw', 'persistent');
    await zk2.checkWatches('/pw', 'persistentRecursive');
    assert.deepEqual(await r.next(5), [
      { type: 'created', path: '/pw/a' },
      { type: 'created', path: '/pw/a/b' },
      { type: 'dataChanged', path: '/pw/a/b' },
      { type: 'dataChanged', path: '/pw' },
      { type: 'deleted', path: '/pw/a/b' },
    ]);
    assert.deepEqual(await p.next(2), [
      { type: 'childrenChanged', path: '/pw' },
      { type: 'dataChanged', path: '/pw' },
    ]);
    assert.deepEqual(once.events, [{ type: 'dataChanged', path: '/pw' }]);
    await zk2.removeWatches('/pw', 'persistentRecursive', r.fn);
    assert.deepEqual(r.events.at(-1), { type: 'persistentWatchRemoved', path: '/pw' });
    await assert.rejects(zk2.checkWatches('/pw', 'persistentRecursive'), NoWatcherError);
    const before = r.events.length;
    await other.create('/pw/c');
    await p.next(3);
    assert.deepEqual(p.events[2], { type: 'childrenChanged', path: '/pw' });
    assert.equal(once.events.length, 1);
    await zk2.sync('/pw');
    assert.equal(r.events.length, before, 'a removed watch sees nothing');
  });

  it('removeWatches drops one-shot watches on the server too', async () => {
    const zk = await client();
    const other = await client();
    await zk.create('/rw');
    const d = collector();
    const c = collector();
    await zk.getData('/rw', { watch: d.fn });
    await zk.getChildren('/rw', { watch: c.fn });
    await zk.checkWatches('/rw', 'data');
    await zk.removeWatches('/rw', 'data');
    assert.deepEqual(d.events, [{ type: 'dataWatchRemoved', path: '/rw' }]);
    await assert.rejects(zk.checkWatches('/rw', 'data'), NoWatcherError);
    await assert.rejects(zk.removeWatches('/rw', 'data'), NoWatcherError);
    await zk.checkWatches('/rw', 'children');
    await other.setData('/rw', 'x');
    await other.create('/rw/k');
    assert.deepEqual(await c.next(), [{ type: 'childrenChanged', path: '/rw' }]);
    assert.equal(d.events.length, 1);
  });

  it('events are delivered in the order of the changes', async () => {
    const zk = await client();
    const other = await client();
    await zk.create('/order');
    const r = collector();
    await zk.addWatch('/order', 'persistent_recursive', r.fn);
    const n = 50;
    await Promise.all(Array.from({ length: n }, (_, i) => other.setData('/order', String(i))));
    await r.next(n);
    assert.equal(r.events.length, n);
    assert.ok(r.events.every((e) => e.type === 'dataChanged'));
    const versions: number[] = [];
    // The data of each change is gone, but the Stat versions after the fact are ordered: check
    // the ordering through a sequence of creates instead.
    for (let i = 0; i < 10; i++) {
      const c = await other.create('/order/n-', null, { mode: 'persistent_sequential' });
      versions.push(Number(c.path.slice(-10)));
    }
    await r.next(n + 10);
    const created = r.events.slice(n).map((e) => Number(e.path.slice(-10)));
    assert.deepEqual(created, versions);
  });
});
