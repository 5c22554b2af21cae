/**
 * `audit` and `tree` from the command line against a real ZooKeeper 3.8 ensemble, for what the
 * commands must refuse or say: a running server's data directory read live (warned), a paused
 * server costing one timeout and a stopped one failing fast (UNREACHABLE in the headline,
 * exit 3), `--at` past the newest zxid (refused, naming it), one member's data given twice
 * (refused).
 */
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ensemble } from '../../../src/lab/ensemble.ts';
import { runCli } from '../../cli/run-cli.ts';
import { workload } from './helpers.ts';

const hex = (z: number): string => `0x${z.toString(16)}`;

/** Whether process `pid` holds a file open under `dir`. */
function holdsOpen(pid: number, dir: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${dir}/`);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Polls until `f` holds, with a bound: a fact, not a time. */
async function until(what: string, f: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function quiesce(ens: Ensemble, ids: number[]): Promise<number> {
  let z: (number | undefined)[] = [];
  await until('the servers to reach the same zxid', async () => {
    z = await Promise.all(ids.map(async (id) => (await ens.srvr(id))?.zxid));
    return z.every((x) => x !== undefined && x === z[0]);
  });
  return z[0]!;
}

interface OnlineJson {
  verdict: string;
  members: { name: string; status: string; error: string | null; attempts: { step: string; outcome: string; ms: number }[] }[];
}

describe('audit and tree on the command line', () => {
  let ens: Ensemble;
  let tmp: string;
  const names = (): string => ens.servers.map((s) => `zk${s.id}`).join(',');
  const servers = (): string => ens.servers.map((s) => ens.address(s.id)).join(',');

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'zkdata-cli-'));
    // The default snapCount: each server keeps writing its one transaction log, held open.
    ens = await Ensemble.start({ size: 3, tickTime: 300, fourLetterWords: ['*'], extendedTypesEnabled: true });
    await workload(ens.address(await ens.leaderId()), 'w', 20);
    await quiesce(ens, ens.servers.map((s) => s.id));
  });
  after(async () => {
    await ens?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("warns that a running server's data directory is read live", async () => {
    await until('every server to hold its transaction log open', () => ens.servers.every((s) => holdsOpen(ens.pid(s.id)!, s.dataDir)));
    const r = runCli(['audit', '--json', ...ens.servers.map((s) => s.dataDir)]);
    assert.ok(r.status === 0 || r.status === 1, `a report, not an error: ${r.stderr}`);
    for (const s of ens.servers) {
      const pid = ens.pid(s.id)!;
      assert.match(r.stderr, new RegExp(`warning: ${s.dataDir} is in use by a running process \\(pid [\\d, ]*\\b${pid}\\b`), r.stderr);
      const report = JSON.parse(r.stdout) as { warnings: string[] };
      assert.ok(report.warnings.some((w) => w.startsWith(`${s.dataDir} belongs to a running server (pid`) && w.includes(String(pid))), JSON.stringify(report.warnings));
    }
  });

  it('audit --servers with a paused server: one timeout for it, no session tried, UNREACHABLE, exit 3', async () => {
    const paused = (await ens.followerIds())[0]!;
    await ens.pause(paused);
    let r;
    try {
      r = runCli(['audit', '--servers', servers(), '--names', names(), '--timeout', '1500', '--json']);
    } finally {
      await ens.resume(paused);
    }
    assert.equal(r.status, 3, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout) as OnlineJson;
    assert.match(j.verdict, new RegExp(`^UNREACHABLE: zk${paused} \\(no answer to srvr within 1500 ms`));
    const m = j.members.find((x) => x.name === `zk${paused}`)!;
    assert.equal(m.status, 'unreachable');
    // The kernel accepts the connection of a stopped process; its srvr goes unanswered: one
    // timeout, and nothing more is tried on it (no session, whose connect would wait again).
    assert.deepEqual(m.attempts.map((a) => [a.step, a.outcome]), [['connect', 'ok'], ['srvr', 'timeout']], JSON.stringify(m.attempts));
    for (const other of j.members.filter((x) => x !== m)) {
      assert.equal(other.attempts.filter((a) => a.outcome === 'timeout').length, 0, `${other.name}: ${JSON.stringify(other.attempts)}`);
      assert.ok(other.attempts.some((a) => a.step === 'session' && a.outcome === 'ok'), `${other.name} was read`);
    }
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    await ens.waitForServing(paused, 60_000);
  });

  it('audit --servers with a stopped server: UNREACHABLE in the headline at once, exit 3', async () => {
    const stopped = (await ens.followerIds())[0]!;
    await ens.stop(stopped);
    const r = runCli(['audit', '--servers', servers(), '--names', names()]);
    assert.equal(r.status, 3, r.stdout + r.stderr);
    const head = r.stdout.split('\n')[0]!;
    assert.match(head, new RegExp(`^UNREACHABLE: zk${stopped} \\(${ens.address(stopped).replace(/\./g, '\\.')}: connection refused\\)`), r.stdout);
    const j = JSON.parse(runCli(['audit', '--servers', servers(), '--names', names(), '--json']).stdout) as OnlineJson;
    assert.deepEqual(j.members.find((x) => x.name === `zk${stopped}`)!.attempts.map((a) => [a.step, a.outcome]), [['connect', 'failed']]);
  });

  it('tree --at and audit --at past the newest zxid refuse, naming it', async () => {
    const running = ens.servers.map((s) => s.id).filter((id) => ens.state(id) === 'running');
    const newest = await quiesce(ens, running);
    for (const s of ens.servers) await ens.stop(s.id);
    const dir = ens.server(running[0]!).dataDir;
    const tree = runCli(['tree', dir, '--at', hex(newest + 1)]);
    assert.equal(tree.status, 2, tree.stderr);
    assert.equal(tree.stderr.trim(), `zkwarden: --at ${hex(newest + 1)} is past the newest zxid in ${dir} (${hex(newest)})`);
    const atNewest = runCli(['tree', dir, '--at', hex(newest), '--json']);
    assert.equal(atNewest.status, 0, atNewest.stderr);
    assert.equal((JSON.parse(atNewest.stdout) as { zxid: string }).zxid, hex(newest));
    const dirs = ens.servers.map((s) => s.dataDir);
    const audit = runCli(['audit', ...dirs, '--at', String(newest + 1), '--json']);
    assert.equal(audit.status, 2);
    assert.deepEqual(JSON.parse(audit.stdout), { error: { message: `--at ${hex(newest + 1)} is past the newest zxid in the members' data (${hex(newest)})`, exitCode: 2 } });
  });

  it("audit refuses one member's data given twice: the same path, a link to it, DIR and DIR/version-2", () => {
    const [a, b] = ens.servers.map((s) => s.dataDir) as [string, string];
    const link = join(tmp, 'link');
    symlinkSync(a, link);
    for (const again of [a, link, join(a, 'version-2')]) {
      const r = runCli(['audit', a, b, again]);
      assert.equal(r.status, 2, `${again}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^zkwarden: ${a} and ${again} are the same directory \\(${join(a, 'version-2')}\\): give each member's data once\\n$`));
    }
    assert.notEqual(runCli(['audit', a, b]).status, 2, 'two members are fine');
  });
});
