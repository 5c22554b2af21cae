// `zkwarden leader` and `zkwarden members` fail fast on real servers: every server is probed
// before a session, an unresolvable name or a refused port is named at once (exit 3 when
// nothing is left) and left out of the connect string, and a paused server (SIGSTOP: its kernel
// still accepts TCP) costs one server's share of --timeout, after which the next one answers.
// "At once" is shown without timing: those runs are given a --timeout far longer than the
// test's own limit on the child, so a run that waited for it would be killed and fail.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { Election, registerMember } from '../../src/recipes/index.ts';
import { runCliAsync } from './run-cli.ts';

const NEVER_MS = '3600000';
const PATH = '/fail-fast/__mj_j';
const MEMBERS = '/fail-fast/__mj_cluster';

describe('online commands fail fast', () => {
  let ens: Ensemble;
  let client: ZooKeeperClient;
  let paused: number;
  let refused: string;
  const others: string[] = [];

  before(async () => {
    ens = await Ensemble.start({ size: 3, tickTime: 250 });
    paused = (await ens.followerIds())[0]!;
    for (const s of ens.servers) if (s.id !== paused) others.push(ens.address(s.id));
    // Nothing listens on this port of the ensemble's own subnet.
    refused = `${ens.server(paused).host}:2999`;
    // The test's session avoids the server it will pause.
    client = createClient(others.join(','), { sessionTimeoutMs: 10_000 });
    await client.connect();
    const election = new Election(client, { path: PATH, candidate: { endpoint: '10.1.88.101:10100', name: 'node1' } });
    await election.join();
    await election.awaitLeadership({ timeoutMs: 10_000 });
    await registerMember(client, '10.1.88.101:10100', { role: 'meta' }, { path: MEMBERS });
  });

  after(async () => {
    await client?.close();
    await ens?.close();
  });

  it('names a refused port at once, leaves it out and asks the others', async () => {
    const r = await runCliAsync(['leader', '--servers', [refused, ...others].join(','), '--path', PATH, '--timeout', NEVER_MS]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^leader 10\.1\.88\.101:10100 \(node1\)/);
    assert.equal(r.stderr, `left out of --servers: ${refused}: connection refused\n`);

    const m = await runCliAsync(['members', '--servers', `${refused},${others[0]}`, '--path', MEMBERS, '--json', '--timeout', NEVER_MS]);
    assert.equal(m.status, 0, m.stderr);
    assert.deepEqual(
      (JSON.parse(m.stdout) as { members: { endpoint: string }[] }).members.map((x) => x.endpoint),
      ['10.1.88.101:10100'],
    );
  });

  it('reads --min-epoch as a zxid (0x hex or decimal) and nothing else', async () => {
    const epoch = Number(
      (JSON.parse((await runCliAsync(['leader', '--servers', others.join(','), '--path', PATH, '--json'])).stdout) as { leader: { epoch: string } }).leader
        .epoch,
    );
    const above = await runCliAsync(['leader', '--servers', others.join(','), '--path', PATH, '--min-epoch', `0x${(epoch + 1).toString(16)}`]);
    assert.equal(above.status, 1, 'a leader below --min-epoch is no leader');
    const bad = await runCliAsync(['leader', '--servers', others.join(','), '--path', PATH, '--min-epoch', '1e3']);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, "zkwarden: --min-epoch expects a zxid such as 0x100000025 or a decimal number, got '1e3'\n");
  });

  it('exits 3 at once, naming each server, when none can be reached', async () => {
    const second = `${ens.server(paused).host}:2998`;
    const r = await runCliAsync(['members', '--servers', `${refused},${second}`, '--path', MEMBERS, '--timeout', NEVER_MS]);
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stderr, `zkwarden: ZooKeeper unreachable: ${refused}: connection refused; ${second}: connection refused\n`);
    assert.equal(r.stdout, '');

    const j = await runCliAsync(['leader', '--servers', refused, '--path', PATH, '--json', '--timeout', NEVER_MS]);
    assert.equal(j.status, 3);
    assert.deepEqual(JSON.parse(j.stdout), { error: { message: `ZooKeeper unreachable: ${refused}: connection refused`, exitCode: 3 } });
  });

  it('names an unresolvable host at once', async () => {
    // In a network namespace of its own (nothing but a down loopback) the name lookup fails on
    // this machine, without a query leaving it.
    const host = 'no-such-zookeeper.invalid';
    const r = await runCliAsync(['leader', '--servers', `${host}:2181`, '--timeout', NEVER_MS], { wrapper: ['unshare', '--net'] });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`^zkwarden: ZooKeeper unreachable: ${host}:2181: cannot resolve ${host} \\(E[A-Z_]+\\)\\n$`));
  });

  it('a paused server costs its share of --timeout, then the next server answers', async () => {
    await ens.pause(paused);
    try {
      // Listed first and tried first: had it cost the whole --timeout, no session would be left.
      const order = [ens.address(paused), ...others].join(',');
      const r = await runCliAsync(['leader', '--servers', order, '--path', PATH, '--timeout', '9000']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^leader 10\.1\.88\.101:10100 \(node1\)/);

      const alone = await runCliAsync(['members', '--servers', ens.address(paused), '--path', MEMBERS, '--timeout', '1500']);
      assert.equal(alone.status, 3);
      assert.equal(alone.stderr, `zkwarden: ZooKeeper unreachable: operation timed out (no session with any of ${ens.address(paused)} within 1500 ms)\n`);
    } finally {
      await ens.resume(paused);
    }
  });
});
