import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Ensemble } from '../../src/lab/ensemble.ts';
import { parseMntr } from '../../src/lab/four-letter.ts';
import { Lab } from '../../src/lab/lab.ts';
import { createClient } from '../../src/zk/index.ts';
import { until } from '../until.ts';

function logLines(ens: Ensemble, id: number, pattern: RegExp): string[] {
  return readFileSync(ens.server(id).logFile, 'utf8')
    .split('\n')
    .filter((l) => pattern.test(l));
}

const escape = (ip: string): string => ip.replace(/\./g, '\\.');

describe('a real ZooKeeper ensemble inside lab nodes', () => {
  let lab: Lab;
  let ens: Ensemble;
  before(async () => {
    lab = await Lab.create({ nodes: 3 });
    ens = await lab.startEnsemble({ tickTime: 200, syncLimit: 5, startTimeoutMs: 120_000 });
  });
  after(async () => {
    assert.deepEqual((await lab?.close())?.leftovers, []);
  });

  it('runs server N in node N: its address, its namespace and cgroup, its disk', () => {
    for (const n of lab.nodes) {
      const s = ens.server(n.index);
      assert.equal(s.host, n.ip);
      assert.ok(s.dataDir.startsWith(`${n.disk.root}/`), `data on ${n.name}'s disk: ${s.dataDir}`);
      assert.ok(s.logFile.startsWith(`${n.disk.root}/`), `log on ${n.name}'s disk: ${s.logFile}`);
      assert.equal(lab.process(ens.pid(n.index)!).node, n.name, `server ${n.index}'s JVM is a process of ${n.name}`);
    }
  });

  it("logs its quorum connections from the nodes' own addresses (never 127.0.0.1)", async () => {
    const leader = await ens.leaderId();
    for (const f of await ens.followerIds()) {
      // The leader names each learner's connection by its remote address.
      const ip = lab.node(f).ip;
      assert.ok(logLines(ens, leader, new RegExp(`LearnerHandler-/${escape(ip)}:\\d+`)).length > 0, `leader's log shows follower ${f} connecting from ${ip}`);
    }
    // Election connections: which side opens them depends on start order (ZooKeeper keeps the
    // one the higher id opened), so the check is over all servers together.
    let accepted = 0;
    for (const n of lab.nodes) {
      const peers = logLines(ens, n.index, /Received connection request from \//).map((l) => /from \/([\d.]+):/.exec(l)![1]);
      accepted += peers.length;
      for (const ip of peers)
        assert.ok(
          lab.nodes.some((m) => m !== n && m.ip === ip),
          `server ${n.index}: election connection from ${ip}, a peer node's address`,
        );
      assert.deepEqual(logLines(ens, n.index, /LearnerHandler-\/127\.|connection request from \/127\./), []);
    }
    assert.ok(accepted > 0, 'the servers accepted election connections');
  });

  it('serves clients from the host through the lab bridge', async () => {
    const c = createClient(ens.connectString, { sessionTimeoutMs: 4000 });
    await c.connect({ timeoutMs: 15_000 });
    try {
      await c.create('/in-the-lab', 'hello');
      assert.equal((await c.getData('/in-the-lab')).data.toString(), 'hello');
    } finally {
      await c.close();
    }
  });

  it("drops a server whose node disk stalls, for transaction timeout (read in the leader's log), while the other two keep a quorum", async () => {
    const leader = await ens.leaderId();
    const victim = (await ens.followerIds())[0]!;
    const node = lab.node(victim);
    const timeouts = (): string[] => logLines(ens, leader, /Closing connection to peer due to transaction timeout|GOODBYE/);
    assert.deepEqual(timeouts(), []);
    // A dead disk under the page cache: appends (its log4j log) still land in memory, but no
    // fsync ever completes, so the server can log no proposal and acknowledge none, while its
    // pings, which need no disk, go on. That is the seed's node1.
    await node.disk.stall({ ops: ['fsync'] });
    const others = ens.servers.filter((s) => s.id !== victim).map((s) => ens.address(s.id));
    const c = createClient(others.join(','), { sessionTimeoutMs: 8000 });
    try {
      await c.connect({ timeoutMs: 20_000 });
      await c.create('/stalled-disk');
      // Unacknowledged proposals for syncLimit ticks: the leader drops the server, and the
      // GOODBYE that follows names it by its node's own address.
      const goodbye = new RegExp(`LearnerHandler-/${escape(node.ip)}:\\d+.*GOODBYE /${escape(node.ip)}:`);
      await until(
        'the leader to drop the stalled server for transaction timeout',
        () => {
          const lines = timeouts();
          const t = lines.findIndex((l) => l.includes('transaction timeout'));
          return t >= 0 && lines.slice(t + 1).some((l) => /GOODBYE/.test(l) && goodbye.test(l));
        },
        60_000,
      );
      assert.ok((await node.disk.status()).stalled >= 1, "the server's fsync waits on its disk");
      // The other two still commit, and the leader counts one synced follower.
      for (let i = 0; i < 10; i++) await c.create(`/stalled-disk/w${i}`);
      assert.equal((await c.getChildren('/stalled-disk')).children.length, 10);
      assert.equal(Number(parseMntr(await ens.fourLetter(leader, 'mntr')).zk_synced_followers), 1);
    } finally {
      await c.close();
      await node.disk.heal();
    }
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    const r = createClient(ens.address(victim), { sessionTimeoutMs: 8000 });
    await r.connect({ timeoutMs: 20_000 });
    try {
      await r.sync('/stalled-disk');
      assert.equal((await r.getChildren('/stalled-disk')).children.length, 10, 'healed, it serves the writes it missed');
    } finally {
      await r.close();
    }
  });

  it('reboots a node whose disk hangs: what is stuck in D dies, and its server, started again, rejoins', async () => {
    const victim = (await ens.followerIds())[0]!;
    const node = lab.node(victim);
    const jvm = ens.pid(victim)!;
    await node.disk.stall();
    const service = node.spawn('/bin/sh', ['-c', `while :; do echo entry >> ${node.disk.root}/service.log; done`]);
    await until("the service's write to stall", async () => (await node.disk.status()).stalled >= 1);
    service.signal('SIGKILL');
    await service.waitFor('D after kill -9', () => service.state() === 'D');
    const { killed } = await lab.reboot(node);
    assert.ok(killed.includes(jvm) && killed.includes(service.pid), `the reboot killed the JVM and the service (${killed.join(', ')})`);
    assert.deepEqual(node.pids(), [], 'nothing runs on the node');
    assert.equal(ens.state(victim), 'stopped');
    assert.equal(node.disk.readable, true, 'the disk is back');
    await ens.startServer(victim, { waitMs: 60_000 });
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    assert.equal((await ens.srvr(victim))?.mode, 'follower');
  });

  it('elects a new leader when the leader is isolated, and takes it back when healed', async () => {
    const old = await ens.leaderId();
    // keepHost: this test still asks every server `srvr` from the host.
    const f = await lab.net.isolate(old, { keepHost: true });
    const others = lab.nodes.filter((n) => n.index !== old).map((n) => n.index);
    await until('the isolated server to stop serving (it lost its quorum)', async () => (await ens.srvr(old)) === null, 60_000);
    await until(
      'the two others to form a quorum without the old leader',
      async () => {
        const modes = await Promise.all(others.map(async (id) => (await ens.srvr(id))?.mode));
        return modes.includes('leader') && modes.includes('follower');
      },
      60_000,
    );
    await lab.net.heal(f);
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    assert.equal((await ens.srvr(old))?.mode, 'follower', 'the old leader rejoins as a follower');
  });
});
