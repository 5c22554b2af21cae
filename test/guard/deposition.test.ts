// Deposition on the evidence of the leader's clients, against a real 3-server ensemble, the
// other defences off where it matters. Three guarded candidates (node1..3) serve PING → PONG;
// two clients ("chunks" on node2 and node3) reach the leader through a proxy the test can cut,
// and suspect it in ZooKeeper when it does not answer.
// - The leader's port cut from its clients while it reaches ZooKeeper and passes its own probes:
//   the next candidate deposes it (one multi), takes over; the old leader finds itself fenced.
// - A suspicion of an older epoch is void; a quorum against a new term waits out minTermMs.
// - A leader frozen (SIGSTOP) with a long session: deposed by the evidence, and when it wakes
//   its fenced writes fail and it steps down.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { FencedError, LeaderDiscovery, fencedMulti, readLeader, type Term } from '../../src/recipes/index.ts';
import { Guard, SuspicionWitness, depositionsPath, endpointProbe, type GuardDecision } from '../../src/guard/index.ts';
import { Proc, ping, serviceHost, startService, until } from './helpers.ts';

let ens: Ensemble;
const clients: ZooKeeperClient[] = [];
const guards: Guard[] = [];
const closers: (() => void)[] = [];
const procs: Proc[] = [];
const NODES = ['node1', 'node2', 'node3'];

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250, maxSessionTimeout: 20_000 });
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const c of closers) c();
  for (const g of guards) await g.stop().catch(() => undefined);
  for (const c of clients) await c.close({ timeoutMs: 500 }).catch(() => undefined);
  await ens?.close();
});

async function client(sessionTimeoutMs = 4000): Promise<ZooKeeperClient> {
  const c = createClient(ens.connectString, { sessionTimeoutMs });
  clients.push(c);
  await c.connect();
  return c;
}

async function pingServer(host: string, port: number): Promise<void> {
  const s = createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      if (d.toString().includes('PING')) sock.write('PONG\n');
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => s.listen(port, host, r));
  closers.push(() => s.close());
}

/** The network between the clients and one endpoint: forwards until cut, then swallows everything. */
class Path {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  cut = false;
  address = '';
  constructor(readonly target: { host: string; port: number }) {}
  async start(host: string): Promise<void> {
    this.server = createServer((c) => {
      this.sockets.add(c);
      c.on('error', () => undefined);
      c.on('close', () => this.sockets.delete(c));
      if (this.cut) return; // accepted, never answered: what a cut port looks like to a client with a timeout
      const u = createConnection(this.target);
      u.on('error', () => c.destroy());
      c.pipe(u);
      u.pipe(c);
    });
    await new Promise<void>((r) => this.server!.listen(0, host, r));
    this.address = `${host}:${(this.server.address() as { port: number }).port}`;
    closers.push(() => {
      for (const s of this.sockets) s.destroy();
      this.server?.close();
    });
  }
}

/** A client of the leader on one node: pings it every 200 ms (500 ms timeout) and suspects it in ZooKeeper when it gets no answer. */
class Chunk {
  readonly witness: SuspicionWitness;
  private timer: NodeJS.Timeout | null = null;
  failures = 0;
  constructor(
    readonly node: string,
    private readonly discovery: LeaderDiscovery,
    zk: ZooKeeperClient,
    electionPath: string,
    private readonly route: (endpoint: string) => string,
  ) {
    this.witness = new SuspicionWitness(zk, { node, electionPath });
  }
  start(): void {
    this.timer = setInterval(() => void this.probe(), 200);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
  private busy = false;
  private async probe(): Promise<void> {
    const l = this.discovery.leader;
    if (this.busy || !l || !l.claimed) return;
    this.busy = true;
    try {
      const ok = await ping(this.route(l.endpoint), 500);
      if (ok) await this.witness.clear();
      else {
        this.failures++;
        await this.witness.suspect(l.epoch, 'no answer within 500 ms');
      }
    } catch {
      // ZooKeeper trouble: the next round tries again
    } finally {
      this.busy = false;
    }
  }
}

/** The clients on node2 and node3, following the leader and pinging it through `route`. */
async function startChunks(path: string, route: (endpoint: string) => string): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for (const node of ['node2', 'node3']) {
    const zk = await client();
    const d = new LeaderDiscovery(zk, { path });
    await d.start();
    const c = new Chunk(node, d, zk, path, route);
    c.start();
    chunks.push(c);
    closers.push(() => {
      c.stop();
      d.stop();
    });
  }
  return chunks;
}

function decisions(g: Guard, kind: string): GuardDecision[] {
  return g.decisions.filter((d) => d.kind === 'deposition' && d.detail.kind === kind);
}

function nextElected(g: Guard, timeoutMs = 30_000): Promise<{ term: Term; at: number }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no elected event')), timeoutMs);
    g.once('elected', ({ term }) => {
      clearTimeout(t);
      resolve({ term, at: Date.now() });
    });
  });
}

async function guarded(path: string, node: string, n: number, minTermMs: number): Promise<{ guard: Guard; endpoint: string }> {
  const host = serviceHost(ens.server(1).host, n);
  await pingServer(host, 10100);
  const guard = new Guard({
    connectString: ens.connectString,
    election: { path, candidate: { endpoint: `${host}:10100`, name: node, metadata: { node } } },
    probes: [endpointProbe({ host, port: 10100, send: 'PING\n', expect: (r) => (r.includes('PONG') ? true : undefined) })],
    watchdog: null,
    deposition: { nodes: NODES, holdMs: 1000, minTermMs },
  });
  guards.push(guard);
  await guard.start();
  return { guard, endpoint: `${host}:10100` };
}

describe('deposition on clients\u2019 evidence', () => {
  it('the leader cut from its clients (fine otherwise) is deposed by the next candidate; older suspicions are void; a new term waits out minTermMs', async (t) => {
    const path = '/d1/__mj_j';
    const MIN_TERM = 3000;
    const g1 = await guarded(path, 'node1', 1, MIN_TERM);
    const g2 = await guarded(path, 'node2', 2, MIN_TERM);
    const g3 = await guarded(path, 'node3', 3, MIN_TERM);
    assert.equal(g1.guard.isLeader(), true);
    const paths = new Map<string, Path>();
    for (const g of [g1, g2, g3]) {
      const [host, port] = g.endpoint.split(':');
      const p = new Path({ host: host!, port: Number(port) });
      await p.start(serviceHost(ens.server(1).host, 50));
      paths.set(g.endpoint, p);
    }
    const route = (endpoint: string): string => paths.get(endpoint)!.address;
    const chunks = await startChunks(path, route);
    const first = g1.guard.term!;
    await until(
      'g2 to see itself next behind the leader',
      () => g2.guard.status().deposer?.next === true && g2.guard.status().deposer?.leaderEpoch === first.epoch,
      10_000,
    );
    // The term is old enough to be deposed (minTermMs, as g2 sees it), so the figure below is the cut's alone.
    await until('the term to be older than minTermMs', () => (g2.guard.status().deposer?.termAgeMs ?? 0) >= MIN_TERM, 10_000);
    await until('the chunks to get answers', () => chunks.every((c) => c.witness.suspecting === null), 10_000);

    const elected = nextElected(g2.guard);
    const g1Deposed = new Promise<string>((r) => g1.guard.once('deposed', ({ reason }) => r(reason)));
    const cutAt = performance.now();
    paths.get(g1.endpoint)!.cut = true;
    const { term: t2, at: t2At } = await elected;
    t.diagnostic(`leader's port cut from its clients → successor elected: ${(performance.now() - cutAt).toFixed(0)} ms (client timeout 500 ms, hold 1000 ms)`);
    assert.ok(t2.epoch > first.epoch);
    assert.equal(await g1Deposed, 'znodeGone', 'the old leader finds its znode gone and steps down');
    assert.equal(g1.guard.gate.state, 'healthy', 'it was fine by its own probes all along');
    await assert.rejects(
      fencedMulti(g1.guard.client, first, [{ op: 'setData', path, data: 'late' }]),
      (e: unknown) => e instanceof FencedError && e.reason === 'znodeGone',
    );
    const deposed = decisions(g2.guard, 'deposed');
    assert.equal(deposed.length, 1);
    assert.deepEqual(deposed[0]!.detail.suspects, ['node2', 'node3']);
    const admin = await client();
    const record = JSON.parse((await admin.getData(depositionsPath(path))).data.toString()) as Record<string, unknown>;
    assert.equal(record.epoch, first.epoch);
    assert.equal(record.by, 'node2');
    assert.equal(record.node, 'node1');
    assert.deepEqual(record.suspects, ['node2', 'node3']);
    await until('g1 to queue again at the back', () => g1.guard.election?.state === 'candidate' && g1.guard.election.znodePath !== first.znode, 10_000);

    // A suspicion of the old epoch counts against nobody: node3's stale witness keeps one of
    // epoch 1, node1's suspects the new leader (on node2); one node is not a quorum of two.
    const stale = new SuspicionWitness(await client(), { node: 'node3', electionPath: path });
    await stale.suspect(first.epoch, 'stale');
    const fresh = new SuspicionWitness(await client(), { node: 'node1', electionPath: path });
    for (const c of chunks) c.stop();
    for (const c of chunks) await c.witness.clear();
    await fresh.suspect(t2.epoch, 'test');
    await until(
      'g3 (next now) to read the suspicions of the new term',
      () => {
        const v = g3.guard.status().deposer;
        return v?.next === true && v.leaderEpoch === t2.epoch && v.suspects.length === 1;
      },
      10_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(g3.guard.status().deposer)}, t2 ${t2.epoch}, g3 state ${g3.guard.state}/${g3.guard.election?.state}`);
    });
    assert.deepEqual(g3.guard.status().deposer?.suspects, ['node1']);
    assert.equal(g3.guard.status().deposer?.quorum, false, 'the old-epoch suspicion is void');

    // node3 now suspects the new term too: a quorum, but the term is young. g3 deposes only once
    // it has seen the term lead for minTermMs.
    const e3 = nextElected(g3.guard);
    await stale.suspect(t2.epoch, 'now this one');
    const { at: t3At } = await e3;
    const dep3 = decisions(g3.guard, 'deposed')[0]!;
    // The rule's measure is the deposer's own: since it first saw the term (this test hears of
    // the election through the new leader's event, which on a loaded machine can come later).
    const { termAgeMs } = dep3.detail as { termAgeMs: number };
    t.diagnostic(
      `second deposition ${Date.parse(dep3.at) - t2At} ms after the term began by this test's clock, ${termAgeMs} ms by the deposer's (minTermMs ${MIN_TERM})`,
    );
    assert.ok(termAgeMs >= MIN_TERM, `a young term is not deposed: ${termAgeMs} ms`);
    assert.ok(t3At >= Date.parse(dep3.at));
    await stale.clear();
    await fresh.clear();
  });

  it('a frozen leader with a long session is deposed; when it wakes its fenced writes fail and it steps down', async (t) => {
    const path = '/d2/__mj_j';
    const logPath = '/d2-log';
    const admin = await client();
    await admin.create(logPath);
    const host = serviceHost(ens.server(1).host, 11);
    // The leader: its own process, a session that outlives the freeze, no watchdog, gate on.
    const leader = startService({
      connectString: ens.connectString,
      path,
      name: 'node1',
      node: 'node1',
      host,
      port: 10100,
      logPath,
      timing: { sessionTimeoutMs: 15_000 },
    });
    procs.push(leader);
    const ready = await leader.line('the leader to lead', (l) => l.ev === 'ready', 60_000);
    assert.equal(ready.leader, true);
    const epoch1 = (await readLeader(admin, { path }))!.epoch;
    const g2 = await guarded(path, 'node2', 12, 500);
    const route = (endpoint: string): string => endpoint;
    const chunks = await startChunks(path, route);
    await until('g2 to be next', () => g2.guard.status().deposer?.next === true, 10_000);
    await leader.line('a write of the leader', (l) => l.ev === 'write' && l.ok === true, 10_000);

    const elected = nextElected(g2.guard);
    const frozeAt = performance.now();
    leader.kill('SIGSTOP');
    const { term: t2 } = await elected;
    t.diagnostic(
      `frozen leader (session 15 s) deposed by its clients' evidence: successor elected ${(performance.now() - frozeAt).toFixed(0)} ms after the freeze`,
    );
    await g2.guard.writer().create(`${logPath}/w-`, JSON.stringify({ epoch: t2.epoch, who: 'node2' }), 'persistent_sequential');
    const linesAtWake = leader.lines.length;
    const wokeAt = Date.now();
    leader.kill('SIGCONT');
    await leader.line('the woken leader to step down', (l) => l.ev === 'deposed', 20_000, linesAtWake);
    const from = leader.lines.length;
    leader.send('flush');
    await leader.line('the woken leader to flush', (l) => l.ev === 'flushed', 10_000, from);
    const after = leader.lines.slice(linesAtWake);
    const deposed = after.find((l) => l.ev === 'deposed')!;
    assert.equal(deposed.reason, 'znodeGone');
    assert.equal(deposed.epoch, epoch1);
    assert.equal(
      after.filter((l) => l.ev === 'write' && l.ok === true && (l.issuedAt as number) >= wokeAt).length,
      0,
      `no write issued after waking lands: ${JSON.stringify(after)}`,
    );
    const failed = after.filter((l) => l.ev === 'write' && l.ok === false);
    assert.ok(
      failed.every((l) => l.reason === 'znodeGone' || l.reason === 'notLeader'),
      JSON.stringify(failed),
    );
    // ZooKeeper's record: the successor's write is last; nothing of epoch 1 after it.
    const { children } = await admin.getChildren(logPath);
    const epochs: number[] = [];
    for (const n of children.sort()) epochs.push((JSON.parse((await admin.getData(`${logPath}/${n}`)).data.toString()) as { epoch: number }).epoch);
    assert.equal(epochs.at(-1), t2.epoch);
    assert.deepEqual(
      epochs,
      [...epochs].sort((a, b) => a - b),
    );
    for (const c of chunks) c.stop();
    leader.send('stop');
    await leader.exited;
  });
});
