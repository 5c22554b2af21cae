import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { leftovers } from '../../src/lab/cleanup.ts';
import { run } from '../../src/lab/host.ts';
import { Lab } from '../../src/lab/lab.ts';
import { createBridge, labNames, listLinks, listNetns } from '../../src/lab/network.ts';
import { faultFsMounts } from '../../src/lab/faultfs.ts';
import { identify, pidAlive, processState } from '../../src/lab/proc.ts';
import { createRecord, labDir, readRecord, subnetClaims, type LabRecord } from '../../src/lab/registry.ts';
import { runCli } from '../cli/run-cli.ts';
import { until } from '../until.ts';

const RUNNER = join(import.meta.dirname, 'fixtures', 'lab-runner.ts');

// This file's labs are recorded apart (their subnet claims stay machine-wide): a lab whose runner
// it kills is dead, and any Lab.create() on the machine — another test file's — would clean it up
// before this test could show that it was left behind. Children inherit the setting.
const registry = mkdtempSync(join(tmpdir(), 'zkwarden-cleanup-test-'));
process.env.ZKWARDEN_LAB_STATE = registry;
process.env.ZKWARDEN_LAB_SUBNETS = '/run/zkwarden/subnets';
after(() => rmSync(registry, { recursive: true, force: true }));

interface Started {
  child: ChildProcess;
  record: LabRecord;
  pids: number[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a lab run in another process and waits until its lab is made and recorded. */
async function startRunner(mode: 'wait' | 'throw', stall = false): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, mode, ...(stall ? ['stall'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const first = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    void exited.then(() => reject(new Error(`the runner exited before making its lab: ${stderr}`)));
    setTimeout(() => reject(new Error(`the runner made no lab within 60 s: ${stderr}`)), 60_000).unref();
  });
  const { id, pids } = JSON.parse(first) as { id: string; pids: number[] };
  const record = readRecord(id);
  assert.ok(record, `lab ${id} is recorded`);
  return { child, record, pids, exited };
}

/** Not a trace of the lab on this machine: processes, namespaces, links, cgroups, mounts, files, records. */
async function assertNothingLeft(record: LabRecord, pids: number[]): Promise<void> {
  assert.deepEqual(await leftovers(record), []);
  for (const pid of pids) assert.equal(pidAlive(pid), false, `process ${pid} is gone`);
  assert.deepEqual(
    (await listNetns()).filter((n) => n.includes(`-${record.id}-`)),
    [],
  );
  assert.deepEqual(
    (await listLinks()).filter((l) => l.startsWith(`zkw${record.id}`)),
    [],
  );
  assert.equal(existsSync(record.cgroupRoot), false, 'no cgroup');
  assert.equal(existsSync(record.baseDir), false, 'no files');
  assert.equal(existsSync(labDir(record.id)), false, 'no record');
  assert.notEqual(subnetClaims().get(record.subnet), record.id, 'its subnet is free again');
}

async function assertPresent(record: LabRecord, pids: number[]): Promise<void> {
  const left = await leftovers(record);
  for (const n of record.nodes) assert.ok(left.includes(`network namespace ${n.netns}`), `${n.netns} is there: ${left.join(', ')}`);
  for (const pid of pids) assert.ok(pidAlive(pid), `process ${pid} outlived its runner`);
}

describe('lab clean-up leaves nothing behind', () => {
  it('after a SIGKILLed run, `zkwarden lab clean` removes everything of it and leaves live labs alone', async () => {
    const r = await startRunner('wait');
    r.child.kill('SIGKILL');
    await r.exited;
    // Nothing ran to clean: the lab is all still there, with its owner dead.
    await assertPresent(r.record, r.pids);
    const live = await Lab.create({ nodes: 1, cleanStale: false });
    try {
      const clean = runCli(['lab', 'clean', '--json']);
      assert.equal(clean.status, 0, clean.stderr);
      const report = JSON.parse(clean.stdout) as { cleaned: { lab: string; leftovers: string[] }[]; skipped: { lab: string }[] };
      const mine = report.cleaned.find((c) => c.lab === r.record.id);
      assert.deepEqual(mine?.leftovers, []);
      assert.ok(
        report.skipped.some((s) => s.lab === live.id),
        'a lab whose owner lives is kept',
      );
      await assertNothingLeft(r.record, r.pids);
      assert.deepEqual(await leftovers(live.record).then((l) => l.filter((x) => x.startsWith('network namespace')).length), 1, 'the live lab is intact');
    } finally {
      assert.deepEqual((await live.close()).leftovers, []);
    }
  });

  it('after a SIGKILLed run, the next lab cleans it up before it starts', async () => {
    const r = await startRunner('wait');
    r.child.kill('SIGKILL');
    await r.exited;
    await assertPresent(r.record, r.pids);
    const next = await Lab.create({ nodes: 1 });
    try {
      await assertNothingLeft(r.record, r.pids);
    } finally {
      await next.close();
    }
  });

  it('on SIGINT the run cleans up after itself, a process stuck in D on its stalled disk included', async () => {
    const r = await startRunner('wait', true);
    assert.equal(processState(r.pids.at(-1)!), 'D');
    r.child.kill('SIGINT');
    const exit = await r.exited;
    assert.equal(exit.signal, 'SIGINT', 'it still dies of the signal');
    await assertNothingLeft(r.record, r.pids);
  });

  it('a run that fails with an uncaught error cleans up as it exits, a process stuck in D on its stalled disk included', async () => {
    const r = await startRunner('throw', true);
    const exit = await r.exited;
    assert.equal(exit.code, 1);
    await assertNothingLeft(r.record, r.pids);
  });

  it('releases stalled disks whose daemon hangs or died, freeing a process left in D by kill -9', async () => {
    const r = await startRunner('wait', true);
    const writer = r.pids.at(-1)!;
    r.child.kill('SIGKILL');
    await r.exited;
    await assertPresent(r.record, r.pids);
    assert.equal(processState(writer), 'D', 'the killed writer is still in D on the stalled disk');
    // node1's daemon hangs (stopped: the writer stays in D), node2's is dead (its mount is left without one).
    const [d1, d2] = r.record.nodes.map((n) => faultFsMounts().find((m) => m.mountpoint === n.disk.root)!.daemonPid);
    process.kill(d1!, 'SIGSTOP');
    process.kill(d2!, 'SIGKILL');
    await until("node2's daemon to be gone", () => !pidAlive(d2!));
    assert.equal(processState(writer), 'D');
    const clean = runCli(['lab', 'clean', '--json']);
    assert.equal(clean.status, 0, clean.stderr);
    await assertNothingLeft(r.record, [...r.pids, d1!, d2!]);
    assert.deepEqual(
      faultFsMounts().filter((m) => r.record.nodes.some((n) => n.disk.root === m.mountpoint)),
      [],
    );
  });

  it('removes a lab whose runner died while making it (resources recorded before they exist)', async () => {
    // A record whose owner is gone, with some of its resources made and some not.
    const dead = spawn('true');
    const owner = await new Promise<ReturnType<typeof identify>>((resolve) => {
      const id = dead.pid !== undefined ? identify(dead.pid) : null;
      dead.once('exit', () => resolve(id ?? { pid: dead.pid!, startTicks: 0 }));
    });
    await until('the owner to be gone', () => !pidAlive(owner!.pid));
    const id = `t${process.pid.toString(36)}`.slice(0, 8);
    const names = labNames(id);
    const record: LabRecord = {
      version: 1,
      id,
      owner: owner!,
      detached: false,
      createdAt: new Date().toISOString(),
      subnet: '198.19.254',
      hostIp: '198.19.254.1',
      bridge: names.bridge,
      chains: names.chains,
      cgroupRoot: join('/sys/fs/cgroup/cpu', `zkwarden-${id}`),
      baseDir: join('/tmp', `zkwarden-lab-${id}`),
      keepFiles: false,
      nodes: [1, 2].map((i) => ({
        name: `node${i}`,
        index: i,
        ip: `198.19.254.${100 + i}`,
        netns: names.netns(i),
        hostVeth: names.hostVeth(i),
        cgroup: join('/sys/fs/cgroup/cpu', `zkwarden-${id}`, `node${i}`),
        disk: { kind: 'plain' as const, root: join('/tmp', `zkwarden-lab-${id}`, `node${i}`, 'disk'), backing: '' },
      })),
    };
    createRecord(record);
    await createBridge(names.bridge, '198.19.254.1');
    await run('ip', ['netns', 'add', names.netns(1)]);
    const clean = runCli(['lab', 'clean', '--json']);
    assert.equal(clean.status, 0, clean.stderr);
    await assertNothingLeft(record, []);
  });
});
