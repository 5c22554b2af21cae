#!/usr/bin/env node
// Builds the faultfs helper (faultfs.c on Debian's libfuse3) into build/faultfs when the binary
// is missing or older than its source. Plain Node, no dependencies: scripts/setup.mjs imports it
// and src/lab/faultfs.ts runs it when a developer's tree has no fresh binary.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const FAULTFS_SOURCE = join(here, 'faultfs.c');
export const FAULTFS_BINARY = join(here, 'build', 'faultfs');

/** True when build/faultfs exists and is at least as new as faultfs.c and this script. */
export function faultfsFresh() {
  if (!existsSync(FAULTFS_BINARY)) return false;
  const built = statSync(FAULTFS_BINARY).mtimeMs;
  return [FAULTFS_SOURCE, fileURLToPath(import.meta.url)].every((f) => statSync(f).mtimeMs <= built);
}

/** Builds when needed; returns the binary's path or throws an Error saying what is missing. */
export function buildFaultfs({ log = () => {} } = {}) {
  if (faultfsFresh()) return FAULTFS_BINARY;
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'fuse3'], { encoding: 'utf8' });
  if (pc.error || pc.status !== 0) {
    throw new Error(
      `faultfs: pkg-config found no fuse3 (${pc.error ? pc.error.message : pc.stderr.trim()}); install: apt-get install -y libfuse3-dev pkg-config gcc`,
    );
  }
  const flags = pc.stdout.trim().split(/\s+/).filter(Boolean);
  mkdirSync(dirname(FAULTFS_BINARY), { recursive: true });
  // Built beside and renamed into place, so a concurrent reader never runs a half-written binary.
  const tmp = `${FAULTFS_BINARY}.${process.pid}.tmp`;
  log(`building ${FAULTFS_BINARY}`);
  const cc = spawnSync('gcc', ['-O2', '-g', '-std=gnu11', '-Wall', '-Wextra', '-Wno-format-truncation', FAULTFS_SOURCE, '-o', tmp, ...flags, '-lpthread'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (cc.error || cc.status !== 0) {
    throw new Error(`faultfs: gcc failed (${cc.error ? cc.error.message : `exit ${cc.status}`}):\n${(cc.stderr ?? '').trim()}`);
  }
  renameSync(tmp, FAULTFS_BINARY);
  return FAULTFS_BINARY;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    buildFaultfs({ log: (m) => process.stderr.write(`[faultfs] ${m}\n`) });
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(3);
  }
}
