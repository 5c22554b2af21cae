#!/usr/bin/env node
// The whole check: type check, lint, then every test file against real ZooKeeper servers.
// Test files run two at a time: each starts its own ensemble on its own loopback addresses,
// and the machine has two cores.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));

function step(name, cmd, cmdArgs) {
  process.stderr.write(`\n== ${name}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`\n${name} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(r.status ?? 1);
  }
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out.sort();
}

if (!args.includes('--no-static')) {
  step('type check', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  step('lint', bin('eslint'), ['.']);
  // The formatter's check (.prettierrc.json; prose and data are in .prettierignore).
  step('format check', bin('prettier'), ['--check', '.']);
}
const files = findTests(join(root, 'test')).filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
// A test that never ends fails after 10 minutes instead of hanging the run, and a file whose
// tests are done exits even if a leaked handle (a child's pipe, a timer) would keep it alive.
step(`tests (${files.length} files)`, process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-concurrency=2',
  '--test-timeout=600000',
  '--test-force-exit',
  '--test-reporter=spec',
  ...files,
]);
