import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LabUsageError, inNetns, run } from '../../src/lab/host.ts';
import { Lab } from '../../src/lab/lab.ts';
import { checkReachable } from '../../src/lab/network.ts';
import { EchoServer, checkReach, type Reach } from '../../src/lab/probe.ts';

/** Real connections for every (from, to, port) listed, all at once: each must end as expected. */
async function expectReach(lab: Lab, cases: [from: string, to: string, port: number, outcome: Reach][]): Promise<void> {
  const results = await lab.net.checkAll(cases.map(([from, to, port]) => ({ from, to, port })));
  assert.deepEqual(
    results.map((r, i) => `${cases[i]![0]} → ${cases[i]![1]}:${cases[i]![2]} ${r.outcome}`),
    cases.map(([from, to, port, outcome]) => `${from} → ${to}:${port} ${outcome}`),
  );
}

/** Every pair of nodes, both directions, open again: the fault healed completely. */
async function expectAllOpen(lab: Lab, port: number): Promise<void> {
  const cases: [string, string, number, Reach][] = [];
  for (const a of lab.nodes) for (const b of lab.nodes) if (a !== b) cases.push([a.name, b.name, port, 'open']);
  await expectReach(lab, cases);
  assert.deepEqual(await lab.net.list(), [], 'no fault left');
  for (const r of await lab.net.rules()) assert.equal(r.fault, null, `a rule of the lab left in ${r.node}: ${r.spec}`);
}

describe('lab nodes as hosts, and network faults between them', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create({ nodes: 3 });
  });
  after(async () => {
    const report = await lab?.close();
    assert.deepEqual(report?.leftovers, []);
  });

  it('gives every node its own address in 198.18.0.0/15 and no route off the lab network', async () => {
    assert.match(lab.subnet, /^198\.(18|19)\.\d+$/);
    assert.deepEqual(
      lab.nodes.map((n) => n.ip),
      [101, 102, 103].map((h) => `${lab.subnet}.${h}`),
    );
    for (const n of lab.nodes) {
      const addrs = (await inNetns(n.netns, 'ip', ['-4', '-o', 'addr'])).stdout;
      assert.match(addrs, new RegExp(`inet ${n.ip.replace(/\./g, '\\.')}/24`));
      const routes = (await inNetns(n.netns, 'ip', ['-4', 'route'])).stdout;
      assert.doesNotMatch(routes, /default/, `${n.name} has no default route: nothing it sends leaves the machine`);
    }
  });

  it('carries each node’s own address on its connections', async () => {
    const [n1, n2] = [lab.node('node1'), lab.node('node2')];
    const server = await EchoServer.start(n2, 10100);
    try {
      const r = await checkReach(n1, n2, 10100, () => lab.net.dropped(), server);
      assert.equal(r.outcome, 'open');
      assert.ok(r.local?.startsWith(`${n1.ip}:`), `the client's side is node1's address: ${r.local}`);
      assert.deepEqual(
        server.accepted().map((p) => p.split(':')[0]),
        [n1.ip],
        "the server saw node1's address",
      );
    } finally {
      await server.close();
    }
  });

  it('refuses any address it did not create', async () => {
    assert.throws(() => lab.node(`${lab.subnet}.250`), LabUsageError);
    assert.throws(() => lab.node('192.0.2.1'), /not an address of lab/);
    await assert.rejects(lab.net.cut('node1', '10.1.2.3'), /not an address of lab/);
    await assert.rejects(lab.net.deaf('node9'), /no node 'node9'/);
  });

  it('cuts two nodes both ways, touching no third node, and heals completely', async () => {
    const f = await lab.net.cut('node1', 'node2');
    assert.deepEqual(
      (await lab.net.list()).map((x) => [x.id, x.kind]),
      [[f.id, 'cut']],
      'the fault reads back from iptables',
    );
    await expectReach(lab, [
      ['node1', 'node2', 10100, 'dropped'],
      ['node2', 'node1', 10100, 'dropped'],
      ['node1', 'node3', 10100, 'open'],
      ['node3', 'node2', 10100, 'open'],
    ]);
    assert.ok((await lab.net.dropped(f)) > 0);
    await lab.net.heal(f);
    await expectAllOpen(lab, 10100);
  });

  it('cuts one way: A cannot reach B, B still reaches A', async () => {
    const f = await lab.net.cut('node1', 'node2', { oneWay: true });
    await expectReach(lab, [
      ['node1', 'node2', 10100, 'dropped'],
      ['node2', 'node1', 10100, 'open'],
    ]);
    await lab.net.heal(f.id);
    await expectAllOpen(lab, 10100);
  });

  it('cuts one port only: the meta port goes, ZooKeeper’s port stays', async () => {
    const f = await lab.net.cut('node1', 'node2', { port: 10100 });
    await expectReach(lab, [
      ['node1', 'node2', 10100, 'dropped'],
      ['node2', 'node1', 10100, 'dropped'],
      ['node1', 'node2', 2181, 'open'],
      ['node2', 'node1', 2181, 'open'],
    ]);
    await lab.net.heal(f);
    await expectAllOpen(lab, 10100);
  });

  it('makes a node deaf: it hears the request, its answer never arrives; its own calls still work', async () => {
    const f = await lab.net.deaf('node2', { port: 10100 });
    await expectReach(lab, [
      ['node1', 'node2', 10100, 'deaf'],
      ['node3', 'node2', 10100, 'deaf'],
      ['node1', 'node2', 2181, 'open'],
      ['node2', 'node1', 10100, 'open'],
    ]);
    await lab.net.heal(f);
    await expectAllOpen(lab, 10100);
  });

  it('isolates a node from every peer (and, unless told otherwise, from the host)', async () => {
    const f = await lab.net.isolate('node3', { keepHost: true });
    await expectReach(lab, [
      ['node1', 'node3', 10100, 'dropped'],
      ['node3', 'node1', 10100, 'dropped'],
      ['node3', 'node2', 10100, 'dropped'],
      ['node1', 'node2', 10100, 'open'],
    ]);
    // keepHost: the root namespace still reaches it (its kernel answers a closed port at once).
    await checkReachable(lab.node(3).ip);
    await lab.net.heal(f);
    const g = await lab.net.isolate('node3');
    const rules = (await lab.net.rules()).filter((r) => r.fault?.id === g.id);
    assert.ok(rules.length === 2 && rules.every((r) => !r.spec.includes(lab.hostIp)), 'no exception for the host');
    await lab.net.heal(g);
    await expectAllOpen(lab, 10100);
  });

  it('heals one fault without touching another, nor rules that are not the lab’s', async () => {
    const a = await lab.net.cut('node1', 'node2');
    const b = await lab.net.cut('node2', 'node3', { port: 10100 });
    // Somebody else's rule inside a node: heal must leave it.
    const foreign = ['INPUT', '-s', `${lab.subnet}.250/32`, '-j', 'DROP'];
    await inNetns(lab.node(1).netns, 'iptables', ['-w', '5', '-A', ...foreign]);
    try {
      await lab.net.heal(a);
      assert.deepEqual(
        (await lab.net.list()).map((x) => x.id),
        [b.id],
      );
      await expectReach(lab, [
        ['node1', 'node2', 10100, 'open'],
        ['node2', 'node3', 10100, 'dropped'],
      ]);
      const healed = await lab.net.heal();
      assert.deepEqual(
        healed.map((x) => x.id),
        [b.id],
      );
      const input = (await inNetns(lab.node(1).netns, 'iptables', ['-w', '5', '-S', 'INPUT'])).stdout;
      assert.match(input, new RegExp(`-A INPUT -s ${lab.subnet.replace(/\./g, '\\.')}\\.250/32 -j DROP`), 'the foreign rule is still there');
    } finally {
      await inNetns(lab.node(1).netns, 'iptables', ['-w', '5', '-D', ...foreign]);
    }
    await expectAllOpen(lab, 10100);
  });

  it('never touches the root namespace’s iptables, while faults are in force', async () => {
    const faults = [await lab.net.cut('node1', 'node2'), await lab.net.deaf('node3'), await lab.net.isolate('node2', { keepHost: true })];
    assert.equal((await lab.net.list()).length, 3);
    // Other people's rules may come and go on a shared machine; none may be the lab's.
    const root = (await run('iptables', ['-w', '5', '-S'])).stdout.split('\n');
    assert.deepEqual(
      root.filter((l) => l.includes(`zkw-${lab.id}`) || l.includes(`${lab.subnet}.`) || l.includes('zkw ')),
      [],
    );
    for (const f of faults) await lab.net.heal(f);
    assert.deepEqual(await lab.net.list(), []);
  });

  it('runs beside another lab: own id, own /24, faults that stay in their lab', async () => {
    const other = await Lab.create({ nodes: 2 });
    try {
      assert.notEqual(other.id, lab.id);
      assert.notEqual(other.subnet, lab.subnet);
      const f = await other.net.cut('node1', 'node2');
      assert.deepEqual(await lab.net.list(), []);
      await expectReach(lab, [['node1', 'node2', 10100, 'open']]);
      await expectReach(other, [['node1', 'node2', 10100, 'dropped']]);
      await other.net.heal(f);
    } finally {
      assert.deepEqual((await other.close()).leftovers, []);
    }
  });
});
