// The client benchmark end to end on a real ensemble, at a size that takes seconds: every client
// (zkwarden, both Node peers and ZooKeeper's Java client in its own JVM) is measured for every op
// and level, the round-by-round and goal tables are complete, --no-write leaves
// docs/benchmarks.md alone, and bad arguments are one-line errors.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, runBench as run } from './run-bench.ts';

const runBench = (args: string[], timeoutMs: number): ReturnType<typeof run> => run('bench/client/run.ts', args, timeoutMs);
const CLIENTS = ['zkwarden', 'node-zookeeper-client', 'zookeeper (native C)', 'ZooKeeper Java client'];
const OPS = ['create', 'getData', 'setData', 'delete'];

describe('bench/client', () => {
  before(() => {
    // What `npm run bench:client` does first: the bench group's packages (a JDK for the Java driver).
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'setup.mjs'), 'bench'], { cwd: root, encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, `node scripts/setup.mjs bench: ${r.stderr}`);
  });

  it('measures zkwarden, both Node peers and the Java client for every op at every level, without touching the docs', async () => {
    const docs = join(root, 'docs', 'benchmarks.md');
    const before = readFileSync(docs, 'utf8');
    const { code, stdout, stderr } = await runBench(['--ops', '160', '--concurrency', '1,8', '--slices', '8', '--repeat', '2', '--no-write'], 240_000);
    assert.equal(code, 0, stderr);
    assert.equal(readFileSync(docs, 'utf8'), before, '--no-write leaves docs/benchmarks.md as it was');
    assert.doesNotMatch(stdout, /Not measured/, 'the native peer loaded and the Java driver was built');
    assert.match(stdout, /ZooKeeper's Java client 3\.\d+\.\d+ .* in its own JVM/);

    const rows = stdout.split('\n').filter((l) => /^\| (create|getData|setData|delete) \| \d+ \| /.test(l));
    const results = rows.filter((l) => l.split('|').length === 13);
    const ratios = rows.filter((l) => l.split('|').length === 8);
    const goals = rows.filter((l) => l.split('|').length === 10);
    for (const client of CLIENTS) {
      for (const op of OPS) {
        for (const level of [1, 8]) {
          const row = results.find((l) => l.startsWith(`| ${op} | ${level} | ${client} |`));
          assert.ok(row, `a result row for ${client} ${op} at ${level}`);
          const cells = row.split('|').map((c) => Number(c.trim().replace(/,/g, '')));
          assert.ok(cells[4] > 0, `${client} ${op} at ${level}: ${cells[4]} ops/s`);
          assert.ok(cells[5] > 0 && cells[5] <= cells[6], `${client} ${op} at ${level}: p50 ${cells[5]} ≤ p99 ${cells[6]}`);
          assert.ok(cells[9] >= 0, `${client} ${op} at ${level}: client CPU ${cells[9]}`);
        }
      }
    }
    assert.equal(ratios.length, 4 * 2 * 3, 'one round-by-round ratio per op, level and peer (the Java client among them)');
    for (const l of ratios) {
      const [low, high] = l.split('|')[5].trim().split('–').map(Number);
      const median = Number(l.split('|')[4]);
      assert.ok(low <= median && median <= high, `median inside its interval: ${l}`);
      assert.equal(Number(l.split('|')[6]), 2 * 8, 'rounds = repeats × slices');
    }
    assert.equal(goals.length, 4 * 2, 'one goal row per op and level');
    for (const l of goals) {
      const cells = l.split('|').map((c) => c.trim());
      // Node peers: "median (low–high) ahead|tie|below", the Java client's ratio with its interval, then the verdict.
      for (const c of cells.slice(3, 5)) assert.match(c, /^\d+\.\d{3} \(\d+\.\d{3}–\d+\.\d{3}\) (ahead|tie|below)$/);
      assert.match(cells[6], /^\d+\.\d{3} \(\d+\.\d{3}–\d+\.\d{3}\)$/);
      assert.match(cells[7], /^\d+\.\d\d \/ \d+\.\d\d$/, 'p99s side by side');
      assert.match(cells[8], /^(met|not met: .+)$/);
    }
    const met = goals.filter((l) => l.includes('| met |')).length;
    assert.match(stdout, new RegExp(`^The goal held in ${met} of 8 op × outstanding rows\\.`, 'm'), 'the summary counts the table');
    assert.match(stdout, /^Round by round, zkwarden's throughput was above every Node peer's .* in \d+ rows/m);
  });

  it('the own-process control (zkwarden driven like the Java client) is measured beside zkwarden, and a narrowed run leaves the docs alone', async () => {
    const docs = join(root, 'docs', 'benchmarks.md');
    const before = readFileSync(docs, 'utf8');
    const { code, stdout, stderr } = await runBench(
      ['--clients', 'zkwarden,own-process', '--only', 'getData', '--ops', '40', '--concurrency', '4', '--slices', '2', '--repeat', '1'],
      120_000,
    );
    assert.equal(code, 0, stderr);
    assert.equal(readFileSync(docs, 'utf8'), before, 'a narrowed run never writes the docs');
    for (const client of ['zkwarden', 'zkwarden (own process)']) {
      const row = stdout.split('\n').find((l) => l.startsWith(`| getData | 4 | ${client} |`) && l.split('|').length === 13);
      assert.ok(row, `a getData row for ${client}`);
      assert.ok(Number(row.split('|')[4].trim().replace(/,/g, '')) > 0);
    }
    assert.match(stdout, /^\| getData \| 4 \| zkwarden \(own process\) \| \d+\.\d{3} \| \d+\.\d{3}–\d+\.\d{3} \| 2 \|$/m, 'paired round by round');
    assert.doesNotMatch(stdout, /^\| create \|/m, 'only the listed op is reported');
  });

  it('a bad argument is one line naming it, exit code 2, and starts no ensemble', async () => {
    for (const [args, expect] of [
      [['--ops', '0'], /--ops: expected one positive integer/],
      [['--clients', 'zkwarden,curator'], /--clients: unknown client curator \(expected zkwarden, twin, nzc, native, java, own-process\)/],
      [['--clients', 'java,zkwarden,java'], /--clients: a client named twice/],
      [['--repeat', 'many'], /--repeat: expected an integer from 1 to 1000, got many/],
      [['--bogus'], /Unknown option '--bogus'/],
      [['--ops'], /--ops/],
    ] as const) {
      const { code, stdout, stderr } = await runBench([...args], 60_000);
      assert.equal(code, 2, stderr);
      assert.equal(stdout, '');
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, /^bench:client: /);
      assert.match(stderr, expect);
    }
  });
});
