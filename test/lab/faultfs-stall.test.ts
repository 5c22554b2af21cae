/**
 * The disk that hangs: a stalled request is never answered until released, so its caller sits
 * in S and, after kill -9, in D with SIGKILL pending; healthy paths and op classes keep working
 * meanwhile; and every clean-up path (release, unmount while stalled, a daemon killed or hung)
 * frees the callers and leaves no mount. Only child processes touch stalled paths: this process
 * never does, or it would hang with them.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { FaultFs, faultFsMounts, releaseMount } from '../../src/lab/faultfs.ts';
import { until } from '../until.ts';
import { dropScratch, mountScratch, procState, run, scratch, sigkillPending, type Scratch, type Spawned } from './faultfs-util.ts';

const mounted = (mp: string): boolean => faultFsMounts().some((m) => m.mountpoint === mp);
const alive = (pid: number): boolean => {
  const st = procState(pid);
  return st !== null && st !== 'Z';
};

/** dd writing one 4 KiB block to file, optionally forcing it (conv=fsync). */
function ddWrite(file: string, fsync = false): Spawned {
  return run('dd', ['if=/dev/zero', `of=${file}`, 'bs=4096', 'count=1', ...(fsync ? ['conv=fsync'] : [])]);
}

async function stalledAt(ffs: FaultFs, n: number): Promise<void> {
  await until(`${n} request(s) stalled on ${ffs.mountpoint}`, async () => (await ffs.status()).stalled >= n, 30_000);
}

/** kill -9 and wait for the fact that it was delivered and the process survived it: state D with SIGKILL pending. */
async function killIntoD(p: Spawned): Promise<void> {
  await until(`pid ${p.pid} asleep (S) on its stalled request`, () => procState(p.pid) === 'S', 30_000);
  process.kill(p.pid, 'SIGKILL');
  await until(`pid ${p.pid} in D after kill -9`, () => procState(p.pid) === 'D' && sigkillPending(p.pid), 30_000);
}

describe('faultfs stall', () => {
  let s: Scratch;
  let ffs: FaultFs;
  const M = (p: string): string => join(s.mountpoint, p);
  const B = (p: string): string => join(s.backing, p);

  after(async () => {
    await dropScratch(s, ffs);
  });

  it('a writer and an fsyncer on stalled paths sit in D after kill -9 until release, while the rest of the disk works', async () => {
    ({ s, fs: ffs } = await mountScratch());
    for (const d of ['stalled', 'synced', 'ok']) fs.mkdirSync(M(d));
    await ffs.set([
      { mode: 'stall', ops: ['write'], path: 'stalled' },
      { mode: 'stall', ops: ['fsync'], path: 'synced' },
    ]);
    const writer = ddWrite(M('stalled/w'));
    const syncer = ddWrite(M('synced/f'), true);
    await stalledAt(ffs, 2);
    // Per op class: the fsyncer's write went through, only its fsync is held.
    assert.equal(fs.statSync(B('synced/f')).size, 4096);
    assert.equal(fs.statSync(B('stalled/w')).size, 0, 'the stalled write has not reached the backing file');

    await killIntoD(writer);
    await killIntoD(syncer);

    // While both are stuck: other paths, and other op classes on the stalled paths, work.
    await fs.promises.writeFile(M('ok/a'), 'healthy');
    const h = await fs.promises.open(M('ok/a'), 'r+');
    await h.write('HEALTHY', 0);
    await h.sync();
    await h.close();
    assert.equal(await fs.promises.readFile(M('ok/a'), 'utf8'), 'HEALTHY');
    assert.deepEqual((await fs.promises.readdir(M('ok'))).sort(), ['a']);
    await fs.promises.writeFile(M('synced/unsynced'), 'writes are fine here');
    await fs.promises.mkdir(M('stalled/sub'));

    const st = await ffs.status();
    assert.equal(st.stalled, 2);
    assert.equal(st.pending, 2);
    assert.equal(procState(writer.pid), 'D', 'still in D: nothing but release frees it');
    assert.equal(procState(syncer.pid), 'D');

    assert.equal(await ffs.release(), 2);
    const [w, f] = await Promise.all([writer.exited, syncer.exited]);
    assert.equal(w.signal, 'SIGKILL');
    assert.equal(f.signal, 'SIGKILL');
    // Released means performed: the write that was held reached the backing file.
    assert.equal(fs.statSync(B('stalled/w')).size, 4096);
    await until('nothing pending after release', async () => (await ffs.status()).pending === 0, 30_000);
    assert.equal((await ffs.status()).counts.released, 2);
  });

  it("stalls requests beyond a thread pool's worth while other requests keep being answered", async () => {
    // 40 stalled callers: more than libfuse's worker threads, so no thread can be held per request.
    await ffs.set({ mode: 'stall', ops: ['write'], path: 'many' });
    fs.mkdirSync(M('many'));
    const writers = Array.from({ length: 40 }, (_, i) => ddWrite(M(`many/f${i}`)));
    await stalledAt(ffs, 40);
    for (let i = 0; i < 20; i++) await fs.promises.writeFile(M(`ok/n${i}`), String(i));
    assert.equal(await fs.promises.readFile(M('ok/n19'), 'utf8'), '19');
    await ffs.set([]);
    assert.equal(await ffs.release(), 40);
    const results = await Promise.all(writers.map((w) => w.exited));
    assert.ok(
      results.every((r) => r.code === 0),
      'every released write completed',
    );
  });

  it('release with an errno fails the stalled requests instead', async () => {
    await ffs.set({ mode: 'stall', ops: ['write'], path: 'stalled' });
    const writer = ddWrite(M('stalled/e'));
    await stalledAt(ffs, 1);
    assert.equal(await ffs.release({ errno: 'EIO' }), 1);
    const r = await writer.exited;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Input\/output error/);
    await ffs.set([]);
  });

  it('stalls metadata: a create on a stalled path waits, a create elsewhere does not', async () => {
    await ffs.set({ mode: 'stall', ops: ['metadata'], path: 'meta/**' });
    fs.mkdirSync(M('meta'));
    const creator = run('mkdir', [M('meta/newdir')]);
    await stalledAt(ffs, 1);
    await until('mkdir asleep on its request', () => procState(creator.pid) === 'S', 30_000);
    await fs.promises.mkdir(M('ok/newdir'));
    assert.equal(fs.existsSync(B('meta/newdir')), false);
    await ffs.set([]);
    assert.equal(await ffs.release(), 1);
    assert.equal((await creator.exited).code, 0);
    assert.ok(fs.statSync(B('meta/newdir')).isDirectory());
  });
});

describe('faultfs clean-up', () => {
  const left: { s: Scratch; fs: FaultFs }[] = [];
  const procs: Spawned[] = [];
  afterEach(async () => {
    for (const { s, fs: f } of left.splice(0)) await dropScratch(s, f);
    for (const p of procs.splice(0)) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
  });

  async function stalledVictim(): Promise<{ s: Scratch; ffs: FaultFs; victim: Spawned }> {
    const { s, fs: ffs } = await mountScratch();
    left.push({ s, fs: ffs });
    await ffs.set({ mode: 'stall', ops: ['write'] });
    const victim = ddWrite(join(s.mountpoint, 'w'));
    procs.push(victim);
    await stalledAt(ffs, 1);
    await killIntoD(victim);
    return { s, ffs, victim };
  }

  it('unmount while a request is stalled frees the process in D and leaves no mount and no daemon', async () => {
    const { s, ffs, victim } = await stalledVictim();
    await ffs.unmount();
    assert.equal((await victim.exited).signal, 'SIGKILL');
    assert.equal(mounted(s.mountpoint), false);
    assert.equal(alive(ffs.daemonPid), false);
    assert.equal(fs.existsSync(ffs.controlSocket), false);
  });

  it('a hung daemon (SIGSTOP) with a process in D: releaseMount aborts the connection, frees it, unmounts, kills the daemon', async () => {
    const { s, ffs, victim } = await stalledVictim();
    process.kill(ffs.daemonPid, 'SIGSTOP');
    await until('daemon stopped', () => procState(ffs.daemonPid) === 'T', 30_000);
    assert.equal(procState(victim.pid), 'D', 'a hung daemon holds its caller in D');
    await releaseMount(s.mountpoint);
    assert.equal((await victim.exited).signal, 'SIGKILL');
    assert.equal(mounted(s.mountpoint), false);
    assert.equal(alive(ffs.daemonPid), false);
    assert.equal(fs.existsSync(ffs.controlSocket), false, "the killed daemon's control socket is removed");
    await ffs.unmount(); // idempotent after someone else's clean-up
  });

  it('a daemon SIGKILLed while a process is in D: releaseMount leaves no mount and the process is gone', async () => {
    const { s, ffs, victim } = await stalledVictim();
    process.kill(ffs.daemonPid, 'SIGKILL');
    await until('daemon gone', () => !alive(ffs.daemonPid), 30_000);
    await releaseMount(s.mountpoint);
    assert.equal((await victim.exited).signal, 'SIGKILL');
    assert.equal(mounted(s.mountpoint), false);
    // The mount point is an ordinary directory again.
    assert.deepEqual(fs.readdirSync(s.mountpoint), []);
  });

  it('a detached mount outlives the process that made it; another process attaches to it, and releaseMount removes it', async () => {
    const s = scratch();
    const script = `import { FaultFs } from ${JSON.stringify(new URL('../../src/lab/faultfs.ts', import.meta.url).href)};
      const f = await FaultFs.mount({ backing: ${JSON.stringify(s.backing)}, mountpoint: ${JSON.stringify(s.mountpoint)}, detached: true });
      console.log(f.daemonPid);`;
    const maker = run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
    const made = await maker.exited;
    assert.equal(made.code, 0, made.stderr);
    try {
      assert.ok(mounted(s.mountpoint), 'still mounted after its maker exited');
      const disk = FaultFs.attach(s.mountpoint);
      assert.ok(alive(disk.daemonPid));
      await disk.set({ mode: 'error', errno: 'ENOSPC', ops: ['fsync'] });
      assert.deepEqual((await FaultFs.attach(s.mountpoint).status()).rules, [{ mode: 'error', errno: 'ENOSPC', ops: ['fsync'] }]);
      await releaseMount(s.mountpoint);
      assert.equal(mounted(s.mountpoint), false);
      assert.equal(alive(disk.daemonPid), false);
      assert.equal(fs.existsSync(disk.controlSocket), false);
    } finally {
      await releaseMount(s.mountpoint);
      fs.rmSync(s.dir, { recursive: true, force: true });
      // releaseMount keeps a daemon's log for a post-mortem; this one is not needed.
      fs.rmSync(FaultFs.defaultLogFile(s.mountpoint), { force: true });
    }
  });

  it('releaseMount of a path with no faultfs is a no-op', async () => {
    const { s, fs: ffs } = await mountScratch();
    left.push({ s, fs: ffs });
    await releaseMount(join(s.dir, 'never-mounted'));
    assert.equal(mounted(s.mountpoint), true);
  });
});
