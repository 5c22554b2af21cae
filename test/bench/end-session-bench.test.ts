// The end-session benchmark end to end, at two rounds: both ways run in every round, the table
// accounts for every round, endSession leaves no session alive, --no-write leaves the docs alone,
// and bad arguments are one-line errors with exit 2.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, runBench as run } from './run-bench.ts';

const runBench = (args: string[], timeoutMs: number): ReturnType<typeof run> => run('bench/end-session/run.ts', args, timeoutMs);

describe('bench/end-session', () => {
  it('runs both ways every round and accounts for every round, without touching the docs', async () => {
    const docs = join(root, 'docs', 'benchmarks.md');
    const before = readFileSync(docs, 'utf8');
    const { code, stdout, stderr } = await runBench(['--rounds', '2', '--load', '0', '--no-write'], 120_000);
    assert.equal(code, 0, stderr);
    assert.equal(readFileSync(docs, 'utf8'), before, '--no-write leaves docs/benchmarks.md as it was');
    for (const way of ['attach+close', 'endSession']) {
      const row = stdout.split('\n').find((l) => l.startsWith(`| ${way} |`));
      assert.ok(row, `a row for ${way}`);
      const cells = row
        .split('|')
        .slice(2, 7)
        .map((c) => Number.parseInt(c.trim(), 10));
      assert.equal(cells[0], 2, `${way}: two rounds`);
      assert.equal(cells[1]! + cells[2]! + cells[3]! + cells[4]!, 2, `${way}: every round has one outcome`);
      if (way === 'endSession') assert.equal(cells[1], 0, 'endSession left no session alive');
    }
  });

  it('rejects bad arguments with one line and exit 2', async () => {
    for (const args of [['--rounds', 'x'], ['--rounds', '0'], ['--load', '-1'], ['--bogus']]) {
      const { code, stdout, stderr } = await runBench(args, 30_000);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.equal(stdout, '');
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, /^bench:end-session: /);
    }
  });
});
