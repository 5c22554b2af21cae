/**
 * Real ZooKeeper on faultfs: a 3-server ensemble whose every file (zoo.cfg, myid, log4j logs,
 * transaction logs with their preallocation, snapshots, currentEpoch/acceptedEpoch written as
 * tmp + rename) lives on one healthy faultfs; it takes writes, snapshots, and a full restart
 * from its files; then a stalled fsync on one server's data holds that server while the other
 * two keep a quorum, and release lets it continue.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ensemble } from '../../src/lab/ensemble.ts';
import type { FaultFs } from '../../src/lab/faultfs.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { until } from '../until.ts';
import { dropScratch, mountScratch, type Scratch } from './faultfs-util.ts';

const N = 400;

async function pipelined(n: number, outstanding: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: outstanding }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
}

async function readAll(ens: Ensemble, id: number): Promise<string[]> {
  const zk = createClient(ens.address(id), { sessionTimeoutMs: 6000 });
  await zk.connect({ timeoutMs: 20_000 });
  try {
    await zk.sync('/faultfs');
    const out: string[] = [];
    for (let i = 0; i < N; i += 37) out.push((await zk.getData(`/faultfs/n${i}`)).data.toString());
    out.push(String((await zk.getChildren('/faultfs')).children.length));
    return out;
  } finally {
    await zk.close();
  }
}

describe('ZooKeeper with all its files on faultfs', () => {
  let s: Scratch;
  let ffs: FaultFs;
  let ens: Ensemble;
  let zk: ZooKeeperClient | undefined;
  before(async () => {
    ({ s, fs: ffs } = await mountScratch());
    const base = join(s.mountpoint, 'ensemble');
    ens = await Ensemble.start({
      size: 3,
      baseDir: base,
      tickTime: 200,
      syncLimit: 10,
      snapCount: 40,
      preAllocSizeKb: 64,
      startTimeoutMs: 180_000,
    });
  });
  after(async () => {
    await zk?.close().catch(() => undefined);
    // Nothing may stay stalled (a JVM thread in D would survive its kill -9), then the servers
    // (they hold files on the mount), then the mount, then the files.
    await ffs?.set([]).catch(() => undefined);
    await ffs?.release().catch(() => undefined);
    await ens?.close();
    await dropScratch(s, ffs);
  });

  it('takes writes, snapshots and rolls its logs, and serves the same tree after every server restarts from its files', async () => {
    zk = createClient(ens.connectString, { sessionTimeoutMs: 8000 });
    await zk.connect({ timeoutMs: 20_000 });
    await zk.create('/faultfs');
    await pipelined(N, 64, (i) => zk!.create(`/faultfs/n${i}`, `v0-${i}-${'x'.repeat(200)}`));
    await pipelined(N, 64, (i) => zk!.setData(`/faultfs/n${i}`, `v1-${i}`));
    await zk.close();
    zk = undefined;
    const expected = await readAll(ens, 1);
    assert.equal(expected.at(-1), String(N));
    assert.equal(expected[1], 'v1-37');

    for (const srv of ens.servers) {
      const files = fs.readdirSync(join(s.backing, 'ensemble', `zk${srv.id}`, 'data', 'version-2'));
      assert.ok(
        files.some((f) => f.startsWith('snapshot.')),
        `server ${srv.id} wrote a snapshot (${files.join(', ')})`,
      );
      assert.ok(files.filter((f) => f.startsWith('log.')).length >= 2, `server ${srv.id} rolled its transaction log`);
      assert.ok(files.includes('currentEpoch') && files.includes('acceptedEpoch'), `server ${srv.id} wrote its epochs`);
      assert.ok(!files.some((f) => f.endsWith('.tmp')), 'no epoch tmp file was left behind');
      const log = fs.readFileSync(join(s.backing, 'ensemble', `zk${srv.id}`, 'zookeeper.log'), 'utf8');
      assert.match(log, /Snapshot taken|Creating new log file|snapshot/i);
    }

    for (const srv of ens.servers) await ens.stop(srv.id);
    // Together: no server serves before a quorum of them is up.
    // Bounds for a machine whose cores are shared with whole test suites: three JVMs booting
    // at once can take a minute there.
    await Promise.all(ens.servers.map((srv) => ens.startServer(srv.id, { waitMs: 180_000 })));
    await ens.waitForQuorum({ timeoutMs: 180_000 });
    for (const srv of ens.servers) assert.deepEqual(await readAll(ens, srv.id), expected, `server ${srv.id} restored the tree from its files`);
  });

  it("a stalled fsync on one follower's log holds it while the other two keep a quorum; release lets it go on", async () => {
    await ens.waitForQuorum({ timeoutMs: 180_000 });
    const leader = await ens.leaderId();
    const follower = ens.servers.find((x) => x.id !== leader)!.id;
    await ffs.set({ mode: 'stall', ops: ['fsync'], path: `ensemble/zk${follower}/data/version-2/log.*` });
    const w = createClient(
      ens.servers
        .filter((x) => x.id !== follower)
        .map((x) => ens.address(x.id))
        .join(','),
      { sessionTimeoutMs: 8000 },
    );
    await w.connect({ timeoutMs: 20_000 });
    try {
      await w.create('/stalled-follower');
      await until("the follower's log fsync is stalled", async () => (await ffs.status()).stalled >= 1, 20_000);
      // The quorum of the other two still commits.
      for (let i = 0; i < 20; i++) await w.create(`/stalled-follower/c${i}`);
      assert.equal((await w.getChildren('/stalled-follower')).children.length, 20);
      await ffs.set([]);
      assert.ok((await ffs.release()) >= 1);
    } finally {
      await w.close();
    }
    await ens.waitForQuorum({ timeoutMs: 180_000 });
    // The follower either caught up or was dropped and resynced; either way it serves the writes.
    const r = createClient(ens.address(follower), { sessionTimeoutMs: 8000 });
    await until(`server ${follower} serves again`, async () => (await ens.srvr(follower)) !== null, 180_000);
    await r.connect({ timeoutMs: 20_000 });
    try {
      await r.sync('/stalled-follower');
      assert.equal((await r.getChildren('/stalled-follower')).children.length, 20);
    } finally {
      await r.close();
    }
  });
});
