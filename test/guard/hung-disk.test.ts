// The guard on a disk that really hangs (faultfs: FUSE requests never answered until released)
// against a real 3-server ensemble:
// - the in-process gate alone: a 500 ms delay on every disk operation is progress, not a stall
//   (no failover); a stall of the service's data disk fails the disk probe by age and the leader
//   resigns over the network while the rest of the process keeps working; released, it stands again;
// - the watchdog alone, with every file of the service and of the watchdog (working directory,
//   config, log, TMPDIR, HOME; the sockets are abstract, on no disk) on one faultfs that then
//   stalls whole: the service's main thread is blocked in a write, the watchdog ends its session
//   from outside, kills it, reports it in D state, answers status all along, and its log drops
//   nothing it needs.
// This process never touches a stalled path: only the children do.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { FaultFs, releaseMount } from '../../src/lab/faultfs.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { Election } from '../../src/recipes/index.ts';
import { Proc, SERVICE, TSX, guardRun, nextElected, ping, serviceHost, startService, until, watchdogStatus } from './helpers.ts';

let ens: Ensemble;
const clients: ZooKeeperClient[] = [];
const procs: Proc[] = [];
const mounts: { dir: string; mnt: string; ffs: FaultFs }[] = [];
const tag = `${process.pid}`;

before(async () => {
  ens = await Ensemble.start({ size: 3, tickTime: 250 });
});

after(async () => {
  // Release first: a process in D dies only once its request is answered.
  for (const m of mounts) {
    await m.ffs.set({ mode: 'healthy' }).catch(() => undefined);
    await m.ffs.release().catch(() => undefined);
  }
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  for (const m of mounts) {
    await m.ffs.unmount().catch(() => undefined);
    await releaseMount(m.mnt).catch(() => undefined);
    rmSync(m.dir, { recursive: true, force: true });
  }
  for (const c of clients) await c.close({ timeoutMs: 500 }).catch(() => undefined);
  await ens?.close();
});

/** A faultfs under a temporary directory named with this area's dev prefix. */
async function disk(): Promise<{ mnt: string; ffs: FaultFs }> {
  const dir = mkdtempSync(join(tmpdir(), 'zkw-dev-guard-'));
  const backing = join(dir, 'backing');
  const mnt = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mnt);
  const ffs = await FaultFs.mount({ backing, mountpoint: mnt });
  mounts.push({ dir, mnt, ffs });
  return { mnt, ffs };
}

async function candidate(path: string, name: string): Promise<Election> {
  const c = createClient(ens.connectString, { sessionTimeoutMs: 4000 });
  clients.push(c);
  await c.connect();
  const e = new Election(c, { path, candidate: { endpoint: `${name}:10100`, name } });
  await e.join();
  return e;
}

/** The service's `status` answer (a round trip on its stdin). */
async function serviceStatus(svc: Proc): Promise<Record<string, unknown>> {
  const from = svc.lines.length;
  svc.send('status');
  return svc.line('the service status', (l) => l.ev === 'status', 10_000, from);
}

describe('guard on a hung disk (faultfs)', () => {
  it('in-process gate: a 500 ms delay on every disk request rides out; a stalled data disk resigns the leader at once, the process still serves; released, it stands again', async (t) => {
    const path = '/h1/__mj_j';
    const { mnt, ffs } = await disk();
    mkdirSync(join(mnt, 'data'));
    const host = serviceHost(ens.server(1).host, 1);
    const svc = startService({
      connectString: ens.connectString,
      path,
      name: 'node1',
      node: 'node1',
      host,
      port: 10100,
      probes: ['endpoint', `disk:${join(mnt, 'data')}`],
    });
    procs.push(svc);
    const ready = await svc.line('the service to lead', (l) => l.ev === 'ready', 60_000);
    assert.equal(ready.leader, true);
    const e2 = await candidate(path, 'node2');

    // Every operation of the probe 500 ms late: slow, but each step progresses.
    await ffs.set({ mode: 'delay', delayMs: 500, path: 'data' });
    const before = (await serviceStatus(svc)).diskChecks as number;
    const linesBefore = svc.lines.length;
    await until('two disk checks under the delay', async () => ((await serviceStatus(svc)).diskChecks as number) >= before + 2, 30_000);
    const during = svc.lines.slice(linesBefore);
    assert.equal(
      during.filter((l) => l.ev === 'decision' && l.kind === 'health').length,
      0,
      `the gate never left healthy: ${JSON.stringify(during.filter((l) => l.ev === 'decision'))}`,
    );
    assert.equal(during.filter((l) => l.ev === 'deposed').length, 0);
    assert.equal(e2.isLeader(), false);
    await ffs.set({ mode: 'healthy' });

    // Stalled: the probe's write (or fsync) is never answered.
    const elected = nextElected(e2);
    const stalledAt = performance.now();
    await ffs.set({ mode: 'stall', path: 'data' });
    await elected;
    t.diagnostic(`data disk stalled → successor elected: ${(performance.now() - stalledAt).toFixed(0)} ms (in-process gate alone)`);
    const deposed = await svc.line('the service to be deposed', (l) => l.ev === 'deposed', 10_000);
    assert.equal(deposed.reason, 'unhealthy');
    const resign = await svc.line('the resign decision', (l) => l.ev === 'decision' && l.kind === 'resign', 10_000);
    assert.match(String((resign.detail as Record<string, unknown>).failures), /^disk .*\/data: (open|write|fsync|close|unlink) no answer for \d+ ms$/);
    // The hang holds one thread: the service's event loop and its endpoint work on.
    assert.equal(await ping(`${host}:10100`), true);
    const st = await serviceStatus(svc);
    assert.equal(st.gate, 'unhealthy');
    assert.equal(st.state, 'waiting');
    assert.ok((await ffs.status()).stalled >= 1);

    // The disk comes back: the stalled probe answers late, the gate heals, the guard stands again.
    const from = svc.lines.length;
    await ffs.set({ mode: 'healthy' });
    await ffs.release();
    await svc.line('the service to stand again', (l) => l.ev === 'decision' && l.kind === 'stood', 20_000, from);
    assert.equal(e2.isLeader(), true, 'it queued behind the new leader');
    svc.send('stop');
    assert.equal((await svc.exited).code, 0);
    await e2.leave();
  });

  it("watchdog: service and watchdog files all on one stalled disk; the service's main thread blocked in a write; session ended from outside, D state reported, status answered throughout", async (t) => {
    const path = '/h2/__mj_j';
    const name = `hung-${tag}`;
    const { mnt, ffs } = await disk();
    for (const d of ['svc', 'data', 'log', 'tmp', 'home']) mkdirSync(join(mnt, d));
    const host = serviceHost(ens.server(1).host, 2);
    const config = join(mnt, 'svc', 'config.json');
    // The gate off: the watchdog alone.
    writeFileSync(
      config,
      JSON.stringify({
        connectString: ens.connectString,
        path,
        name: 'node1',
        node: 'node1',
        host,
        port: 10100,
        probes: ['endpoint'],
        gate: false,
        watchdog: 'env',
      }),
    );
    const logFile = join(mnt, 'log', 'watchdog.log');
    const svc = guardRun(
      ['--servers', ens.connectString, '--path', path, '--name', name, '--log', logFile],
      [process.execPath, '--import', TSX, SERVICE, `@${config}`],
      { TMPDIR: join(mnt, 'tmp'), HOME: join(mnt, 'home') },
      join(mnt, 'svc'),
    );
    procs.push(svc);
    const ready = await svc.line('the service to lead', (l) => l.ev === 'ready', 60_000);
    assert.equal(ready.leader, true);
    const pid = ready.pid as number;
    const e2 = await candidate(path, 'node2');
    const control = `@zkwarden-guard/${name}`;
    assert.equal((await watchdogStatus(control)).state, 'watching');

    // The whole disk stops answering; the service's main thread writes to it and is stuck in the kernel.
    await ffs.set({ mode: 'stall' });
    const elected = nextElected(e2);
    const from = svc.lines.length;
    svc.send(`blockwrite ${join(mnt, 'data', 'x')}`);
    await svc.line('the service to block', (l) => l.ev === 'blocking', 10_000, from);
    const blockedAt = performance.now();
    await elected;
    t.diagnostic(`main thread blocked on a stalled disk → successor elected: ${(performance.now() - blockedAt).toFixed(0)} ms (watchdog alone)`);
    // The watchdog answers while its log, cwd, TMPDIR and HOME are on the stalled disk.
    await until(
      'the watchdog to report the service unkillable in D',
      async () => (await watchdogStatus(control)).decisions.some((d) => d.kind === 'unkillable' && d.detail.state === 'D'),
      20_000,
    );
    const s = await watchdogStatus(control);
    t.diagnostic(
      `watchdog status during the stall: state ${s.state}, process ${JSON.stringify(s.processStates)}, log write stalled ${s.log.writeStalledMs} ms, ${s.log.pending} lines pending, ${s.log.dropped} dropped`,
    );
    assert.equal(s.processStates[String(pid)], 'D');
    assert.notEqual(s.log.writeStalledMs, null, 'its own log write is stuck on the disk, and it decides anyway');
    const kinds = s.decisions.map((d) => d.kind);
    for (const k of ['intervene', 'sessionEnded', 'znodeGone', 'kill', 'unkillable'] as const) assert.ok(kinds.includes(k), kinds.join(','));
    assert.equal(svc.child.exitCode, null, 'guard run does not exit while its service may be alive');
    assert.ok((await ffs.status()).stalled >= 2, 'the service and the watchdog log writer are both held by the disk');

    // The disk comes back: SIGKILL lands, the watchdog sees the exit, flushes its log, exits 1.
    await ffs.set({ mode: 'healthy' });
    await ffs.release();
    assert.equal((await svc.exited).code, 1);
    const log = readFileSync(logFile, 'utf8');
    for (const want of [
      /watchdog\.intervene reason=silent/,
      /watchdog\.sessionEnded session=#1 outcome=closed/,
      /watchdog\.znodeGone/,
      /watchdog\.kill pid=\d+ signal=SIGKILL/,
      /watchdog\.unkillable pid=\d+ state=D/,
      /watchdog\.exited pid=\d+/,
    ]) {
      assert.match(log, want);
    }
    await e2.leave();
  });
});
