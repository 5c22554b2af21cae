#!/usr/bin/env node
// Idempotent set-up for a fresh machine: Debian packages first (what the tests and the lab run
// against), then npm packages. Plain Node with no dependencies, because it runs before
// node_modules exists. Nothing is reinstalled when present.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFaultfs } from '../native/faultfs/build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function onPath(cmd) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// Why each package: zookeeper = the real servers every test runs; fuse3 = the lab's hung disk;
// iptables = the lab's partitions; iproute2 = the lab's namespaces, veths and bridge (ip, ss);
// chromium = the HTML report test; libfuse3-dev, pkg-config and gcc build the faultfs helper
// (native/faultfs); openssl = the secured lab's CA and certificates, made at start
// (src/lab/secure.ts). The bench group: lnav (the logs bench's peer), hyperfine (bench/cli-start's
// repeated runs) and a JDK for javac, which compiles the client bench's Java driver
// (bench/client/java; zookeeper brings only a JRE); any JDK already on PATH will do.
const groups = {
  base: ['zookeeper', 'fuse3', 'libfuse3-dev', 'pkg-config', 'gcc', 'iptables', 'iproute2', 'chromium', 'openssl'],
  bench: ['lnav', 'hyperfine', ...(onPath('javac') ? [] : ['default-jdk-headless'])],
};

const wanted = process.argv.slice(2).flatMap((g) => groups[g] ?? []);
const packages = [...new Set([...groups.base, ...wanted])];

function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function say(msg) {
  process.stderr.write(`[setup] ${msg}\n`);
}

const missing = packages.filter((p) => !installed(p));
if (missing.length > 0) {
  const line = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    say(`missing Debian packages: ${missing.join(', ')}`);
    say(`run as root:  apt-get update && ${line}`);
    process.exit(2);
  }
  say(`installing ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) {
    say('apt-get install failed; refreshing package lists and trying once more');
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  }
  if (r.status !== 0) {
    say(`could not install ${missing.join(', ')}; try: apt-get update && ${line}`);
    process.exit(2);
  }
}

// npm packages: only when node_modules is absent or older than the lock file.
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.package-lock.json');
const stale = !existsSync(stamp) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(stamp).mtimeMs + 1000);
// A symlinked node_modules is shared with another tree (a git worktree): npm ci would empty the
// link's target for everyone using it, so it is left to the tree that owns it.
const shared = existsSync(join(root, 'node_modules')) && lstatSync(join(root, 'node_modules')).isSymbolicLink();
if (stale && shared) say('node_modules is a symlink to a shared tree: not reinstalling npm packages here');
if (stale && !shared) {
  say('installing npm packages (npm ci)');
  execFileSync('npm', [existsSync(lock) ? 'ci' : 'install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}

// The lab's hung disk: the faultfs helper, rebuilt only when missing or older than its source.
try {
  buildFaultfs({ log: say });
} catch (e) {
  say(e.message);
  process.exit(3);
}
