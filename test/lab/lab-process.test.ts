import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { LabUsageError, netnsPath } from '../../src/lab/host.ts';
import { Lab } from '../../src/lab/lab.ts';
import type { LabProcess } from '../../src/lab/process.ts';
import { until } from '../until.ts';

async function output(p: LabProcess): Promise<string> {
  let text = '';
  p.child!.stdout!.setEncoding('utf8');
  p.child!.stdout!.on('data', (d: string) => (text += d));
  await p.waitExit(20_000);
  return text;
}

const BUSY = 'for (;;) {}';

/** CPU time a process gets per wall-clock time while it uses `cpuMs` of CPU (waits for the CPU time, not for a time). */
async function cpuShare(p: LabProcess, cpuMs: number): Promise<number> {
  const cpu0 = p.cpuTimeMs()!;
  const t0 = performance.now();
  await until(`${cpuMs} ms of CPU`, () => (p.cpuTimeMs() ?? Infinity) - cpu0 >= cpuMs, 60_000);
  return (p.cpuTimeMs()! - cpu0) / (performance.now() - t0);
}

describe('processes on lab nodes', () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.create({ nodes: 2 });
  });
  after(async () => {
    assert.deepEqual((await lab?.close())?.leftovers, []);
  });

  it("runs a process in its node's network namespace and cgroup from its first instruction", async () => {
    const n = lab.node('node1');
    // The command itself reads where it is: it was exec'd after joining, so no moment was outside.
    const p = n.spawn('/bin/sh', ['-c', 'echo $$; cat /proc/self/cgroup; readlink /proc/self/ns/net'], { output: 'pipe' });
    const out = await output(p);
    const [pid, ...rest] = out.trim().split('\n');
    assert.equal(Number(pid), p.pid, 'one pid from the wrapper to the command');
    assert.ok(
      rest.some((l) => l.endsWith(`:cpu:/zkwarden-${lab.id}/node1`)),
      `in node1's cpu cgroup: ${rest.join(' | ')}`,
    );
    assert.equal(rest.at(-1), `net:[${statSync(netnsPath(n.netns)).ino}]`, "in node1's network namespace");
  });

  it('starts a process on a stalled disk without the runner touching that disk (the process opens its own output and cwd)', async () => {
    const n = lab.node('node2');
    await n.disk.stall({ ops: ['metadata'] });
    try {
      const p = n.spawn('/bin/echo', ['never written'], { output: `${n.disk.root}/out.log`, cwd: n.disk.root });
      await until("the process's own open to stall", async () => (await n.disk.status()).stalled >= 1);
      assert.equal(p.hasExited, false);
    } finally {
      await n.disk.heal();
    }
    const q = n.spawn('/bin/sh', ['-c', 'pwd; echo written'], { output: `${n.disk.root}/out2.log`, cwd: n.disk.root });
    assert.equal((await q.waitExit()).code, 0);
    assert.equal(readFileSync(`${n.disk.root}/out2.log`, 'utf8'), `${n.disk.root}\nwritten\n`);
  });

  it('stops and continues a process, reading T and back from /proc; kill -9 ends it', async () => {
    const p = lab.node('node2').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    await p.waitFor('running', () => p.state() === 'S' || p.state() === 'R');
    await p.stop();
    assert.equal(p.state(), 'T');
    assert.ok(
      [...p.threads().values()].every((s) => s === 'T'),
      'every thread stopped',
    );
    await p.cont();
    assert.notEqual(p.state(), 'T');
    const exit = await p.kill();
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(p.state(), null);
  });

  it('signals any process of the lab by pid, and refuses every other process', async () => {
    const p = lab.node('node1').spawn('sleep', ['600']);
    await p.waitFor('running', () => p.state() === 'S');
    const found = lab.process(p.pid);
    assert.equal(found.node, 'node1');
    lab.signal(p.pid, 'SIGSTOP');
    await p.waitFor('stopped', () => p.state() === 'T');
    lab.signal(p.pid, 'SIGKILL');
    assert.equal((await p.waitExit()).signal, 'SIGKILL');
    assert.deepEqual(
      lab.events.filter((e) => e.kind === 'process').map((e) => [e.action, e.detail?.pid]),
      [
        ['SIGSTOP', p.pid],
        ['SIGKILL', p.pid],
      ],
    );
    assert.throws(() => lab.signal(process.pid, 'SIGSTOP'), LabUsageError);
    assert.throws(() => lab.process(1), /not a process of lab/);
  });

  it("leaves a process writing to its node's stalled disk in D after kill -9, until the disk is released", async () => {
    const n = lab.node('node1');
    await n.disk.stall({ ops: ['write'] });
    const w = n.spawn('/bin/sh', ['-c', `echo journal entry >> ${n.disk.root}/journal`]);
    try {
      await until('the write to stall', async () => (await n.disk.status()).stalled >= 1);
      w.signal('SIGKILL');
      await w.waitFor('D after kill -9', () => w.state() === 'D');
      assert.equal(w.hasExited, false, 'kill -9 stays pending');
    } finally {
      assert.ok((await n.disk.heal()) >= 1, 'the stalled write is answered');
    }
    assert.equal((await w.waitExit()).signal, 'SIGKILL', 'then it dies of the pending kill');
    assert.equal(n.disk.readable, true);
  });

  it("starves a node's CPU to about its quota, and gives it back", async () => {
    const n = lab.node('node2');
    const busy = n.spawn(process.execPath, ['-e', BUSY]);
    try {
      await busy.waitFor('running', () => (busy.cpuTimeMs() ?? 0) > 0);
      const q = n.cpu.limit(0.1);
      assert.deepEqual(q, { quotaUs: 10_000, periodUs: 100_000, fraction: 0.1 });
      assert.deepEqual(n.cpu.quota(), q, 'read back from the cgroup');
      // Over 300 ms of CPU time (3 s of wall time at 10 %): a hard cap from above, contention may
      // only lower it. The band is wide: this checks behaviour, not the scheduler's precision.
      const limited = await cpuShare(busy, 300);
      assert.ok(limited > 0.04 && limited < 0.16, `a busy process on a node limited to 10 % got ${(limited * 100).toFixed(1)} % of a core`);
      assert.ok(n.cpu.throttling().throttledPeriods > 0, 'the kernel throttled the node');
      n.cpu.unlimit();
      assert.equal(n.cpu.quota().fraction, null);
      // Unlimited again, the kernel throttles the node no more while it keeps burning CPU (how much
      // it then gets depends on the machine's load, so that is not asserted).
      const throttled = n.cpu.throttling().throttledPeriods;
      await cpuShare(busy, 300);
      assert.equal(n.cpu.throttling().throttledPeriods, throttled);
    } finally {
      await busy.kill();
    }
  });

  it('lifts a timed CPU limit by itself', async () => {
    const n = lab.node('node1');
    n.cpu.limit(0.1, { durationMs: 200 });
    assert.equal(n.cpu.quota().fraction, 0.1);
    await until('the limit to be lifted', () => n.cpu.quota().fraction === null, 10_000);
    const actions = lab.events.filter((e) => e.kind === 'cpu' && e.target === 'node1').map((e) => e.action);
    assert.deepEqual(actions.slice(-2), ['limit', 'unlimit']);
  });

  it('refuses a CPU share that is not a positive number', () => {
    assert.throws(() => lab.node(1).cpu.limit(0), /positive number/);
    assert.throws(() => lab.node(1).cpu.limit(Number.NaN), /positive number/);
  });

  it('kills every process of a node at once (the first half of a reboot)', async () => {
    const n = lab.node('node1');
    const ps = [n.spawn('sleep', ['600']), n.spawn('/bin/sh', ['-c', 'sleep 600 & wait'])];
    await until('both started', () => ps.every((p) => p.state() === 'S'));
    await until('the child of the shell', () => n.pids().length >= 3);
    const killed = n.killAll();
    assert.ok(killed.length >= 3);
    for (const p of ps) await p.waitExit();
    await until('no process left on node1', () => n.pids().length === 0);
    // a later process starts normally
    const again = n.spawn('true');
    assert.equal((await again.waitExit()).code, 0);
  });
});
