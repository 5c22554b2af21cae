/**
 * The programs in examples/ run as users run them (each its own process, importing the package
 * by name: the `zkwarden-source` condition maps it to src/), against one real ZooKeeper server,
 * and do what their comments promise.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { readStat } from '../../src/lab/proc.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { until } from '../until.ts';

const root = join(import.meta.dirname, '..', '..');
const nodeArgs = ['--conditions=zkwarden-source', '--import', 'tsx'];
const example = (name: string): string => join(root, 'examples', name);
const cliMain = join(root, 'src', 'cli', 'main.ts');

/** Whether any process is in process group `pgid`. */
function groupHasMembers(pgid: number): boolean {
  return readdirSync('/proc').some((name) => /^\d+$/.test(name) && readStat(Number(name))?.pgrp === pgid);
}

/** A running example: its stdout lines as they come, and a way to wait for one. */
class Program {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;

  /** `node file args`; with `argv` (and no file), that command line as given. */
  constructor(file: string | null, args: string[]) {
    const argv = file === null ? args : [process.execPath, ...nodeArgs, file, ...args];
    // Its own process group: `guard run` starts the service as its child, and a grandchild left
    // alive would hold our pipes open and keep this test file from ever exiting.
    this.child = spawn(argv[0]!, argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The first line (from index `from` on) matching `re`; fails with the output so far. */
  async line(re: RegExp, from = 0, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    let found: RegExpMatchArray | null = null;
    await until(
      `a line matching ${re}`,
      () => {
        if (this.child.exitCode !== null) throw new Error(`exited (${this.child.exitCode}) before ${re}:\n${this.lines.join('\n')}\n${this.stderr}`);
        found =
          this.lines
            .slice(from)
            .map((l) => l.match(re))
            .find((m) => m !== null) ?? null;
        return found !== null;
      },
      timeoutMs,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
    });
    return found!;
  }

  /**
   * Kills it and everything it started. A group id is ours while any member lives (the kernel
   * does not hand out a pid still in use as a group id); once the group is empty the number is
   * free, and killing it then could hit an unrelated process group that reused it.
   */
  killAll(): void {
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    const leaderAlive = this.child.exitCode === null && this.child.signalCode === null;
    if (!leaderAlive && !groupHasMembers(pgid)) return;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // The group emptied meanwhile.
    }
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

let ens: Ensemble;
let zk: ZooKeeperClient;
const running: Program[] = [];
const start = (file: string, args: string[]): Program => {
  const p = new Program(example(file), args);
  running.push(p);
  return p;
};

before(async () => {
  ens = await Ensemble.start({ size: 1 });
  zk = createClient(ens.connectString, { sessionTimeoutMs: 30_000 });
  await zk.connect({ timeoutMs: 15_000 });
});

after(async () => {
  for (const p of running) p.killAll();
  await zk?.close().catch(() => undefined);
  await ens?.close();
});

describe('examples/leader-service.ts', () => {
  it('one instance leads and takes the writes, the other redirects to it; a leader deposed while stopped cannot write when it wakes', async () => {
    const a = start('leader-service.ts', [ens.connectString, 'nodeA']);
    await a.line(/^elected: epoch (0x[0-9a-f]+)$/);
    const aEndpoint = (await a.line(/^nodeA serving on http:\/\/(\S+)$/))[1]!;
    const b = start('leader-service.ts', [ens.connectString, 'nodeB']);
    const bEndpoint = (await b.line(/^nodeB serving on http:\/\/(\S+)$/))[1]!;
    await b.line(/^leader: nodeA at /);
    assert.ok(!b.lines.some((l) => l.startsWith('elected')), 'nodeB must not lead while nodeA does');

    // A write at the follower is redirected to the leader, where it lands.
    const redirected = await fetch(`http://${bEndpoint}/state`, { method: 'PUT', body: 'v1', redirect: 'manual' });
    assert.equal(redirected.status, 307);
    assert.equal(redirected.headers.get('location'), `http://${aEndpoint}/state`);
    const written = await fetch(`http://${aEndpoint}/state`, { method: 'PUT', body: 'v1' });
    assert.equal(written.status, 200, await written.text());
    assert.equal(await (await fetch(`http://${bEndpoint}/state`)).text(), 'v1');

    // nodeA wedges (SIGSTOP: it runs nothing, its session lives a while); from outside, its
    // election znode is deleted, as a guard does. nodeB leads in a higher epoch.
    const firstEpoch = parseInt((await a.line(/^elected: epoch (0x[0-9a-f]+)$/))[1]!, 16);
    a.child.kill('SIGSTOP');
    const { children } = await zk.getChildren('/example/leader');
    const lowest = [...children].sort()[0]!;
    await zk.delete(`/example/leader/${lowest}`);
    const bElected = parseInt((await b.line(/^elected: epoch (0x[0-9a-f]+)$/))[1]!, 16);
    assert.ok(bElected > firstEpoch, `epoch ${bElected} after ${firstEpoch}`);
    const v2 = await fetch(`http://${bEndpoint}/state`, { method: 'PUT', body: 'v2' });
    assert.equal(v2.status, 200, await v2.text());

    // nodeA wakes and is asked to write: it redirects, answers "retry", or its fenced write is
    // refused by ZooKeeper, depending on what it has learned yet; it never writes.
    const before = a.lines.length;
    a.child.kill('SIGCONT');
    const late = await fetch(`http://${aEndpoint}/state`, { method: 'PUT', body: 'v3 from a deposed leader', redirect: 'manual' });
    const text = await late.text();
    assert.ok([307, 409, 503].includes(late.status), `deposed leader answered ${late.status} ${text}`);
    if (late.status === 409) assert.match(text, /^refused: /);
    assert.equal((await zk.getData('/example/state')).data.toString(), 'v2');
    // (Stopped long enough, its client may have noticed the silence first and stepped down for that.)
    await a.line(/^deposed: epoch 0x[0-9a-f]+, (znodeGone|suspended)$/, before);

    // Clean stops: each leaves the election and closes its session.
    assert.equal(await a.stop(), 0, a.stderr);
    assert.equal(await b.stop(), 0, b.stderr);
    assert.ok(a.lines.includes('nodeA left') && b.lines.includes('nodeB left'));
    assert.deepEqual((await zk.getChildren('/example/leader')).children, []);
  });
});

describe('examples/membership-watcher.ts', () => {
  it('lists the members and prints who joins and who leaves', async () => {
    const w = start('membership-watcher.ts', [ens.connectString, '10.1.88.101:10100', 'meta']);
    await w.line(/^members: 10\.1\.88\.101:10100 \(meta\)$/);

    // Another instance registers, then stops cleanly.
    const mark = w.lines.length;
    const other = start('membership-watcher.ts', [ens.connectString, '10.1.88.102:10200', 'chunk']);
    await other.line(/^members: 10\.1\.88\.101:10100 \(meta\), 10\.1\.88\.102:10200 \(chunk\)$/);
    await w.line(/^joined: 10\.1\.88\.102:10200$/, mark);
    await w.line(/^members: 10\.1\.88\.101:10100 \(meta\), 10\.1\.88\.102:10200 \(chunk\)$/, mark);
    assert.equal(await other.stop(), 0, other.stderr);
    await w.line(/^left: 10\.1\.88\.102:10200$/, mark);

    // A member whose session ends (here, closed) leaves without unregistering.
    const c = createClient(ens.connectString, { sessionTimeoutMs: 6000 });
    await c.connect({ timeoutMs: 15_000 });
    await c.create('/example/members/10.1.88.103:10300', '{"role":"chunk"}', { mode: 'ephemeral' });
    await w.line(/^joined: 10\.1\.88\.103:10300$/, mark);
    await c.close();
    await w.line(/^left: 10\.1\.88\.103:10300$/, mark);

    assert.equal(await w.stop(), 0, w.stderr);
    assert.ok(w.lines.includes('unregistered 10.1.88.101:10100'));
    assert.deepEqual((await zk.getChildren('/example/members')).children, []);
  });
});

describe('examples/read-snapshot.ts', () => {
  it("prints the znodes under a path from a server's newest snapshot, and one line for a file that is not one", async () => {
    await zk.create('/snap-example', 'root');
    await zk.create('/snap-example/a', 'alpha');
    await zk.create('/snap-example/b', 'bravo!');
    await zk.setData('/snap-example/b', 'bravo!!');
    await zk.create('/elsewhere', 'x');
    await zk.close();
    // A server takes a snapshot of everything it holds when it starts.
    await ens.restart(1);
    zk = createClient(ens.connectString, { sessionTimeoutMs: 30_000 });
    await zk.connect({ timeoutMs: 15_000 });

    const r = spawnSync(process.execPath, [...nodeArgs, example('read-snapshot.ts'), ens.server(1).dataDir, '/snap-example'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const summary = lines.pop()!;
    lines.sort(); // a snapshot holds children in the server's hash order
    assert.equal(lines.length, 3, r.stdout);
    assert.match(lines[0]!, /^\/snap-example {2}4 bytes, version 0, czxid 0x[0-9a-f]+$/);
    assert.match(lines[1]!, /^\/snap-example\/a {2}5 bytes, version 0, czxid 0x[0-9a-f]+$/);
    assert.match(lines[2]!, /^\/snap-example\/b {2}7 bytes, version 1, czxid 0x[0-9a-f]+$/);
    assert.match(summary, /snapshot\.[0-9a-f]+: \d+ znodes, \d+ sessions, last zxid 0x[0-9a-f]+, checksum ok$/);

    const bogus = join(ens.server(1).dir, 'snapshot.1');
    writeFileSync(bogus, 'this is not a snapshot');
    const bad = spawnSync(process.execPath, [...nodeArgs, example('read-snapshot.ts'), bogus], { cwd: root, encoding: 'utf8' });
    assert.equal(bad.status, 2, bad.stderr);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, new RegExp(`^${bogus.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: at offset \\d+: expected .+\n$`));
  });
});

describe('examples/guarded-leader-service.ts', () => {
  it("leads only while its data disk answers (the gate resigns) and while it runs (its watchdog ends a frozen leader's session)", async () => {
    const tag = `${process.pid}-${Date.now().toString(36)}`;
    const dirs = { nodeA: mkdtempSync(join(tmpdir(), 'zkwarden-example-a-')), nodeB: mkdtempSync(join(tmpdir(), 'zkwarden-example-b-')) };
    // As the example's header says: each instance started by its watchdog, `zkwarden guard run`.
    const guarded = (node: 'nodeA' | 'nodeB'): Program => {
      const p = new Program(null, [
        process.execPath,
        '--import',
        'tsx',
        cliMain,
        'guard',
        'run',
        '--servers',
        ens.connectString,
        '--name',
        `example-${node}-${tag}`,
        '--',
        process.execPath,
        ...nodeArgs,
        example('guarded-leader-service.ts'),
        ens.connectString,
        node,
        dirs[node],
      ]);
      running.push(p);
      return p;
    };
    const epochOf = (m: RegExpMatchArray): number => parseInt(m[1]!, 16);
    try {
      const a = guarded('nodeA');
      const first = epochOf(await a.line(/^elected: epoch (0x[0-9a-f]+)$/));
      await a.line(/^watchdog: watching$/);
      const aEndpoint = (await a.line(/^nodeA serving on http:\/\/(\S+) /))[1]!;
      const b = guarded('nodeB');
      await b.line(/^watchdog: watching$/);
      const [, bEndpoint, bPid] = await b.line(/^nodeB serving on http:\/\/(\S+) \(pid (\d+)\)$/);
      await b.line(/^leader: nodeA at /);
      assert.ok(!b.lines.some((l) => l.startsWith('elected')), 'nodeB must not lead while nodeA does');

      // The gate: nodeA's data disk fails (its directory is gone), its probe fails, it resigns
      // and closes its session, and nodeB leads in a higher epoch.
      let mark = a.lines.length;
      rmSync(dirs.nodeA, { recursive: true, force: true });
      await a.line(new RegExp(`^resigning: disk ${dirs.nodeA.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*ENOENT`), mark);
      await a.line(/^deposed: epoch 0x[0-9a-f]+, unhealthy$/, mark);
      const second = epochOf(await b.line(/^elected: epoch (0x[0-9a-f]+)$/));
      assert.ok(second > first, `epoch ${second} after ${first}`);
      const written = await fetch(`http://${bEndpoint}/state`, { method: 'PUT', body: 'from nodeB' });
      assert.equal(written.status, 200, await written.text());
      const refused = await fetch(`http://${aEndpoint}/state`, { method: 'PUT', body: 'from nodeA', redirect: 'manual' });
      assert.ok([307, 503].includes(refused.status), `the resigned leader answered ${refused.status}`);
      assert.equal((await zk.getData('/example/guarded-state')).data.toString(), 'from nodeB');

      // Its disk back, nodeA stands again, behind nodeB.
      mkdirSync(dirs.nodeA);
      await a.line(/^standing: a candidate again$/, mark);
      assert.equal(a.lines.slice(mark).filter((l) => l.startsWith('elected')).length, 0);

      // The watchdog: nodeB freezes (SIGSTOP: none of its code runs, so it cannot resign, but its
      // session would outlive it). Its watchdog hears no beat, ends the session from outside and
      // kills it; nodeA leads.
      mark = a.lines.length;
      process.kill(Number(bPid), 'SIGSTOP');
      const third = epochOf(await a.line(/^elected: epoch (0x[0-9a-f]+)$/, mark));
      assert.ok(third > second, `epoch ${third} after ${second}`);
      assert.equal(await b.exited, 1, 'guard run reports that it intervened');
      assert.match(b.stderr, /watchdog\.intervene reason=silent/);
      assert.match(b.stderr, /watchdog\.sessionEnded session=#\d+ outcome=/);

      // A clean stop through the watchdog: the service leaves the election, guard run exits 0.
      assert.equal(await a.stop(), 0, a.stderr);
      assert.ok(a.lines.includes('nodeA left'));
      assert.deepEqual((await zk.getChildren('/example/guarded-leader')).children, []);
    } finally {
      for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
    }
  });
});
