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
import { auditOnline, type OnlineMember, type OnlinePhase, type OnlineReport, renderOnline } from '../../../src/forensics/zkdata/online.ts';
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
  unreachable: { name: string; address: string; error: string; unanswered: { step: string; waitedMs: number; midAudit: boolean } | null }[];
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
    await quiesce(
      ens,
      ens.servers.map((s) => s.id),
    );
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
      assert.ok(
        report.warnings.some((w) => w.startsWith(`${s.dataDir} belongs to a running server (pid`) && w.includes(String(pid))),
        JSON.stringify(report.warnings),
      );
    }
  });

  it('audit --servers with a paused server: one wait for it, no session tried, UNREACHABLE, exit 3', async () => {
    const paused = (await ens.followerIds())[0]!;
    await ens.pause(paused);
    let r;
    try {
      // Each wait gets a quarter of --timeout: 2000 ms.
      r = runCli(['audit', '--servers', servers(), '--names', names(), '--timeout', '8000', '--json']);
    } finally {
      await ens.resume(paused);
    }
    assert.equal(r.status, 3, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout) as OnlineJson;
    assert.match(j.verdict, new RegExp(`^UNREACHABLE: zk${paused} \\(no answer to srvr within 2000 ms`));
    const m = j.members.find((x) => x.name === `zk${paused}`)!;
    assert.equal(m.status, 'unreachable');
    // The kernel accepts the connection of a stopped process; its srvr goes unanswered: one
    // wait, and nothing more is tried on it (no session, whose connect would wait again).
    assert.deepEqual(
      m.attempts.map((a) => [a.step, a.outcome]),
      [
        ['connect', 'ok'],
        ['srvr', 'timeout'],
      ],
      JSON.stringify(m.attempts),
    );
    assert.deepEqual(j.unreachable, [
      { name: `zk${paused}`, address: ens.address(paused), error: m.error, unanswered: { step: 'srvr', waitedMs: 2000, midAudit: false } },
    ]);
    for (const other of j.members.filter((x) => x !== m)) {
      assert.equal(other.attempts.filter((a) => a.outcome === 'timeout').length, 0, `${other.name}: ${JSON.stringify(other.attempts)}`);
      assert.ok(
        other.attempts.some((a) => a.step === 'session' && a.outcome === 'ok'),
        `${other.name} was read`,
      );
    }
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    await ens.waitForServing(paused, 60_000);
  });

  /**
   * The online audit of the whole ensemble with a follower paused at `phase` (by the audit's own
   * hook, so the pause lands at a known point), resumed and serving again before it returns.
   */
  async function auditPausing(
    phase: OnlinePhase,
    bounds: { timeoutMs: number; waitMs: number },
  ): Promise<{ r: OnlineReport; m: OnlineMember; name: string; address: string; phases: OnlinePhase[] }> {
    const paused = (await ens.followerIds())[0]!;
    const phases: OnlinePhase[] = [];
    let r: OnlineReport;
    try {
      r = await auditOnline(
        ens.servers.map((s) => ens.address(s.id)),
        {
          names: ens.servers.map((s) => `zk${s.id}`),
          ...bounds,
          onPhase: async (p) => {
            phases.push(p);
            if (p === phase) await ens.pause(paused);
          },
        },
      );
    } finally {
      await ens.resume(paused);
    }
    await ens.waitForQuorum({ timeoutMs: 60_000 });
    await ens.waitForServing(paused, 60_000);
    const name = `zk${paused}`;
    return { r, m: r.members.find((x) => x.name === name)!, name, address: ens.address(paused), phases };
  }

  /** Named once, in the headline, and the silence cost one wait; the others were read in full. */
  function assertNamedOnceOthersRead(r: OnlineReport, m: OnlineMember): void {
    assert.ok(r.verdict.startsWith(`UNREACHABLE: ${m.name} (${m.error}) — `), r.verdict);
    assert.equal(r.verdict.split(m.name).length - 1, 1, r.verdict);
    assert.equal(renderOnline(r).split('stopped answering').length - 1, 1, renderOnline(r));
    assert.equal(r.members.flatMap((x) => x.attempts).filter((a) => a.outcome === 'timeout').length, 1, 'the silence cost one wait in all');
    for (const other of r.members.filter((x) => x !== m)) {
      assert.notEqual(other.status, 'unreachable', `${other.name}: ${other.error}`);
      assert.ok(other.nodeCount !== null && other.nodeCount > 20, `${other.name} read: ${other.nodeCount}`);
      assert.ok(
        ['tree', 'mntr', 'dump', 'hash'].every((step) => other.attempts.some((a) => a.step === step && a.outcome === 'ok')),
        JSON.stringify(other.attempts),
      );
    }
  }

  it('audit --servers with a server paused after the audit reached it: one wait, named once, never asked again, the others read', async () => {
    // Paused once every server has answered srvr and holds a session, before the first zxid
    // round: every later question to it goes unanswered.
    const { r, m, name, address, phases } = await auditPausing('reached', { timeoutMs: 120_000, waitMs: 2000 });
    assert.deepEqual(phases, ['reached', 'zxids', 'trees']);
    assert.equal(m.status, 'unreachable');
    assert.deepEqual(m.unanswered, { step: 'srvr', waitedMs: 2000, midAudit: true });
    assert.equal(
      m.error,
      'stopped answering: no answer to srvr within 2000 ms, though it had answered earlier in the audit (paused or hung?); not asked again',
    );
    // Reached at first; then one unanswered srvr, and nothing more asked of it in later rounds,
    // nor its tree, nor its figures.
    assert.deepEqual(
      m.attempts.map((a) => [a.step, a.outcome]),
      [
        ['connect', 'ok'],
        ['srvr', 'ok'],
        ['session', 'ok'],
        ['srvr', 'timeout'],
      ],
      JSON.stringify(m.attempts),
    );
    assert.ok(r.elapsedMs < r.timeoutMs);
    assert.deepEqual(r.unreachable, [{ name, address, error: m.error, unanswered: m.unanswered }]);
    // The others agree, unless the expiry of the audit's own session on the paused server moved
    // their zxid meanwhile.
    assert.match(r.verdict, / — (INCOMPLETE: the 2 reachable servers agree at 0x[0-9a-f]+, identical trees|NOT COMPARABLE: )/);
    assertNamedOnceOthersRead(r, m);
  });

  it('audit --servers with a server paused while its tree is read: named once, its tree and figures not asked again, the others read', async () => {
    const { r, m } = await auditPausing('zxids', { timeoutMs: 120_000, waitMs: 2000 });
    assert.equal(m.status, 'unreachable');
    assert.match(m.unanswered?.step ?? '', /^getChildren \//);
    assert.equal(m.unanswered?.midAudit, true);
    assert.match(
      m.error!,
      /^stopped answering: no answer to getChildren \/\S* (within|in) \d+ ms.*, though it had answered earlier in the audit \(paused or hung\?\); not asked again$/,
    );
    // The tree read is the last thing asked of it: no srvr after it, no mntr, dump or hash.
    assert.deepEqual(
      m.attempts.map((a) => [a.step, a.outcome]).slice(-2),
      [
        ['srvr', 'ok'],
        ['tree', 'timeout'],
      ],
      JSON.stringify(m.attempts),
    );
    assertNamedOnceOthersRead(r, m);
  });

  it('audit --servers ends within its --timeout when a server is paused mid-audit and its wait would outlast the bound', async () => {
    // The wait is as long as the whole bound: the unanswered srvr is cut at the deadline, and
    // nothing is asked after it.
    const { r, m } = await auditPausing('reached', { timeoutMs: 6000, waitMs: 6000 });
    assert.equal(m.unanswered?.step, 'srvr');
    assert.ok(m.unanswered.waitedMs < 6000, `cut to what was left of the bound: ${m.unanswered.waitedMs}`);
    for (const other of r.members.filter((x) => x !== m)) {
      assert.equal(other.status, 'unreachable');
      assert.match(other.error!, /^not asked getChildren \/: the audit's 6000 ms \(--timeout\) ran out$/);
      assert.equal(other.attempts.filter((a) => a.outcome === 'timeout').length, 0, JSON.stringify(other.attempts));
    }
    assert.match(r.verdict, /^UNREACHABLE: /);
    assert.equal(r.unreachable.length, 3);
  });

  it('audit --servers with a stopped server: UNREACHABLE in the headline at once, exit 3', async () => {
    const stopped = (await ens.followerIds())[0]!;
    await ens.stop(stopped);
    const r = runCli(['audit', '--servers', servers(), '--names', names()]);
    assert.equal(r.status, 3, r.stdout + r.stderr);
    const head = r.stdout.split('\n')[0]!;
    assert.match(head, new RegExp(`^UNREACHABLE: zk${stopped} \\(${ens.address(stopped).replace(/\./g, '\\.')}: connection refused\\)`), r.stdout);
    const j = JSON.parse(runCli(['audit', '--servers', servers(), '--names', names(), '--json']).stdout) as OnlineJson;
    assert.deepEqual(
      j.members.find((x) => x.name === `zk${stopped}`)!.attempts.map((a) => [a.step, a.outcome]),
      [['connect', 'failed']],
    );
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
    assert.deepEqual(JSON.parse(audit.stdout), {
      error: { message: `--at ${hex(newest + 1)} is past the newest zxid in the members' data (${hex(newest)})`, exitCode: 2 },
    });
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
