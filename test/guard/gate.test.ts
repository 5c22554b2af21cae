// The in-process health gate against a real 3-server ensemble, the other defences off: a
// leader whose probe fails (its own endpoint deaf, or a user probe) resigns by closing its
// session — leader work stops in the same tick, ZooKeeper deletes its znode, the next candidate
// leads — and stands again, with a new session and at the back of the queue, once healthy.
// The disk probe runs off libuv's thread pool: it answers while the pool is starved.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { closeSync, constants, mkdirSync, mkdtempSync, open as openAsync, openSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { Election, FencedError, readLeader, type Term } from '../../src/recipes/index.ts';
import { DiskProbe, Guard, HealthGate, endpointProbe, timingBounds, type GuardDeposeReason } from '../../src/guard/index.ts';
import { serviceHost, until } from './helpers.ts';

let ens: Ensemble;
const clients: ZooKeeperClient[] = [];
const guards: Guard[] = [];
const servers: Server[] = [];

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250 });
});

after(async () => {
  for (const g of guards) await g.stop().catch(() => undefined);
  for (const c of clients) await c.close({ timeoutMs: 500 }).catch(() => undefined);
  for (const s of servers) s.close();
  await ens?.close();
});

async function client(): Promise<ZooKeeperClient> {
  const c = createClient(ens.connectString, { sessionTimeoutMs: 4000 });
  clients.push(c);
  await c.connect();
  return c;
}

/** The service's own endpoint: PING → PONG unless deaf. */
async function endpoint(host: string, port: number): Promise<{ deaf: boolean }> {
  const state = { deaf: false };
  const s = createServer((sock) => {
    sock.on('data', (d: Buffer) => {
      if (!state.deaf && d.toString().includes('PING')) sock.write('PONG\n');
    });
    sock.on('error', () => undefined);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(port, host, r));
  return state;
}

describe('in-process health gate', () => {
  it('a leader whose own endpoint goes deaf resigns at once over the network; healthy again, it stands at the back', async (t) => {
    const path = '/g1/__mj_j';
    const host = serviceHost(ens.server(1).host, 1);
    const ep = await endpoint(host, 10100);
    let sick = false;
    const guard = new Guard({
      connectString: ens.connectString,
      election: { path, candidate: { endpoint: `${host}:10100`, name: 'node1', metadata: { node: 'node1' } } },
      probes: [
        endpointProbe({ host, port: 10100, send: 'PING\n', expect: (r) => (r.includes('PONG') ? true : undefined) }),
        { name: 'flag', check: async () => !sick },
      ],
      watchdog: null,
    });
    guards.push(guard);
    const reasons: { reason: GuardDeposeReason; leaderInTick: boolean; term: Term | null }[] = [];
    guard.on('deposed', ({ reason }) => void reasons.push({ reason, leaderInTick: guard.isLeader(), term: guard.term }));
    await guard.start();
    assert.equal(guard.isLeader(), true);
    const first = guard.term!;
    const firstSession = guard.client.sessionId;

    const other = await client();
    const e2 = new Election(other, { path, candidate: { endpoint: 'node2:10100', name: 'node2' } });
    await e2.join();
    assert.equal(e2.isLeader(), false);

    const elected = new Promise<{ term: Term }>((r) => e2.once('elected', r));
    const writer = guard.writer();
    const at = performance.now();
    ep.deaf = true;
    const { term: t2 } = await elected;
    t.diagnostic(
      `endpoint deaf → successor elected: ${(performance.now() - at).toFixed(0)} ms (the model's worst case to resign: ${timingBounds(guard.timing).inProcessResignMs} ms)`,
    );
    assert.ok(t2.epoch > first.epoch);
    assert.deepEqual(reasons, [{ reason: 'unhealthy', leaderInTick: false, term: null }], 'deposed, not leading, no term: in the same tick');
    await assert.rejects(writer.setData(path, 'late'), (e: unknown) => e instanceof FencedError && e.reason === 'notLeader');
    const admin = await client();
    assert.equal(await admin.exists(first.znode), null, 'the old znode went with the closed session');
    const kinds = guard.decisions.map((d) => d.kind);
    assert.ok(kinds.includes('resign') && kinds.includes('resigned'), kinds.join(','));
    const resign = guard.decisions.find((d) => d.kind === 'resign')!;
    assert.match(String(resign.detail.failures), /endpoint .*: no answer within|endpoint .*: no answer for/);

    // Healthy again: it stands with a new session, behind the new leader, and does not lead.
    ep.deaf = false;
    await until('the guard to stand again', () => guard.state === 'standing' && guard.election?.state === 'candidate', 20_000);
    assert.notEqual(guard.client.sessionId, firstSession);
    assert.equal(guard.isLeader(), false);
    assert.equal((await readLeader(admin, { path }))?.epoch, t2.epoch);
    // It leads again only when the queue comes to it.
    const back = new Promise<{ term: Term }>((r) => guard.once('elected', r));
    await e2.leave();
    assert.ok((await back).term.epoch > t2.epoch);

    // A user probe: the same path.
    const again = new Promise<GuardDeposeReason>((r) => guard.once('deposed', ({ reason }) => r(reason)));
    sick = true;
    assert.equal(await again, 'unhealthy');
    await until('the guard to wait', () => guard.state === 'waiting', 10_000);
    assert.equal(guard.gate.failures[0]?.probe, 'flag');
    assert.equal(await readLeader(admin, { path }), null, 'nobody leads: no healthy candidate');
    sick = false;
    await until('the guard to lead again when healthy', () => guard.isLeader(), 20_000);
    await guard.stop();
    assert.equal(guard.state, 'stopped');
  });

  it('the disk probe answers while the libuv thread pool is starved by four blocked file opens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zkw-disk-'));
    const fifos: string[] = [];
    mkdirSync(join(dir, 'data'));
    for (let i = 0; i < 4; i++) {
      const f = join(dir, `fifo${i}`);
      execFileSync('mkfifo', [f]);
      fifos.push(f);
    }
    const probe = new DiskProbe({ dir: join(dir, 'data') });
    const gate = new HealthGate({ probes: [probe], timing: { probeIntervalMs: 100, probeTimeoutMs: 1000, graceMs: 300 }, eventLoop: false });
    await gate.start();
    await gate.whenHealthy(10_000);
    // Opening a FIFO for writing blocks until a reader comes: four such opens take all four
    // pool threads, and every fs callback, dns.lookup and crypto job of the process waits.
    const opened: number[] = [];
    for (const f of fifos) openAsync(f, 'w', (err, fd) => void (err ? undefined : opened.push(fd)));
    let statDone = false;
    openAsync(join(dir, 'data'), 'r', (err, fd) => {
      statDone = true;
      if (!err) closeSync(fd);
    });
    // The probe keeps completing checks on its own thread while the pool is stuck.
    const done = probe.completed;
    await until('three disk checks while the pool is starved', () => probe.completed >= done + 3, 10_000);
    assert.equal(statDone, false, 'the pool is really starved: a plain fs.open has not run');
    assert.equal(gate.state, 'healthy');
    assert.equal(probe.restarts, 0);
    // Free the pool: a reader for each FIFO.
    const readers = fifos.map((f) => openSync(f, constants.O_RDONLY | constants.O_NONBLOCK));
    await until('the pool to drain', () => opened.length === 4 && statDone, 10_000);
    for (const fd of [...opened, ...readers]) closeSync(fd);
    gate.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});
