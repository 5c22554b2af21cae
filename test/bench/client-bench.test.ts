// The client benchmark end to end on a real ensemble, at a size that takes seconds: every client
// (zkwarden and both peers) is measured for every op and level, the round-by-round table is
// complete, --no-write leaves docs/benchmarks.md alone, and bad arguments are one-line errors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, runBench as run } from './run-bench.ts';

const runBench = (args: string[], timeoutMs: number): ReturnType<typeof run> => run('bench/client/run.ts', args, timeoutMs);

describe('bench/client', () => {
  it('measures zkwarden and both peers for every op at every level, without touching the docs', async () => {
    const docs = join(root, 'docs', 'benchmarks.md');
    const before = readFileSync(docs, 'utf8');
    const { code, stdout, stderr } = await runBench(['--ops', '120', '--concurrency', '1,8', '--slices', '6', '--repeat', '2', '--no-write'], 180_000);
    assert.equal(code, 0, stderr);
    assert.equal(readFileSync(docs, 'utf8'), before, '--no-write leaves docs/benchmarks.md as it was');
    assert.doesNotMatch(stdout, /Not measured/, 'the native peer loaded');

    const rows = stdout.split('\n').filter((l) => /^\| (create|getData|setData|delete) \| \d+ \| /.test(l));
    const results = rows.filter((l) => l.split('|').length === 13);
    const ratios = rows.filter((l) => l.split('|').length === 8);
    for (const client of ['zkwarden', 'node-zookeeper-client', 'zookeeper (native C)']) {
      for (const op of ['create', 'getData', 'setData', 'delete']) {
        for (const level of [1, 8]) {
          const row = results.find((l) => l.startsWith(`| ${op} | ${level} | ${client} |`));
          assert.ok(row, `a result row for ${client} ${op} at ${level}`);
          const ops = Number(row.split('|')[4].trim().replace(/,/g, ''));
          assert.ok(ops > 0, `${client} ${op} at ${level}: ${ops} ops/s`);
        }
      }
    }
    assert.equal(ratios.length, 4 * 2 * 2, 'one round-by-round ratio per op, level and peer');
    for (const l of ratios) {
      const [low, high] = l.split('|')[5].trim().split('–').map(Number);
      const median = Number(l.split('|')[4]);
      assert.ok(low <= median && median <= high, `median inside its interval: ${l}`);
      assert.equal(Number(l.split('|')[6]), 2 * 6, 'rounds = repeats × slices');
    }
    assert.match(stdout, /^Round by round, zkwarden's throughput was above every peer's .* in \d+ rows/m);
  });

  it('a bad argument is one line naming it, exit code 2, and starts no ensemble', async () => {
    for (const [args, expect] of [
      [['--ops', '0'], /--ops: expected one positive integer/],
      [['--clients', 'zkwarden,curator'], /--clients: unknown client curator/],
      [['--repeat', 'many'], /--repeat: expected an integer from 1 to 1000, got many/],
    ] as const) {
      const { code, stderr } = await runBench([...args], 60_000);
      assert.equal(code, 2, stderr);
      assert.match(stderr, expect);
      assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
      assert.doesNotMatch(stderr, /starting a 3-server ensemble/);
    }
  });
});
