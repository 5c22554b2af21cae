// The seed incident, rebuilt from the note's own log lines (test/fixtures/seed-bundle): the
// findings the note's author reached by hand must come out of `investigate` with no flag.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { investigate } from '../../../src/forensics/logs/investigate.ts';
import { TimeZone } from '../../../src/forensics/logs/time.ts';

const root = join(import.meta.dirname, '..', '..', 'fixtures', 'seed-bundle');
const cst = TimeZone.parse('+08:00');
const at = (hms: string, frac = 0): number => {
  const [h, m, s] = hms.split(':').map(Number) as [number, number, number];
  return cst.toEpoch(2022, 6, 25, h, m, s, frac);
};

test('seed bundle: node1 last sign of life 05:43:23.800374 (meta line) – 05:43:24 (chunk log mtime)', async () => {
  const inv = await investigate({ root });
  assert.equal(inv.tz, '+08:00', 'bundle.json gives the zone');
  const life = inv.findings.find((f) => f.kind === 'last-sign-of-life' && f.node === 'node1');
  assert.ok(life, 'a last-sign-of-life finding for node1');
  assert.equal(life.facts?.lastLogLine, at('05:43:23', 800.374));
  assert.equal(life.facts?.lastMtime, at('05:43:24'));
  assert.equal(life.from, at('05:43:23', 800.374));
  assert.equal(life.to, at('05:43:24'));
  assert.ok(life.evidence.some((e) => e.text.startsWith('I0625 05:43:23.800374  5366 nfs_server.cc:1115]')));
  const silence = inv.findings.find((f) => f.kind === 'silence' && f.node === 'node1');
  assert.ok(silence);
  assert.equal(silence.from, at('05:43:24'));
  assert.equal(silence.to, at('08:08:34', 322), 'node1 comes back at 08:08:34 (its ZooKeeper log)');
  // The glog year came from the sibling ZooKeeper log; the mtime from the saved `stat -x` listing.
  const meta = inv.files.find((f) => f.file === 'node1/zbs-metad.INFO');
  assert.equal(meta?.year, 2022);
  assert.match(meta?.yearSource ?? '', /sibling/);
});

test('seed bundle: node2 drops node1 from the ZooKeeper quorum at 05:43:31 (transaction timeout, GOODBYE)', async () => {
  const inv = await investigate({ root });
  const drop = inv.findings.find((f) => f.kind === 'quorum-member-dropped');
  assert.ok(drop);
  assert.equal(drop.node, 'node2');
  assert.equal(drop.facts?.peer, 'node1');
  assert.equal(drop.facts?.peerAddress, '10.1.88.101:55810');
  assert.match(String(drop.facts?.reason), /transaction timeout/);
  assert.equal(drop.from, at('05:43:31', 656));
  assert.equal(drop.to, at('05:43:31', 657));
  assert.ok(drop.evidence.some((e) => e.text.includes('******* GOODBYE /10.1.88.101:55810 ********')));
  // No election anywhere: ZooKeeper carried on with node2 and node3.
  assert.equal(inv.findings.filter((f) => f.kind === 'quorum-election').length, 0);
});

test("seed bundle: chunks on node2 and node3 time out against node1's meta 10.1.88.101:10100", async () => {
  const inv = await investigate({ root });
  const calls = inv.findings.filter((f) => f.kind === 'failed-calls');
  assert.deepEqual(calls.map((c) => c.node).sort(), ['node2', 'node3']);
  for (const c of calls) {
    assert.equal(c.service, 'zbs-chunkd');
    assert.equal(c.facts?.remote, '10.1.88.101:10100');
    assert.equal(c.facts?.remoteNode, 'node1');
    assert.equal(c.facts?.remoteRole, 'meta');
    assert.equal(c.facts?.error, 'ETimedOut');
    assert.equal(c.from, at('05:43:50', 12.274));
    // The multi-line entry kept its Traceback block.
    assert.ok(c.evidence[0]!.more?.some((l) => l.includes('socket: ') && l.includes('-->10.1.88.101:10100')));
  }
});

test('seed bundle: the verdict is a gray failure of the meta leader on node1', async () => {
  const inv = await investigate({ root });
  assert.equal(inv.verdicts.length, 1);
  const v = inv.verdicts[0]!;
  assert.equal(v.facts?.verdict, 'gray-failure');
  assert.equal(v.facts?.leaderNode, 'node1');
  assert.equal(v.facts?.endpoint, '10.1.88.101:10100');
  assert.equal(v.facts?.role, 'meta');
  assert.equal(v.facts?.zkLeader, 'node2');
  assert.equal(v.facts?.quorumKept, true);
  assert.equal(v.from, at('05:43:23', 800.374));
  assert.equal(v.to, at('08:08:34', 322));
  assert.match(v.title, /alive in ZooKeeper, not serving/);
});

test('seed bundle: every line of every file is kept in the merged timeline, in time order', async () => {
  const seen: { ts: number; text: string; more: number }[] = [];
  const inv = await investigate({
    root,
    onBatch: (b) => {
      seen.push(...b.map((e) => ({ ts: e.ts, text: e.text, more: e.more?.length ?? 0 })));
    },
  });
  const readLines = inv.files.filter((f) => ['glog', 'log4j', 'text'].includes(f.kind)).reduce((n, f) => n + f.lines, 0);
  const mtimeRecords = seen.filter((s) => s.text.startsWith('[mtime]')).length;
  const logLines = seen.filter((s) => !s.text.startsWith('[mtime]')).reduce((n, s) => n + 1 + s.more, 0);
  assert.equal(logLines, readLines);
  assert.equal(mtimeRecords, 1);
  const timed = seen.filter((s) => Number.isFinite(s.ts));
  // Files are merged by time; inside node1's ZooKeeper log two lines are out of order in the
  // original (08:08:36,813 before 08:08:36,621) and keep their file order.
  const outOfOrder = timed.filter((s, i) => i > 0 && s.ts < timed[i - 1]!.ts);
  assert.deepEqual(
    outOfOrder.map((s) => s.text.slice(0, 23)),
    ['2022-06-25 08:08:36,621'],
  );
});

test('seed bundle: the CLI prints the verdict first and exits 1 for a gray failure', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'investigate', root], {
    cwd: join(import.meta.dirname, '..', '..', '..'),
    encoding: 'utf8',
  });
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.match(lines[2]!, /^files: \d+ read \(/);
  assert.match(lines[3]!, /^VERDICT: Gray failure of the meta leader on node1/);
  const json = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'investigate', root, '--json'], {
    cwd: join(import.meta.dirname, '..', '..', '..'),
    encoding: 'utf8',
  });
  const parsed = JSON.parse(json.stdout) as { verdicts: { facts: { verdict: string } }[] };
  assert.equal(parsed.verdicts[0]!.facts.verdict, 'gray-failure');
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'investigate', '/nonexistent/bundle'], {
    cwd: join(import.meta.dirname, '..', '..', '..'),
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no such directory/);
});
