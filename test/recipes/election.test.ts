// Election with fencing epochs against a real 3-server ensemble, every candidate in its own
// session: one leader at a time as seen by candidates and discovery; hand-over on a closed
// session and on a session expired by its timeout (a SIGSTOPped leader process), with the
// hand-over time printed; no herd; suspended leaders stop and resume within their session;
// expired leaders never act again; deposed leaders' fenced writes fail; a ZooKeeper leader
// change moves no meta leader; a create whose reply is lost leaves no orphan candidate.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { MultiError, NoNodeError } from '../../src/zk/index.ts';
import {
  CandidacyEndedError,
  DEFAULT_ELECTION_PATH,
  Election,
  FencedError,
  LeaderDiscovery,
  fencedMulti,
  readLeader,
  type LeaderInfo,
} from '../../src/recipes/index.ts';
import { LeaderObserver, Pool, hex, nextElected, until, type Candidate } from './helpers.ts';
import { LossyProxy } from './proxy.ts';

let ens: Ensemble;
let pool: Pool;
const children: ChildProcess[] = [];
const SESSION_MS = 3000;

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250, maxSessionTimeout: 20_000 });
  pool = new Pool(ens.connectString, { sessionTimeoutMs: SESSION_MS });
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await pool?.closeAll();
  await ens?.close();
});

/** Ids of the ZooKeeper followers (killing one keeps the quorum and its leader). */
async function zkFollowers(): Promise<number[]> {
  await ens.waitForQuorum({ timeoutMs: 60_000 });
  const leader = await ens.leaderId();
  return ens.servers.map((s) => s.id).filter((id) => id !== leader);
}

/** Every leader view a discovery watcher reports, for the never-backwards check. */
async function discover(path: string): Promise<{ d: LeaderDiscovery; views: (LeaderInfo | null)[] }> {
  const d = new LeaderDiscovery(await pool.client(), { path });
  const views: (LeaderInfo | null)[] = [];
  d.on('change', (v) => void views.push(v));
  views.push(await d.start());
  return { d, views };
}

/** One sync per candidate on its own connection: every notification sent before it has arrived. */
async function roundTrips(cs: Candidate[], path: string): Promise<void> {
  await Promise.all(cs.map((c) => c.client.sync(path)));
}

function assertEpochsNeverBack(views: (LeaderInfo | null)[]): void {
  let highest = 0;
  for (const v of views) {
    if (!v) continue;
    assert.ok(v.epoch >= highest, `discovery went back from epoch ${hex(highest)} to ${hex(v.epoch)}`);
    highest = v.epoch;
  }
}

describe('election', () => {
  it('one leader, seen by all; a closed leader session hands over to its successor only (no herd)', async (t) => {
    const path = '/e1/__mj_j';
    const obs = new LeaderObserver();
    const { d, views } = await discover(path);
    const cs: Candidate[] = [];
    for (let i = 0; i < 5; i++) cs.push(await pool.candidate(`c${i}`, path, obs));
    assert.deepEqual(
      cs.map((c) => c.election.isLeader()),
      [true, false, false, false, false],
    );
    const t0 = cs[0].election.term;
    assert.ok(t0);
    await until('discovery to see c0 claimed', () => d.leader?.claimed === true);
    assert.equal(d.leader?.epoch, t0.epoch);
    assert.equal(d.leader?.endpoint, 'c0:10100');
    assert.equal(d.leader?.sessionId, cs[0].client.sessionId);
    assert.equal(d.leader?.since, t0.since);
    // Epoch is the czxid of the winning znode.
    const admin = await pool.client();
    assert.equal((await admin.exists(t0.znode))?.czxid, t0.epoch);

    const before = cs.map((c) => c.election.notifications);
    const elected = nextElected(cs[1].election);
    const start = performance.now();
    await cs[0].client.close();
    const { term: t1 } = await elected;
    const handoverMs = performance.now() - start;
    t.diagnostic(`hand-over after a closed leader session: ${handoverMs.toFixed(1)} ms (close -> successor elected)`);
    assert.equal(cs[0].election.state, 'left');
    assert.ok(t1.epoch > t0.epoch, 'epochs grow across terms');
    await until('discovery to follow', () => d.leader?.epoch === t1.epoch && d.leader.claimed);
    // A round trip on each candidate's own connection: its reply follows every notification
    // that connection's server had sent for the changes before it.
    await roundTrips(cs.slice(1), path);
    const delta = cs.map((c, i) => c.election.notifications - before[i]);
    t.diagnostic(`notifications per candidate when the leader went: ${delta.slice(1).join(', ')} (c1..c4)`);
    assert.deepEqual(delta.slice(1), [1, 0, 0, 0], 'only the successor hears of it');
    assert.deepEqual(
      cs.slice(1).map((c) => c.election.isLeader()),
      [true, false, false, false],
    );

    // A middle candidate leaving wakes only its own successor.
    const mid = cs.map((c) => c.election.notifications);
    await cs[2].election.leave();
    await until('c3 to watch c1', () => cs[3].election.notifications === mid[3] + 1);
    await roundTrips([cs[1], cs[3], cs[4]], path);
    assert.deepEqual(
      cs.slice(1).map((c, i) => c.election.notifications - mid[i + 1]),
      [0, 0, 1, 0],
    );
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    assert.equal(obs.maxConcurrent, 1);
    assertEpochsNeverBack(views);
    d.stop();
  });

  it('a frozen leader process (SIGSTOP) loses its session by timeout; the successor takes over; the old leader never acts again', async (t) => {
    const path = '/e2/__mj_j';
    const logPath = '/e2/log';
    const admin = await pool.client();
    await admin.create('/e2');
    await admin.create(logPath);
    const obs = new LeaderObserver();
    const { d, views } = await discover(path);

    // The leader is a child process, like the seed's meta on node1.
    const script = join(import.meta.dirname, 'fixtures', 'candidate-process.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, ens.connectString, path, logPath, 'frozen:10100', String(SESSION_MS)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => void lines.push(JSON.parse(l) as Record<string, unknown>));
    await until('the child to lead and write', () => lines.some((l) => l.ev === 'write' && l.ok === true), 60_000);
    const childEpoch = lines.find((l) => l.ev === 'elected')?.epoch as number;
    const c1 = await pool.candidate('c1', path, obs);
    const c2 = await pool.candidate('c2', path, obs);
    assert.equal(c1.election.isLeader(), false);
    assert.equal(d.leader?.epoch, childEpoch);

    let stoppedAt = 0;
    const elected = nextElected(c1.election, 30_000);
    child.kill('SIGSTOP');
    stoppedAt = performance.now();
    const linesAtStop = lines.length;
    const { term } = await elected;
    const handoverMs = performance.now() - stoppedAt;
    t.diagnostic(
      `hand-over after the leader process froze: ${handoverMs.toFixed(0)} ms (session timeout ${SESSION_MS} ms requested; SIGSTOP -> successor elected)`,
    );
    assert.ok(term.epoch > childEpoch);
    // The new leader writes through the same fence.
    await c1.election.writer().create(`${logPath}/w-`, JSON.stringify({ epoch: term.epoch, who: 'c1' }), 'persistent_sequential');

    const wokeAt = Date.now();
    child.kill('SIGCONT');
    await until('the child to learn it lost', () => lines.some((l) => l.ev === 'state' && l.state === 'lost'), 20_000);
    // A round trip on the child's pipe: it answers once its write in flight has reported, so
    // every write it issued is on a line before the answer ('lost' is final: no more writes).
    child.stdin!.write('flush\n');
    await until('the child to flush', () => lines.some((l) => l.ev === 'flushed'), 20_000);
    const afterWake = lines.slice(linesAtStop);
    t.diagnostic(
      `the frozen leader after SIGCONT: ${afterWake.map((l) => `${String(l.ev)}${l.reason ? `(${String(l.reason)})` : ''}${l.state ? `(${String(l.state)})` : ''}${l.ev === 'write' ? `(${l.ok ? 'ok' : String(l.error)})` : ''}`).join(' ')}`,
    );
    assert.ok(
      afterWake.some((l) => l.ev === 'deposed'),
      `the child reports being deposed: ${JSON.stringify(afterWake)}`,
    );
    // A write issued before the freeze may report its (earlier) success only now: the lines
    // reach this process late. What must never happen is a write issued after the wake landing.
    assert.equal(
      afterWake.filter((l) => l.ev === 'write' && l.ok === true && (l.issuedAt as number) >= wokeAt).length,
      0,
      `no write the frozen leader issues after it wakes lands: ${JSON.stringify(afterWake)}`,
    );
    assert.equal(afterWake.filter((l) => l.ev === 'elected').length, 0);
    // ZooKeeper's record: every write in order, epochs never go back.
    const { children: names } = await admin.getChildren(logPath);
    const epochs: number[] = [];
    for (const n of names.sort()) epochs.push((JSON.parse((await admin.getData(`${logPath}/${n}`)).data.toString()) as { epoch: number }).epoch);
    const childWrites = lines.filter((l) => l.ev === 'write' && l.ok === true).length;
    // The child writes one record at a time; one in flight at SIGSTOP may have landed (before
    // the freeze, while it led) without the child hearing back: ConnectionLoss is ambiguous.
    const childLogged = epochs.filter((e) => e === childEpoch).length;
    assert.ok(childLogged >= childWrites && childLogged <= childWrites + 1, `${childLogged} logged, ${childWrites} acknowledged`);
    // c1's record came before SIGCONT: anything the child landed after waking would follow it.
    assert.equal(epochs.at(-1), term.epoch);
    assert.deepEqual(
      epochs,
      [...epochs].sort((a, b) => a - b),
      'fenced writes are ordered by epoch',
    );
    assert.equal(c2.election.isLeader(), false);
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    assertEpochsNeverBack(views);
    child.kill('SIGTERM');
    d.stop();
  });

  it('a leader whose server is killed is suspended and stops at once, then resumes its term on reconnect', async (t) => {
    const path = '/e3/__mj_j';
    const [victim, other] = await zkFollowers();
    const obs = new LeaderObserver();
    // The leader reaches the victim first; c2 connects elsewhere.
    const order = [ens.address(victim), ens.address(other)].join(',');
    const c1 = await pool.candidate('c1', path, obs, { shuffleServers: false, sessionTimeoutMs: 4000 }, order);
    const c2 = await pool.candidate('c2', path, obs, {}, ens.address(other));
    assert.equal(c1.client.server, ens.address(victim));
    const term = c1.election.term;
    assert.ok(term);
    const { d, views } = await discover(path);

    const seenAtDeposal: { isLeader: boolean; state: string; term: unknown; fenced: unknown }[] = [];
    c1.election.once('deposed', ({ reason }) => {
      assert.equal(reason, 'suspended');
      // In the same tick: no leadership, no term, and the writer refuses.
      const fenced = c1.election
        .writer()
        .multi([])
        .then(
          () => null,
          (e: unknown) => e,
        );
      seenAtDeposal.push({ isLeader: c1.election.isLeader(), state: c1.election.state, term: c1.election.term, fenced });
    });
    const resumed = nextElected(c1.election);
    const killedAt = performance.now();
    await ens.kill(victim);
    const info = await resumed;
    t.diagnostic(`suspended leader resumed its term ${(performance.now() - killedAt).toFixed(0)} ms after its server was killed`);
    assert.equal(seenAtDeposal.length, 1);
    assert.equal(seenAtDeposal[0].isLeader, false);
    assert.equal(seenAtDeposal[0].term, null);
    assert.equal(seenAtDeposal[0].state, 'suspended');
    const refused = await (seenAtDeposal[0].fenced as Promise<unknown>);
    assert.ok(refused instanceof FencedError && refused.reason === 'notLeader', String(refused));
    assert.equal(info.resumed, true);
    assert.equal(info.term.epoch, term.epoch);
    assert.equal(info.term.since, term.since);
    assert.equal(c1.client.server, ens.address(other));
    assert.equal(c1.client.sessionId, term.sessionId);
    assert.deepEqual(
      obs.views.filter((v) => v.who === 'c1').map((v) => `${v.ev}${v.reason ? `:${v.reason}` : ''}`),
      ['elected', 'deposed:suspended', 'elected'],
    );
    assert.equal(obs.elections('c2').length, 0, 'no one else was elected');
    const admin = await pool.client();
    await admin.create('/e3-data', 'v0');
    await c1.election.writer().setData('/e3-data', 'by the resumed leader');
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    assertEpochsNeverBack(views);
    assert.equal(d.leader?.epoch, term.epoch);
    d.stop();
    await ens.startServer(victim);
    await c1.election.leave();
    await c2.election.leave();
  });

  it('a leader whose session expires is deposed for good; its successor leads; it never acts again', async () => {
    const path = '/e4/__mj_j';
    const [only] = await zkFollowers();
    const obs = new LeaderObserver();
    // The leader can reach only one server: once that server is gone, the session dies.
    const c1 = await pool.candidate('c1', path, obs, { sessionTimeoutMs: 2000 }, ens.address(only));
    const c2 = await pool.candidate('c2', path, obs);
    const term = c1.election.term;
    assert.ok(term);
    const waiting = c1.election.awaitLeadership();
    assert.deepEqual(await waiting, term);
    const reasons: string[] = [];
    c1.election.on('deposed', ({ reason }) => void reasons.push(reason));
    const succ = nextElected(c2.election);
    await ens.kill(only);
    const { term: t2 } = await succ;
    await until('c1 to learn of its expiry', () => c1.election.state === 'lost');
    assert.deepEqual(reasons, ['suspended']);
    assert.ok(t2.epoch > term.epoch);
    await ens.startServer(only);
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    // Its client is expired, a final state: it never connects again, so nothing can revive it.
    assert.equal(c1.client.state, 'expired');
    assert.equal((await readLeader(await pool.client(), { path }))?.epoch, t2.epoch);
    assert.equal(c1.election.isLeader(), false);
    assert.equal(c1.election.state, 'lost');
    assert.equal(obs.elections('c1').length, 1, 'c1 was elected once and never again');
    await assert.rejects(c1.election.awaitLeadership(), CandidacyEndedError);
    await assert.rejects(c1.election.writer().setData(path, 'stale'), (e: unknown) => e instanceof FencedError && e.reason === 'notLeader');
    // Its old term, sent by anyone, is refused by ZooKeeper: the znode went with the session.
    const admin = await pool.client();
    await assert.rejects(
      fencedMulti(admin, term, [{ op: 'setData', path, data: 'stale' }]),
      (e: unknown) => e instanceof FencedError && e.reason === 'znodeGone',
    );
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    await c2.election.leave();
  });

  it("a deposed leader's fenced writes fail (znode deleted or changed by a guard); discovery never goes back", async () => {
    const path = '/e5/__mj_j';
    const admin = await pool.client();
    await admin.create('/e5-data', 'v0');
    const obs = new LeaderObserver();
    const { d, views } = await discover(path);
    const c1 = await pool.candidate('c1', path, obs);
    const c2 = await pool.candidate('c2', path, obs);
    const w1 = c1.election.writer();
    await w1.setData('/e5-data', 'by c1');
    const old = c1.election.term;
    assert.ok(old);

    // A guard deposes c1 by deleting its election znode; c1 hears of it, moves to the back.
    const deposed = new Promise<string>((r) => c1.election.once('deposed', ({ reason }) => r(reason)));
    const succ = nextElected(c2.election);
    obs.deposeFromOutside('c1', old.epoch);
    await admin.delete(old.znode);
    // Sent with the old term before or after c1 noticed: ZooKeeper refuses it either way.
    await assert.rejects(
      fencedMulti(c1.client, old, [{ op: 'setData', path: '/e5-data', data: 'stale write' }]),
      (e: unknown) => e instanceof FencedError && e.reason === 'znodeGone' && e.epoch === old.epoch,
    );
    assert.equal(await deposed, 'znodeGone');
    await assert.rejects(w1.setData('/e5-data', 'stale'), (e: unknown) => e instanceof FencedError && e.reason === 'notLeader');
    const { term: t2 } = await succ;
    assert.ok(t2.epoch > old.epoch);
    await until('c1 to rejoin at the back', () => c1.election.state === 'candidate' && c1.election.znodePath !== null);
    assert.notEqual(c1.election.znodePath, old.znode);
    assert.equal((await admin.getData('/e5-data')).data.toString(), 'by c1');

    // A guard fences by changing the leader's znode (its version): the term's writes fail with
    // znodeChanged, the leader steps down and queues again, c1 leads in a new term.
    const w2 = c2.election.writer();
    await w2.setData('/e5-data', 'by c2');
    const c2Deposed = new Promise<string>((r) => c2.election.once('deposed', ({ reason }) => r(reason)));
    const back = nextElected(c1.election);
    obs.deposeFromOutside('c2', t2.epoch);
    await admin.setData(t2.znode, 'fenced by guard');
    // Refused either way: the znode changed, or c2 already heard of it, stepped down and deleted
    // its znode to queue again (its data watch can beat this request to the server).
    await assert.rejects(
      fencedMulti(c2.client, t2, [{ op: 'setData', path: '/e5-data', data: 'stale' }]),
      (e: unknown) => e instanceof FencedError && (e.reason === 'znodeChanged' || e.reason === 'znodeGone') && e.epoch === t2.epoch,
    );
    assert.equal(await c2Deposed, 'fenced');
    const { term: t3 } = await back;
    assert.ok(t3.epoch > t2.epoch);
    assert.equal((await admin.getData('/e5-data')).data.toString(), 'by c2');
    // A failing op after the guard is a MultiError indexed into the caller's ops; nothing applied.
    await assert.rejects(
      c1.election.writer().multi([
        { op: 'setData', path: '/e5-data', data: 'x' },
        { op: 'delete', path: '/nope' },
      ]),
      (e: unknown) => e instanceof MultiError && e.index === 1 && e.cause instanceof NoNodeError,
    );
    assert.equal((await admin.getData('/e5-data')).data.toString(), 'by c2');

    await until('discovery on the current term', async () => d.leader?.epoch === (await readLeader(admin, { path }))?.epoch);
    assertEpochsNeverBack(views);
    // A reader that has seen a higher epoch ignores a lower one.
    const current = d.leader;
    assert.ok(current);
    const seeded = new LeaderDiscovery(admin, { path, minEpoch: current.epoch + 1 });
    const stale: LeaderInfo[] = [];
    seeded.on('stale', (v) => void stale.push(v));
    assert.equal(await seeded.start(), null);
    assert.equal(stale.length, 1);
    assert.equal(stale[0].epoch, current.epoch);
    seeded.stop();
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    d.stop();
    await c1.election.leave();
    await c2.election.leave();
  });

  it('resign hands leadership to the next candidate and queues at the back; a lone candidate leads again in a new term', async () => {
    const path = '/e6/__mj_j';
    const obs = new LeaderObserver();
    const c1 = await pool.candidate('c1', path, obs);
    const c2 = await pool.candidate('c2', path, obs);
    const t1 = c1.election.term;
    assert.ok(t1);
    const succ = nextElected(c2.election);
    await c1.election.resign();
    const { term: t2 } = await succ;
    assert.ok(t2.epoch > t1.epoch);
    assert.equal(c1.election.state, 'candidate');
    const back = nextElected(c1.election);
    await c2.election.leave();
    const { term: t3 } = await back;
    assert.ok(t3.epoch > t2.epoch);
    const again = nextElected(c1.election);
    await c1.election.resign();
    assert.ok((await again).term.epoch > t3.epoch);
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    await c1.election.leave();
    assert.equal(c1.election.state, 'left');
  });

  it('a ZooKeeper leader change moves no meta leader', async (t) => {
    const path = DEFAULT_ELECTION_PATH;
    const obs = new LeaderObserver();
    // Sessions long enough to outlive the ZooKeeper election.
    const opts = { sessionTimeoutMs: 10_000 };
    const cs: Candidate[] = [];
    for (let i = 0; i < 3; i++) cs.push(await pool.candidate(`m${i}`, path, obs, opts));
    const { d, views } = await discover(path);
    const term = cs[0].election.term;
    assert.ok(term);
    const zkLeader = await ens.leaderId();
    const killedAt = performance.now();
    await ens.kill(zkLeader);
    const { leaderId } = await ens.waitForQuorum({ timeoutMs: 60_000 });
    assert.notEqual(leaderId, zkLeader);
    await until('every candidate connected again', () => cs.every((c) => c.client.state === 'connected'));
    await until('m0 leads again', () => cs[0].election.isLeader());
    t.diagnostic(`ZooKeeper leader ${zkLeader} -> ${leaderId}; meta leader m0 acting again after ${(performance.now() - killedAt).toFixed(0)} ms`);
    assert.equal(cs[0].election.term?.epoch, term.epoch, 'same term');
    assert.equal(cs[0].election.term?.since, term.since);
    assert.deepEqual(
      obs.elections().map((v) => v.who),
      obs.elections().map(() => 'm0'),
      'only m0 was ever elected',
    );
    assert.ok(
      obs
        .elections()
        .slice(1)
        .every((v) => v.resumed === true && v.epoch === term.epoch),
      'later elections only resume the term',
    );
    t.diagnostic(`m0's views: ${obs.views.map((v) => `${v.ev}${v.reason ? `:${v.reason}` : ''}${v.resumed ? ':resumed' : ''}`).join(' ')}`);
    assert.equal(obs.violation, null);
    assert.deepEqual(obs.inconsistent, []);
    await d.client.sync(path);
    await until('discovery to read again', async () => d.leader?.epoch === term.epoch);
    assert.ok(views.every((v) => v === null || v.epoch === term.epoch));
    d.stop();
    await ens.startServer(zkLeader);
    for (const c of cs) await c.election.leave();
  });

  it('a create whose reply was lost leaves no orphan candidate: the recipe finds its znode again', async () => {
    const path = '/e7/__mj_j';
    const admin = await pool.client();
    await admin.create('/e7');
    await admin.create(path);
    const [first, second] = await zkFollowers();
    const proxy = new LossyProxy('127.0.0.1', ens.server(first).host, ens.server(first).clientPort);
    await proxy.start();
    try {
      const other = await pool.candidate('other', path, undefined, {}, ens.address(second));
      // The candidate reaches ZooKeeper through the proxy first, then directly.
      const client = await pool.client({ shuffleServers: false }, `${proxy.address},${ens.address(second)}`);
      const e = new Election(client, { path, candidate: { endpoint: 'lossy:10100' } });
      const states: string[] = [];
      e.on('state', (s) => void states.push(s));
      const warnings: string[] = [];
      e.on('warning', (w) => void warnings.push(w.message));
      proxy.loseNextReply();
      await e.join(); // the create lands, its reply is lost, the connection drops
      assert.equal(proxy.lost, 1);
      await until('the candidate to be back in the queue', () => e.state === 'candidate' && e.znodePath !== null, 20_000).catch((err: Error) => {
        throw new Error(`${err.message}: states ${states.join(',')}, znode ${e.znodePath}, client ${client.state}, warnings ${warnings.join('; ')}`);
      });
      assert.ok(states.includes('suspended'));
      const ours = (await client.getEphemerals(path)).filter((p) => p.startsWith(`${path}/`));
      assert.equal(ours.length, 1, `one znode of this session, not an orphan beside a second one: ${ours.join(', ')}`);
      assert.equal(e.znodePath, ours[0]);
      // It works as a candidate: when the leader goes, it leads.
      const elected = nextElected(e);
      await other.election.leave();
      const { term } = await elected;
      assert.equal(term.znode, ours[0]);
      await e.leave();
    } finally {
      await proxy.close();
    }
  });
});
