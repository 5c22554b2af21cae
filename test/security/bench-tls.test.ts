// The TLS benchmark end to end at a tiny size: a row per op, level and transport, a ratio per op
// and level, three connect rows, the docs untouched under --no-write; bad arguments are one-line
// errors with exit 2.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, runBench } from '../bench/run-bench.ts';

const run = (args: string[], timeoutMs: number): ReturnType<typeof runBench> => runBench('bench/tls/run.ts', args, timeoutMs);

describe('bench/tls', () => {
  it('measures plain and TLS side by side, and the time to a session', async () => {
    const docs = join(root, 'docs', 'benchmarks.md');
    const before = readFileSync(docs, 'utf8');
    const { code, stdout, stderr } = await run(['--ops', '200', '--concurrency', '1,8', '--rounds', '2', '--connects', '2', '--no-write'], 180_000);
    assert.equal(code, 0, stderr);
    assert.equal(readFileSync(docs, 'utf8'), before, '--no-write leaves docs/benchmarks.md as it was');
    for (const op of ['getData', 'setData']) {
      for (const level of [1, 8]) {
        for (const t of ['plain', 'TLS']) {
          const row = stdout.split('\n').find((l) => l.startsWith(`| ${op} | ${level} | ${t} |`));
          assert.ok(row, `a row for ${op} at ${level} over ${t}`);
          assert.ok(Number(row.split('|')[4]!.replace(/,/g, '')) > 0, `${op}/${level}/${t}: a throughput`);
        }
        // A ratio can be far from 1 in a run this small (one reply the server holds for a ping interval).
        assert.match(stdout, new RegExp(`\\| ${op} \\| ${level} \\| \\d+\\.\\d{3} \\| \\d+\\.\\d{3}–\\d+\\.\\d{3} \\| 2 \\|`));
      }
    }
    for (const kind of ['plain', 'TLS (client certificate)', 'TLS + SASL DIGEST-MD5'])
      assert.match(stdout, new RegExp(`\\| ${kind.replace(/[()+]/g, '\\$&')} \\| [\\d.,]+ \\| [\\d.,]+ \\| 2 \\|`));
  });

  it('rejects bad arguments with one line and exit 2', async () => {
    for (const args of [['--ops', 'x'], ['--concurrency', '0'], ['--rounds', '-1'], ['--bogus']]) {
      const { code, stdout, stderr } = await run(args, 30_000);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.equal(stdout, '');
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, /^bench:tls: /);
    }
  });
});
