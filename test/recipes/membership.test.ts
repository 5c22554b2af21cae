// Membership, discovery and their CLI against a real ensemble: members register ephemeral
// znodes named after their endpoints (the seed's /zbs/meta/__mj_cluster/IP:PORT), a watcher
// follows joins and leaves (clean close, session closed by another holder), a second session
// cannot take an endpoint a live session holds; discovery started before any election exists
// follows it; `zkwarden leader` and `zkwarden members` answer from a child process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { endSession, type ZooKeeperClient } from '../../src/zk/index.ts';
import {
  DEFAULT_MEMBERS_PATH,
  Election,
  LeaderDiscovery,
  MemberExistsError,
  MembersWatcher,
  RecipeUsageError,
  listMembers,
  readLeader,
  registerMember,
  unregisterMember,
  type LeaderInfo,
  type Member,
} from '../../src/recipes/index.ts';
import { Pool, until } from './helpers.ts';

let ens: Ensemble;
let pool: Pool;

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250 });
  pool = new Pool(ens.connectString, { sessionTimeoutMs: 3000 });
});

after(async () => {
  await pool?.closeAll();
  await ens?.close();
});

describe('membership', () => {
  it('members register, are listed with their metadata, and are followed as they join and leave', async () => {
    const observer = await pool.client();
    const watcher = new MembersWatcher(observer);
    const changes: { joined: string[]; left: string[] }[] = [];
    watcher.on('change', (_m, joined, left) => void changes.push({ joined: joined.map((m) => m.endpoint), left: left.map((m) => m.endpoint) }));
    assert.deepEqual(await watcher.start(), [], 'no members path yet');

    const nodes = ['10.1.88.101:10100', '10.1.88.102:10100', '10.1.88.103:10100'];
    const sessions: ZooKeeperClient[] = [];
    for (const [i, ep] of nodes.entries()) {
      const c = await pool.client();
      sessions.push(c);
      const m = await registerMember(c, ep, { role: 'meta', node: i + 1 });
      assert.equal(m.znode, `${DEFAULT_MEMBERS_PATH}/${ep}`);
      assert.equal(m.sessionId, c.sessionId);
    }
    await until('the watcher to see three members', () => watcher.members.length === 3);
    const listed: Member[] = await listMembers(observer);
    assert.deepEqual(
      listed.map((m) => [m.endpoint, m.metadata.node, m.sessionId === sessions[Number(m.metadata.node) - 1].sessionId]),
      [
        ['10.1.88.101:10100', 1, true],
        ['10.1.88.102:10100', 2, true],
        ['10.1.88.103:10100', 3, true],
      ],
    );
    assert.equal((await observer.exists(listed[0].znode))?.ephemeralOwner, sessions[0].sessionId);

    // Registering again on the same session keeps the znode; another live session may not take it.
    const again = await registerMember(sessions[0], nodes[0], { role: 'meta', node: 1 });
    assert.equal(again.since, listed[0].since);
    const intruder = await pool.client();
    await assert.rejects(registerMember(intruder, nodes[0]), (e: unknown) => e instanceof MemberExistsError && e.ownerSessionId === sessions[0].sessionId);
    await assert.rejects(registerMember(intruder, 'a/b'), RecipeUsageError);

    // Leaves: a clean close, a session closed by another holder, an explicit unregister.
    await sessions[0].close();
    await until('node 1 to leave', () => watcher.members.length === 2);
    await endSession(ens.connectString, sessions[1].sessionId, sessions[1].sessionPassword);
    await until('node 2 to leave', () => watcher.members.length === 1);
    await unregisterMember(sessions[2], nodes[2]);
    await unregisterMember(sessions[2], nodes[2]); // idempotent
    await until('node 3 to leave', () => watcher.members.length === 0);
    // The freed endpoint can be registered by a new session.
    const back = await registerMember(intruder, nodes[0], { role: 'meta', node: 1, restarted: true });
    await until('node 1 back', () => watcher.members.length === 1);
    assert.equal(watcher.members[0].sessionId, back.sessionId);
    assert.deepEqual(
      changes
        .slice(0, 3)
        .flatMap((c) => c.joined)
        .sort(),
      nodes,
    );
    assert.deepEqual(
      changes.flatMap((c) => c.left),
      nodes,
    );
    watcher.stop();
  });

  it('discovery started before any election follows the first leader and its successors', async () => {
    const path = '/d1/__mj_j';
    const reader = await pool.client();
    assert.equal(await readLeader(reader, { path }), null);
    const d = new LeaderDiscovery(reader, { path });
    const views: (LeaderInfo | null)[] = [];
    d.on('change', (v) => void views.push(v));
    assert.equal(await d.start(), null);
    const c1 = await pool.client();
    const e1 = new Election(c1, { path, candidate: { endpoint: '10.1.88.101:10100', name: 'node1', metadata: { zone: 'a' } } });
    await e1.join();
    await until('discovery to see node1 claimed', () => d.leader?.claimed === true);
    assert.equal(d.leader?.name, 'node1');
    assert.equal(d.leader?.payload.zone, 'a');
    assert.equal(d.leader?.epoch, e1.term?.epoch);
    const c2 = await pool.client();
    const e2 = new Election(c2, { path, candidate: { endpoint: '10.1.88.102:10100' } });
    await e2.join();
    await c1.close();
    await until('discovery to see node2', () => d.leader?.endpoint === '10.1.88.102:10100' && d.leader.claimed);
    assert.equal(d.leader?.name, '10.1.88.102:10100');
    await e2.leave();
    await until('no leader', () => d.leader === null);
    assert.deepEqual(
      views.map((v) => (v ? `${v.endpoint}${v.claimed ? '' : ' (unclaimed)'}` : null)).filter((v) => v === null || !v.endsWith('(unclaimed)')),
      ['10.1.88.101:10100', '10.1.88.102:10100', null],
    );
    assert.throws(() => new LeaderDiscovery(reader, { path: 'relative' }), RecipeUsageError);
    assert.throws(() => new Election(reader, { path, candidate: { endpoint: '' } }), RecipeUsageError);
    assert.throws(() => new Election(reader, { path, prefix: 'n7', candidate: { endpoint: 'x' } }), RecipeUsageError);
    d.stop();
  });

  it('the CLI: zkwarden leader and members, one-shot and --watch, human and JSON', async () => {
    const path = '/cli/__mj_j';
    const membersPath = '/cli/__mj_cluster';
    const c1 = await pool.client();
    const e1 = new Election(c1, { path, candidate: { endpoint: '10.1.88.101:10100', name: 'node1' } });
    await e1.join();
    await registerMember(c1, '10.1.88.101:10100', { role: 'meta' }, { path: membersPath });
    const term = e1.term;
    assert.ok(term);

    const one = await cli(['leader', '--servers', ens.connectString, '--path', path, '--json']);
    assert.equal(one.status, 0, one.stderr);
    const parsed = JSON.parse(one.stdout) as { leader: { endpoint: string; epoch: string; claimed: boolean; sessionId: string } };
    assert.equal(parsed.leader.endpoint, '10.1.88.101:10100');
    assert.equal(parsed.leader.epoch, `0x${term.epoch.toString(16)}`);
    assert.equal(parsed.leader.claimed, true);
    assert.equal(parsed.leader.sessionId, `0x${c1.sessionId.toString(16)}`);
    const human = await cli(['leader', '--servers', ens.connectString, '--path', path]);
    assert.match(human.stdout, new RegExp(`^leader 10\\.1\\.88\\.101:10100 \\(node1\\)  epoch 0x${term.epoch.toString(16)}  since \\d{4}-`));
    const none = await cli(['leader', '--servers', ens.connectString, '--path', '/cli/nothing']);
    assert.equal(none.status, 1);
    assert.match(none.stdout, /no leader under \/cli\/nothing/);
    const stale = await cli(['leader', '--servers', ens.connectString, '--path', path, '--min-epoch', String(term.epoch + 1)]);
    assert.equal(stale.status, 1, 'a lower epoch than --min-epoch is not a leader');
    const bad = await cli(['leader', '--servers', ens.connectString, '--path', 'relative']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--path: "relative" does not start with \//);
    const members = await cli(['members', '--servers', ens.connectString, '--path', membersPath, '--json']);
    assert.equal(members.status, 0, members.stderr);
    assert.deepEqual(
      (JSON.parse(members.stdout) as { members: { endpoint: string; metadata: unknown }[] }).members.map((m) => [m.endpoint, m.metadata]),
      [['10.1.88.101:10100', { role: 'meta' }]],
    );

    // --watch follows a hand-over and prints each view once, epochs growing.
    const watch = spawn(process.execPath, ['--import', 'tsx', CLI, 'leader', '--servers', ens.connectString, '--path', path, '--watch', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: { leader: { endpoint: string; epoch: string; claimed: boolean } | null }[] = [];
    createInterface({ input: watch.stdout }).on('line', (l) => void lines.push(JSON.parse(l) as (typeof lines)[number]));
    let watchErr = '';
    watch.stderr.on('data', (d: Buffer) => (watchErr += d.toString()));
    await until('the first view', () => lines.length === 1, 30_000).catch((e: Error) => {
      throw new Error(`${e.message}; lines ${JSON.stringify(lines)}; stderr: ${watchErr}`);
    });
    const c2 = await pool.client();
    const e2 = new Election(c2, { path, candidate: { endpoint: '10.1.88.102:10100' } });
    await e2.join();
    await c1.close();
    await until('the watch to show node2 claimed', () => lines.some((l) => l.leader?.endpoint === '10.1.88.102:10100' && l.leader.claimed), 30_000);
    const exited = new Promise<number | null>((r) => watch.once('exit', (code) => r(code)));
    watch.kill('SIGINT');
    assert.equal(await exited, 0);
    const epochs = lines.map((l) => (l.leader ? Number(l.leader.epoch) : 0)).filter((e) => e > 0);
    assert.deepEqual(
      epochs,
      [...epochs].sort((a, b) => a - b),
    );
    await e2.leave();
  });
});

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

/** The real command in a child process, without blocking this process's sessions. */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
