/**
 * The CLI's exit on an error no command expected: code 70 (not 1, which means "a finding"),
 * one line on stderr with a hint, and the stack only with --debug.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const crash = join(import.meta.dirname, 'fixtures', 'crash.mjs');

function cli(mode: 'parse' | 'stray', args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', crash, join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ZKWARDEN_CRASH: mode, ZKWARDEN_DEBUG: '' },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI internal errors', () => {
  it('exit 70 with one line and a hint to rerun with --debug', () => {
    const r = cli('parse', ['investigate', 'somewhere']);
    assert.equal(r.status, 70);
    assert.equal(r.stderr, 'zkwarden: internal error: TypeError: cannot read properties of undefined (rerun with --debug for the stack)\n');
  });

  it('print the stack with --debug, anywhere on the command line', () => {
    const r = cli('parse', ['investigate', 'somewhere', '--debug']);
    assert.equal(r.status, 70);
    const [first, ...rest] = r.stderr.trimEnd().split('\n');
    assert.equal(first, 'zkwarden: internal error: TypeError: cannot read properties of undefined');
    assert.ok(
      rest.some((l) => /^\s+at .*crash\.mjs/.test(l)),
      r.stderr,
    );
  });

  it('end a stray rejection after the command the same way', () => {
    const r = cli('stray', ['--help']);
    assert.match(r.stdout, /^Usage: zkwarden/);
    assert.equal(r.status, 70);
    assert.equal(r.stderr, 'zkwarden: internal error: RangeError: a stray rejection (rerun with --debug for the stack)\n');
  });
});
