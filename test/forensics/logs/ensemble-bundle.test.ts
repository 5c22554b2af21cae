// A bundle written by a real ZooKeeper 3.8 ensemble: clients write while a follower is paused
// past syncLimit (the leader drops it), then the leader is killed (the others elect a new one).
// The servers' logs, data directories and srvr captures are collected in the docs/bundle.md
// layout and read with no configuration; the quorum findings must match what the test did, in
// the order and windows it did them.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { investigate, type Investigation } from '../../../src/forensics/logs/investigate.ts';
import { Ensemble } from '../../../src/lab/ensemble.ts';
import { createClient, type ZooKeeperClient } from '../../../src/zk/index.ts';

let ens: Ensemble;
let dir: string;
let inv: Investigation;
const t: Record<string, number> = {};
let leader = 0;
let follower = 0;
let survivor = 0;
let writes = 0;

/** Waits for a fact with a bound (writes made, a line logged), never for time alone. */
async function until(what: string, f: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
const moreWrites = async (n: number): Promise<void> => {
  const from = writes;
  await until(`${n} more writes`, () => writes >= from + n);
};
/** How often a server's log says a learner said GOODBYE: the leader dropping a follower. */
const goodbyes = (id: number): number => readFileSync(ens.server(id).logFile, 'utf8').split('GOODBYE').length - 1;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zkw-ens-bundle-'));
  ens = await Ensemble.start({ size: 3, tickTime: 300, initLimit: 5, syncLimit: 2, fourLetterWords: ['*'], snapCount: 1000 });
  leader = await ens.leaderId();
  follower = (await ens.followerIds())[0]!;
  survivor = [1, 2, 3].find((i) => i !== leader && i !== follower)!;
  const clients: ZooKeeperClient[] = [];
  for (const id of [leader, survivor]) {
    const c = createClient(ens.address(id), { sessionTimeoutMs: 6000 });
    await c.connect();
    clients.push(c);
  }
  const all = createClient(ens.connectString, { sessionTimeoutMs: 6000 });
  await all.connect();
  clients.push(all);
  let stop = false;
  const writers = clients.map(async (c, k) => {
    let i = 0;
    while (!stop) {
      try {
        await c.create(`/w${k}-${i++}`, Buffer.from('x'), { timeoutMs: 2000 });
        writes++;
      } catch {
        // writes fail during the election; the test only needs load on the leader
      }
      await sleep(10);
    }
  });
  await moreWrites(50);
  for (const s of ens.servers) {
    mkdirSync(join(dir, `node${s.id}`, 'captures'), { recursive: true });
    writeFileSync(join(dir, `node${s.id}`, 'captures', 'srvr.txt'), await ens.fourLetter(s.id, 'srvr'));
  }
  const before = goodbyes(leader);
  t.pause = Date.now();
  await ens.pause(follower);
  // Past syncLimit × tickTime (600 ms) the leader drops it: resumed once the leader says so.
  await until('the leader to drop the paused follower', () => goodbyes(leader) > before);
  await ens.resume(follower);
  t.resume = Date.now();
  await ens.waitForServing(follower, 30_000);
  await moreWrites(20);
  t.kill = Date.now();
  await ens.kill(leader);
  t.killed = Date.now();
  await ens.waitForQuorum({ timeoutMs: 30_000 });
  t.quorum = Date.now();
  await moreWrites(20);
  stop = true;
  await Promise.all(writers);
  await Promise.all(clients.map((c) => c.close({ timeoutMs: 3000 }).catch(() => undefined)));
  // Collect in the bundle layout: <node>/zookeeper/zookeeper.log, <node>/zookeeper/data/…
  for (const s of ens.servers) {
    const base = join(dir, `node${s.id}`, 'zookeeper');
    mkdirSync(base, { recursive: true });
    cpSync(s.logFile, join(base, 'zookeeper.log'), { preserveTimestamps: true });
    cpSync(s.dataDir, join(base, 'data'), { recursive: true, preserveTimestamps: true });
    cpSync(s.configFile, join(base, 'zoo.cfg'));
  }
  inv = await investigate({ root: dir });
});

after(async () => {
  await ens?.close();
  // ZKW_KEEP_BUNDLE=DIR keeps the bundle (docs/investigate.md shows a run on one).
  if (dir && process.env.ZKW_KEEP_BUNDLE) {
    cpSync(dir, process.env.ZKW_KEEP_BUNDLE, { recursive: true, preserveTimestamps: true });
    writeFileSync(join(process.env.ZKW_KEEP_BUNDLE, '..', 'ensemble-bundle-times.json'), JSON.stringify({ ...t, leader, follower }));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the bundle is read with no configuration: nodes, myids and addresses come from the logs', () => {
  assert.ok(writes > 50, `clients wrote (${writes})`);
  assert.deepEqual(inv.nodes, ['node1', 'node2', 'node3']);
  for (const id of [1, 2, 3]) {
    assert.equal(inv.topology.myids[String(id)], `node${id}`);
    assert.equal(inv.topology.addresses[ens.server(id).host], `node${id}`);
  }
  assert.equal(inv.data.dataDirs.length, 3);
  assert.ok(['audited', 'failed'].includes(inv.data.status), inv.data.note);
  assert.equal(inv.captures.filter((c) => c.capture.kind === 'srvr').length, 3);
  assert.equal(inv.captures.find((c) => c.node === `node${leader}`)?.capture.mode, 'leader');
});

test('the paused follower is dropped by the leader after the pause, before the resume', () => {
  const drops = inv.findings.filter((f) => f.kind === 'quorum-member-dropped');
  // The first drop after the pause (a loaded machine can make the leader drop a follower before, too).
  const d = drops.find((f) => f.facts?.peer === `node${follower}` && f.to >= t.pause!);
  assert.ok(d, `a drop of node${follower}: ${drops.map((x) => x.title).join(' | ')}`);
  assert.equal(d.node, `node${leader}`);
  assert.ok(d.to >= t.pause! && d.to <= t.resume!, `dropped at ${d.to}, paused ${t.pause}, resumed ${t.resume}`);
});

test('after the resume the follower goes LOOKING, finds the leader again and re-syncs', () => {
  const looking = inv.findings.find((f) => f.kind === 'quorum-state' && f.node === `node${follower}` && f.facts?.state === 'LOOKING' && f.from >= t.pause!);
  assert.ok(looking);
  assert.ok(looking.from <= t.kill!);
  const sync = inv.findings.find((f) => f.kind === 'quorum-sync' && f.node === `node${follower}` && f.from >= t.pause! && f.from <= t.kill!);
  assert.ok(sync, 'a learner-side sync after rejoining');
  assert.ok(['DIFF', 'SNAP', 'TRUNC'].includes(String(sync.facts?.type)));
  const leaderSide = inv.findings.find(
    (f) => f.kind === 'quorum-sync' && f.node === `node${leader}` && f.facts?.peer === `node${follower}` && f.from >= t.pause! && f.from <= t.kill!,
  );
  assert.ok(
    leaderSide,
    `the leader logs which sync it sent the follower: ${inv.findings
      .filter((f) => f.kind === 'quorum-sync')
      .map((f) => f.title)
      .join(' | ')}`,
  );
});

test('the leader is killed: a new leader is elected among the others, after the kill', () => {
  const el = inv.findings.filter((f) => f.kind === 'quorum-election' && f.to >= t.kill!);
  assert.ok(el.length >= 1, 'an election after the kill');
  const e = el[0]!;
  assert.notEqual(e.facts?.leader, `node${leader}`);
  assert.equal(e.facts?.previousLeader, `node${leader}`);
  assert.ok(e.to <= t.quorum!);
  const change = inv.verdicts.find((v) => v.facts?.verdict === 'zk-leader-change');
  assert.ok(change);
  assert.equal(change.facts?.previousLeader, `node${leader}`);
  // The killed leader's last line is before the kill finished; survivors fail to reach its election port.
  const life = inv.findings.find((f) => f.kind === 'last-sign-of-life' && f.node === `node${leader}`)!;
  assert.ok(life.to <= t.killed!);
  const calls = inv.findings.filter((f) => f.kind === 'failed-calls' && f.facts?.remoteNode === `node${leader}` && f.to >= t.kill!);
  assert.ok(calls.length >= 1, 'survivors cannot open a channel to the dead leader');
  assert.match(String(calls[0]!.facts?.remoteRole), /election/);
  // Not the seed's pattern: ZooKeeper itself changed leader.
  assert.equal(inv.verdicts.filter((v) => v.facts?.verdict === 'gray-failure').length, 0);
});
