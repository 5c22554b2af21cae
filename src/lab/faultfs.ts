/**
 * faultfs: a lab node's disk that can really hang. A FUSE pass-through over a backing directory
 * (the C helper in native/faultfs, on libfuse's low-level API), whose requests can be stalled
 * (never answered until released: the caller sits in S, and after kill -9 in D, unkillable),
 * delayed or failed with an errno, per operation class and path glob, switched at run time.
 *
 * The daemon runs in this process's (the root) mount namespace, works on the backing directory
 * only, and is controlled through a Unix socket under /run/zkwarden/faultfs, never on the mount.
 * Nothing here ever stats or opens a path on the mount: on a stalled mount that would hang this
 * process. Mounts are found through /proc/self/mountinfo, connections through fusectl.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { constants as osConstants } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export type OpClass = 'read' | 'write' | 'fsync' | 'metadata';
export type FaultMode = 'healthy' | 'stall' | 'delay' | 'error';

/**
 * One rule. Rules are checked in order and the first whose `ops` and `path` both match a
 * request decides its fate; a request no rule matches is healthy.
 * - ops: which operation classes (default: all). read = read(2); write = write, truncate,
 *   fallocate; fsync = fsync, fdatasync, fsync of a directory; metadata = lookup, stat, open,
 *   create, mkdir, unlink, rmdir, rename, link, symlink, readlink, readdir, chmod/chown/utimens,
 *   statfs. close() and the kernel's bookkeeping (forget, release) are never faulted.
 * - path: a glob relative to the mount root; `*` and `?` stay within one name, `**` crosses
 *   directories, `[...]` is a class. It matches a path or any directory above it, so `zk1`
 *   covers everything under zk1/. Rename and link match on either name. Default: every path.
 */
export interface FaultRule {
  mode: FaultMode;
  ops?: OpClass[];
  path?: string;
  /** delay: milliseconds each matching request waits before it is performed. */
  delayMs?: number;
  /** error: the errno name every matching request fails with (EIO, ENOSPC, EROFS, ...). */
  errno?: 'EIO' | 'ENOSPC' | string;
}

export interface FaultFsStatus {
  rules: FaultRule[];
  /** Requests taken but not yet answered (stalled + delayed + released and still running). */
  pending: number;
  stalled: number;
  delayed: number;
  /** Requests seen per op class, and how many were stalled, delayed, errored, released. */
  counts: Record<string, number>;
}

export interface FaultFsMountOptions {
  backing: string;
  mountpoint: string;
  /** Default: /run/zkwarden/faultfs/<hash of the mountpoint>.sock */
  controlSocket?: string;
  /** The daemon's stdout and stderr. Default: beside the control socket, .log. */
  logFile?: string;
  /** The daemon outlives this process (a CLI that leaves a lab running); otherwise it is released at exit. */
  detached?: boolean;
  /** How long to wait for the daemon to mount. Default 10 s. */
  timeoutMs?: number;
  /** The daemon's nice value (default -10: a disk does not wait for a CPU; see docs/faultfs.md). */
  nice?: number;
  /** The daemon's FUSE loop threads (default 16; stalled requests hold none). */
  threads?: number;
}

/** A faultfs mount found in /proc/self/mountinfo. */
export interface FaultFsMountInfo {
  mountpoint: string;
  /** The FUSE connection number: /sys/fs/fuse/connections/N. */
  connection: number;
  /** The daemon's pid as it recorded it in the mount's source (faultfs.PID). */
  daemonPid: number;
}

/** The daemon or the kernel did not do what was expected; names the mountpoint or socket. */
export class FaultFsError extends Error {
  readonly mountpoint: string | undefined;
  constructor(message: string, mountpoint?: string) {
    super(message);
    this.name = 'FaultFsError';
    this.mountpoint = mountpoint;
  }
}

/** Bad input: names the field (`rules[1].errno`, `mountpoint`) and what was expected. */
export class FaultFsInputError extends FaultFsError {
  readonly field: string;
  constructor(field: string, message: string, mountpoint?: string) {
    super(`${field}: ${message}`, mountpoint);
    this.name = 'FaultFsInputError';
    this.field = field;
  }
}

export const FAULTFS_RUN_DIR = '/run/zkwarden/faultfs';
const FUSECTL = '/sys/fs/fuse/connections';
const OP_BITS: Record<OpClass, number> = { read: 1, write: 2, fsync: 4, metadata: 8 };
const ALL_OPS: OpClass[] = ['read', 'write', 'fsync', 'metadata'];
const MODES: FaultMode[] = ['healthy', 'stall', 'delay', 'error'];
const MAX_DELAY_MS = 86_400_000;
const REQUEST_TIMEOUT_MS = 5000;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'native', 'faultfs', 'faultfs.c'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new FaultFsError('faultfs: cannot find native/faultfs/faultfs.c above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The helper binary, built first when missing or older than its source (the set-up step normally did it). */
export function faultFsHelper(): string {
  const root = packageRoot();
  const bin = join(root, 'native', 'faultfs', 'build', 'faultfs');
  const src = join(root, 'native', 'faultfs', 'faultfs.c');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  const r = spawnSync(process.execPath, [join(root, 'native', 'faultfs', 'build.mjs')], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0 || !existsSync(bin)) {
    throw new FaultFsError(`faultfs helper ${bin} could not be built: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}; run: npm run setup`);
  }
  return bin;
}

// ---------------------------------------------------------------- rules

const errnoByName = osConstants.errno as Record<string, number>;
const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(errnoByName)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/** Why a glob is not usable, or null. Relative to the mount root, no `.`/`..` names. */
function globProblem(glob: string): string | null {
  if (glob.startsWith('/')) return 'expected a glob relative to the mount root, not an absolute path';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(glob)) return 'expected no control characters';
  const parts = glob.split('/');
  if (parts.some((p) => p === '')) return 'expected no empty path segment (//)';
  if (parts.some((p) => p === '.' || p === '..')) return 'expected no . or .. segment';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '\\') {
      if (i + 1 >= glob.length) return 'ends with a lone backslash';
      i++;
    } else if (ch === '[') {
      let j = i + 1;
      if (glob[j] === '!' || glob[j] === '^') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) return `has an unclosed [ at offset ${i}`;
      i = j;
    }
  }
  return null;
}

/** Checks and normalises rules; throws FaultFsInputError naming the field. Exported for the CLI. */
export function normalizeRules(input: FaultRule[] | FaultRule, mountpoint?: string): FaultRule[] {
  const list = Array.isArray(input) ? input : [input];
  return list.map((raw, i) => {
    const at = Array.isArray(input) ? `rules[${i}]` : 'rule';
    if (typeof raw !== 'object' || raw === null) throw new FaultFsInputError(at, `expected a rule object, got ${JSON.stringify(raw)}`, mountpoint);
    for (const key of Object.keys(raw)) {
      if (!['mode', 'ops', 'path', 'delayMs', 'errno'].includes(key)) {
        throw new FaultFsInputError(`${at}.${key}`, 'unknown field (expected mode, ops, path, delayMs, errno)', mountpoint);
      }
    }
    const mode = raw.mode;
    if (!MODES.includes(mode)) throw new FaultFsInputError(`${at}.mode`, `expected one of ${MODES.join(', ')}, got ${JSON.stringify(mode)}`, mountpoint);
    const rule: FaultRule = { mode };
    if (raw.ops !== undefined) {
      if (!Array.isArray(raw.ops) || raw.ops.length === 0) {
        throw new FaultFsInputError(`${at}.ops`, `expected a non-empty list of ${ALL_OPS.join(', ')}, got ${JSON.stringify(raw.ops)}`, mountpoint);
      }
      raw.ops.forEach((op, j) => {
        if (!ALL_OPS.includes(op))
          throw new FaultFsInputError(`${at}.ops[${j}]`, `expected one of ${ALL_OPS.join(', ')}, got ${JSON.stringify(op)}`, mountpoint);
      });
      rule.ops = ALL_OPS.filter((op) => raw.ops!.includes(op));
    }
    if (raw.path !== undefined) {
      if (typeof raw.path !== 'string') throw new FaultFsInputError(`${at}.path`, `expected a glob string, got ${JSON.stringify(raw.path)}`, mountpoint);
      const path = raw.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
      if (path !== '' && path !== '.') {
        const problem = globProblem(path);
        if (problem) throw new FaultFsInputError(`${at}.path`, `${JSON.stringify(raw.path)}: ${problem}`, mountpoint);
        rule.path = path;
      }
    }
    if (mode === 'delay') {
      if (!Number.isInteger(raw.delayMs) || raw.delayMs! <= 0 || raw.delayMs! > MAX_DELAY_MS) {
        throw new FaultFsInputError(
          `${at}.delayMs`,
          `expected an integer number of ms from 1 to ${MAX_DELAY_MS}, got ${JSON.stringify(raw.delayMs)}`,
          mountpoint,
        );
      }
      rule.delayMs = raw.delayMs;
    } else if (raw.delayMs !== undefined) {
      throw new FaultFsInputError(`${at}.delayMs`, `only a delay rule takes delayMs (mode is ${mode})`, mountpoint);
    }
    if (mode === 'error') {
      rule.errno = errnoName(raw.errno, `${at}.errno`, mountpoint);
    } else if (raw.errno !== undefined) {
      throw new FaultFsInputError(`${at}.errno`, `only an error rule takes errno (mode is ${mode})`, mountpoint);
    }
    return rule;
  });
}

function errnoName(value: unknown, field: string, mountpoint?: string): string {
  if (typeof value === 'string' && errnoByName[value.toUpperCase()] !== undefined) return value.toUpperCase();
  throw new FaultFsInputError(field, `expected an errno name such as EIO or ENOSPC, got ${JSON.stringify(value)}`, mountpoint);
}

function ruleLine(r: FaultRule): string {
  const ops = (r.ops ?? ALL_OPS).reduce((m, op) => m | OP_BITS[op], 0);
  const err = r.mode === 'error' ? errnoByName[r.errno!] : 0;
  return `${r.mode} ${ops} ${r.delayMs ?? 0} ${err} ${r.path ?? ''}`;
}

interface WireRule {
  mode: FaultMode;
  ops: number;
  delayMs: number;
  errno: number;
  path: string;
}

function fromWire(w: WireRule): FaultRule {
  const r: FaultRule = { mode: w.mode };
  if (w.ops !== 15) r.ops = ALL_OPS.filter((op) => w.ops & OP_BITS[op]);
  if (w.path) r.path = w.path;
  if (w.mode === 'delay') r.delayMs = w.delayMs;
  if (w.mode === 'error') r.errno = errnoNames.get(w.errno) ?? String(w.errno);
  return r;
}

// ---------------------------------------------------------------- kernel facts

/** /proc/sys/fs/fuse/{default,max}_request_timeout in seconds (0 where the kernel has none: stalls are indefinite). */
export function fuseRequestTimeouts(): { default: number; max: number } {
  const read = (name: string): number => {
    try {
      return Number(readFileSync(`/proc/sys/fs/fuse/${name}`, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
  return { default: read('default_request_timeout'), max: read('max_request_timeout') };
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

interface MountEntry {
  mountpoint: string;
  dev: number;
  fstype: string;
  source: string;
}

function mountEntries(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash < 0) continue;
    const [major, minor] = f[2]!.split(':').map(Number);
    // The kernel's dev_t, which names the connection under /sys/fs/fuse/connections.
    out.push({ mountpoint: unescapeMountinfo(f[4]!), dev: major! * 2 ** 20 + minor!, fstype: f[dash + 1]!, source: unescapeMountinfo(f[dash + 2] ?? '') });
  }
  return out;
}

/** Every faultfs mount of this mount namespace (for clean-up of mounts nobody remembers). */
export function faultFsMounts(): FaultFsMountInfo[] {
  return mountEntries()
    .filter((m) => m.fstype === 'fuse.faultfs')
    .map((m) => ({ mountpoint: m.mountpoint, connection: m.dev, daemonPid: Number(/^faultfs\.(\d+)$/.exec(m.source)?.[1] ?? 0) }));
}

/**
 * A lexically absolute mountpoint whose parent is resolved through symlinks. The mountpoint
 * itself is never resolved: realpath would stat it, and a stalled mount does not answer.
 */
function mountpointPath(p: string): string {
  const abs = resolve(p);
  try {
    return join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return null;
  }
}

/** The faultfs daemons serving mountpoint (by their command line, so a reused pid is never taken for one). */
function daemonsOf(mountpoint: string): number[] {
  return daemonArgvs(mountpoint).map(([pid]) => pid);
}

function daemonArgvs(mountpoint: string): [number, string[]][] {
  const found: [number, string[]][] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      // comm first: it needs no lock of the target, while reading the cmdline of a process
      // stuck in a page fault on a stalled mount would wait for its memory map lock.
      if (readFileSync(`/proc/${name}/comm`, 'utf8') !== 'faultfs\n') continue;
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith(`${sep}faultfs`)) continue;
    const i = argv.indexOf('--mountpoint');
    if (i >= 0 && argv[i + 1] === mountpoint) found.push([Number(name), argv]);
  }
  return found;
}

function alive(pid: number): boolean {
  const s = processState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}

function ensureFusectl(): void {
  if (mountEntries().some((m) => m.fstype === 'fusectl')) return;
  const r = spawnSync('mount', ['-t', 'fusectl', 'none', FUSECTL], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0 && !mountEntries().some((m) => m.fstype === 'fusectl')) {
    throw new FaultFsError(`cannot mount the FUSE control file system at ${FUSECTL}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
}

/** Fails every request pending on connection N (their callers are freed, with ECONNABORTED). */
function abortConnection(connection: number, mountpoint: string): void {
  ensureFusectl();
  const file = join(FUSECTL, String(connection), 'abort');
  if (!existsSync(file)) return; // the connection is already gone
  try {
    writeFileSync(file, '1');
  } catch (e) {
    throw new FaultFsError(`${mountpoint}: could not abort FUSE connection ${connection} (${file}): ${(e as Error).message}`, mountpoint);
  }
}

/** umount2(MNT_DETACH) without path canonicalisation (the helper's --detach), or umount -l. */
function detach(mountpoint: string): void {
  // Whatever binary is there (clean-up, exit hooks included, must never wait for a build).
  const built = join(packageRoot(), 'native', 'faultfs', 'build', 'faultfs');
  const helper = existsSync(built) ? built : null;
  const r = helper
    ? spawnSync(helper, ['--detach', mountpoint], { encoding: 'utf8', timeout: 5000 })
    : spawnSync('umount', ['-l', '--no-canonicalize', mountpoint], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0 && mountEntries().some((m) => m.mountpoint === mountpoint && m.fstype === 'fuse.faultfs')) {
    throw new FaultFsError(`${mountpoint}: lazy unmount failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`, mountpoint);
  }
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * The synchronous steps of releasing a mount (exit hooks can only run these): abort its FUSE
 * connection so every stalled caller is freed and nothing can hang, lazily unmount it, kill its
 * daemon. Returns the daemons it killed.
 */
function releaseNow(mountpoint: string, known?: { connection: number; daemonPid: number }): number[] {
  const entries = faultFsMounts().filter((m) => m.mountpoint === mountpoint);
  const found = daemonArgvs(mountpoint);
  const daemons = new Set(found.map(([pid]) => pid));
  if (known && alive(known.daemonPid) && daemonsOf(mountpoint).includes(known.daemonPid)) {
    // Our own daemon still holds its connection, so the number is still ours (after a lazy
    // unmount the mount is gone from mountinfo, but stalled callers may still wait on it).
    abortConnection(known.connection, mountpoint);
  }
  for (const e of entries) abortConnection(e.connection, mountpoint);
  for (let i = 0; i < entries.length; i++) detach(mountpoint);
  for (const pid of daemons) kill(pid, 'SIGKILL');
  // A killed daemon cannot remove its control socket; its log stays for the post-mortem.
  for (const [, argv] of found) {
    const sock = argv[argv.indexOf('--socket') + 1];
    if (sock && argv.includes('--socket')) {
      try {
        unlinkSync(sock);
      } catch {
        // already gone
      }
    }
  }
  return [...daemons];
}

async function waitFor(what: string, fn: () => boolean, timeoutMs: number, mountpoint?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new FaultFsError(`${what}: not done after ${timeoutMs} ms`, mountpoint);
    await sleep(10);
  }
}

/**
 * Clean-up of a faultfs mount whose daemon died, hangs or belongs to nobody: aborts the FUSE
 * connection (fusectl is mounted first when needed; the connection number comes from
 * /proc/self/mountinfo, never from stat, which would hang), lazily unmounts every faultfs mount
 * at that path, kills the daemon, and waits (bounded) until no mount and no daemon is left.
 * A no-op when there is nothing. Processes that sat in D on the mount are freed.
 */
export async function releaseMount(mountpoint: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const mp = mountpointPath(mountpoint);
  await releaseResolved(mp, undefined, opts.timeoutMs ?? 10_000);
}

async function releaseResolved(mp: string, known: { connection: number; daemonPid: number } | undefined, timeoutMs: number): Promise<void> {
  const daemons = releaseNow(mp, known);
  if (known) daemons.push(known.daemonPid);
  await waitFor(`${mp}: faultfs mount removed`, () => !faultFsMounts().some((m) => m.mountpoint === mp), timeoutMs, mp);
  await waitFor(
    `${mp}: faultfs daemon(s) ${daemons.join(', ')} exited`,
    () => daemons.every((pid) => !alive(pid) || !daemonsOf(mp).includes(pid)),
    timeoutMs,
    mp,
  );
}

// ---------------------------------------------------------------- the mount

const live = new Set<FaultFs>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Last resort: a test process that dies must not leave a hung disk behind.
  process.on('exit', () => {
    for (const fs of live) fs.releaseSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const fs of live) fs.releaseSync();
      process.kill(process.pid, sig);
    });
  }
}

function defaultSocket(mountpoint: string): string {
  return join(FAULTFS_RUN_DIR, `${createHash('sha256').update(mountpoint).digest('hex').slice(0, 16)}.sock`);
}

function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class FaultFs {
  readonly mountpoint: string;
  readonly backing: string;
  readonly controlSocket: string;
  readonly logFile: string;
  readonly daemonPid: number;
  readonly fuseConnection: number;
  private readonly child: ChildProcess | null;
  private closed = false;

  /** The log is ours to remove after a clean unmount (kept after a failure, for the post-mortem). */
  private readonly ownsLog: boolean = false;

  private constructor(o: {
    mountpoint: string;
    backing: string;
    controlSocket: string;
    logFile: string;
    daemonPid: number;
    fuseConnection: number;
    child: ChildProcess | null;
    ownsLog?: boolean;
  }) {
    this.ownsLog = o.ownsLog ?? false;
    this.mountpoint = o.mountpoint;
    this.backing = o.backing;
    this.controlSocket = o.controlSocket;
    this.logFile = o.logFile;
    this.daemonPid = o.daemonPid;
    this.fuseConnection = o.fuseConnection;
    this.child = o.child;
  }

  /** Starts a daemon and mounts backing at mountpoint (created when missing); resolves once the kernel lists the mount. */
  static async mount(opts: FaultFsMountOptions): Promise<FaultFs> {
    if (typeof opts?.backing !== 'string' || opts.backing === '') throw new FaultFsInputError('backing', 'expected a directory path');
    if (typeof opts.mountpoint !== 'string' || opts.mountpoint === '') throw new FaultFsInputError('mountpoint', 'expected a directory path');
    const mountpoint = mountpointPath(opts.mountpoint);
    if (faultFsMounts().some((m) => m.mountpoint === mountpoint) || mountEntries().some((m) => m.mountpoint === mountpoint)) {
      throw new FaultFsInputError('mountpoint', `${mountpoint} is already a mount point (release it first: releaseMount)`, mountpoint);
    }
    const nice = opts.nice ?? -10;
    if (!Number.isInteger(nice) || nice < -20 || nice > 19)
      throw new FaultFsInputError('nice', `expected an integer from -20 to 19, got ${JSON.stringify(opts.nice)}`, mountpoint);
    const threads = opts.threads ?? 16;
    if (!Number.isInteger(threads) || threads < 2 || threads > 256)
      throw new FaultFsInputError('threads', `expected an integer from 2 to 256, got ${JSON.stringify(opts.threads)}`, mountpoint);
    let backing: string;
    try {
      backing = realpathSync(opts.backing);
      if (!statSync(backing).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new FaultFsInputError('backing', `${opts.backing}: expected an existing directory (${(e as Error).message})`, mountpoint);
    }
    if (isInside(backing, mountpoint) || isInside(mountpoint, backing)) {
      throw new FaultFsInputError('mountpoint', `${mountpoint} and the backing directory ${backing} must not contain each other`, mountpoint);
    }
    const controlSocket = opts.controlSocket ? resolve(opts.controlSocket) : defaultSocket(mountpoint);
    if (isInside(controlSocket, mountpoint)) throw new FaultFsInputError('controlSocket', `${controlSocket} must not be on the mount`, mountpoint);
    if (Buffer.byteLength(controlSocket) > 107)
      throw new FaultFsInputError('controlSocket', `${controlSocket} is longer than a Unix socket path may be (107 bytes)`, mountpoint);
    const logFile = opts.logFile ? resolve(opts.logFile) : controlSocket.replace(/\.sock$/, '') + '.log';
    if (isInside(logFile, mountpoint)) throw new FaultFsInputError('logFile', `${logFile} must not be on the mount`, mountpoint);

    const timeouts = fuseRequestTimeouts();
    if (timeouts.default !== 0 || timeouts.max !== 0) {
      process.emitWarning(
        `FUSE request timeouts are not 0 (default_request_timeout ${timeouts.default} s, max_request_timeout ${timeouts.max} s): the kernel fails a stalled request after that, so a faultfs stall is not indefinite`,
        { code: 'ZKWARDEN_FUSE_TIMEOUT' },
      );
    }
    if (!existsSync('/dev/fuse')) throw new FaultFsError('/dev/fuse is missing: FUSE is not available on this machine', mountpoint);
    const helper = faultFsHelper();
    mkdirSync(mountpoint, { recursive: true });
    mkdirSync(dirname(controlSocket), { recursive: true });
    mkdirSync(dirname(logFile), { recursive: true });
    const out = openSync(logFile, 'a');
    const args = [
      '--backing',
      backing,
      '--mountpoint',
      mountpoint,
      '--socket',
      controlSocket,
      '--ready-fd',
      '3',
      '--nice',
      String(nice),
      '--threads',
      String(threads),
    ];
    const child = spawn(helper, args, {
      stdio: ['ignore', out, out, 'pipe'],
      detached: true,
    });
    closeSync(out);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const ready = await new Promise<number | string>((resolveReady) => {
      let text = '';
      const timer = setTimeout(() => resolveReady(`no "ready" from the daemon within ${timeoutMs} ms`), timeoutMs);
      const pipe = child.stdio[3] as NodeJS.ReadableStream | null;
      pipe?.on('data', (d: Buffer) => {
        text += d.toString();
        const m = /^ready (\d+)\n/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolveReady(Number(m[1]));
        }
      });
      pipe?.on('error', () => undefined);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolveReady(`the daemon exited (${signal ?? `code ${code}`}) before mounting`);
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        resolveReady(`could not start ${helper}: ${e.message}`);
      });
    });
    (child.stdio[3] as (NodeJS.ReadableStream & { destroy(): void }) | null)?.destroy();
    if (typeof ready === 'string') {
      kill(child.pid ?? 0, 'SIGKILL');
      await releaseMount(mountpoint).catch(() => undefined);
      const log = logTail(logFile);
      throw new FaultFsError(`faultfs mount of ${backing} at ${mountpoint} failed: ${ready}${log ? `\n--- ${logFile} ---\n${log}` : ''}`, mountpoint);
    }
    const entry = faultFsMounts().find((m) => m.mountpoint === mountpoint && m.daemonPid === ready);
    if (!entry) {
      await releaseMount(mountpoint).catch(() => undefined);
      throw new FaultFsError(`${mountpoint}: the daemon (pid ${ready}) said ready but /proc/self/mountinfo has no faultfs mount there`, mountpoint);
    }
    const fs = new FaultFs({
      mountpoint,
      backing,
      controlSocket,
      logFile,
      daemonPid: ready,
      fuseConnection: entry.connection,
      child,
      ownsLog: opts.logFile === undefined,
    });
    if (opts.detached) child.unref();
    else {
      // The daemon must not keep a finished process alive; the exit hook releases it.
      child.unref();
      installExitHooks();
      live.add(fs);
    }
    return fs;
  }

  /** Where a mount's daemon logs when no logFile was given (beside its default control socket). */
  static defaultLogFile(mountpoint: string): string {
    return defaultSocket(mountpointPath(mountpoint)).replace(/\.sock$/, '') + '.log';
  }

  /** A handle on a mount made by another process (the CLI): found through mountinfo and the daemon's command line. */
  static attach(mountpoint: string): FaultFs {
    const mp = mountpointPath(mountpoint);
    const entry = faultFsMounts().find((m) => m.mountpoint === mp);
    if (!entry) throw new FaultFsError(`${mp}: no faultfs mounted there (expected a fuse.faultfs entry in /proc/self/mountinfo)`, mp);
    let argv: string[] = [];
    try {
      argv = readFileSync(`/proc/${entry.daemonPid}/cmdline`, 'utf8').split('\0');
    } catch {
      throw new FaultFsError(`${mp}: its faultfs daemon (pid ${entry.daemonPid}) is gone; clean up with releaseMount`, mp);
    }
    const arg = (name: string): string => argv[argv.indexOf(name) + 1] ?? '';
    const controlSocket = arg('--socket');
    return new FaultFs({
      mountpoint: mp,
      backing: arg('--backing'),
      controlSocket,
      logFile: controlSocket.replace(/\.sock$/, '') + '.log',
      daemonPid: entry.daemonPid,
      fuseConnection: entry.connection,
      child: null,
    });
  }

  /** One command on the control socket; every wait is bounded. */
  private request(line: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<string> {
    return new Promise((resolveReply, reject) => {
      const fail = (why: string): void => {
        sock.destroy();
        reject(new FaultFsError(`faultfs at ${this.mountpoint}: control socket ${this.controlSocket} (daemon pid ${this.daemonPid}): ${why}`, this.mountpoint));
      };
      const sock = createConnection(this.controlSocket);
      let text = '';
      const timer = setTimeout(() => fail(`no answer to "${line.split('\t')[0]}" within ${timeoutMs} ms`), timeoutMs);
      sock.on('error', (e) => {
        clearTimeout(timer);
        fail(e.message);
      });
      sock.on('data', (d) => {
        text += d.toString();
        const nl = text.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        sock.end();
        const reply = text.slice(0, nl);
        if (reply.startsWith('ok')) resolveReply(reply.slice(3));
        else fail(`daemon refused: ${reply.replace(/^err /, '')}`);
      });
      sock.write(line + '\n');
    });
  }

  /** Replaces the active rules; new requests follow them at once, stalled ones stay until release(). */
  async set(rules: FaultRule[] | FaultRule): Promise<void> {
    const list = normalizeRules(rules, this.mountpoint);
    await this.request(['set', ...list.map(ruleLine)].join('\t'));
  }

  /**
   * Answers every pending request, stalled or waiting out a delay: performs it (the disk came
   * back), or with `errno` fails it. Returns how many. Rules stay as they are: set healthy first
   * for the disk to stay well.
   */
  async release(opts: { errno?: string } = {}): Promise<number> {
    const err = opts.errno === undefined ? '' : ` ${errnoByName[errnoName(opts.errno, 'errno', this.mountpoint)]}`;
    return Number(await this.request(`release${err}`));
  }

  async status(opts: { timeoutMs?: number } = {}): Promise<FaultFsStatus> {
    const raw = JSON.parse(await this.request('status', opts.timeoutMs)) as Omit<FaultFsStatus, 'rules'> & { rules: WireRule[] };
    return { ...raw, rules: raw.rules.map(fromWire) };
  }

  /**
   * Unmounts; always works, even while requests are stalled or the daemon hangs. A healthy
   * mount with nothing pending is unmounted by its daemon (lazily: open files keep working until
   * closed); otherwise, or when that does not finish in time, the connection is aborted (stalled
   * callers fail with ECONNABORTED and are freed), the mount detached and the daemon killed.
   */
  async unmount(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const known = { connection: this.fuseConnection, daemonPid: this.daemonPid };
    let graceful = false;
    try {
      // A daemon that does not answer quickly is hung: no reason to wait the full request timeout.
      const st = await this.status({ timeoutMs: 1500 });
      if (st.pending === 0) {
        await this.request('unmount');
        await waitFor(`${this.mountpoint}: daemon exit after unmount`, () => !alive(this.daemonPid), Math.min(timeoutMs, 5000), this.mountpoint);
        graceful = true;
      }
    } catch {
      graceful = false;
    }
    if (!graceful || faultFsMounts().some((m) => m.mountpoint === this.mountpoint)) {
      await releaseResolved(this.mountpoint, known, timeoutMs);
    }
    this.removeSocket();
    if (this.ownsLog) {
      try {
        unlinkSync(this.logFile);
      } catch {
        // already gone
      }
    }
  }

  /** The exit hook's release: abort, detach, kill, with no waiting. */
  releaseSync(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    try {
      releaseNow(this.mountpoint, { connection: this.fuseConnection, daemonPid: this.daemonPid });
    } catch {
      // an exit hook has no one to report to
    }
    kill(this.daemonPid, 'SIGKILL');
    this.removeSocket();
  }

  private removeSocket(): void {
    if (this.child === null) return;
    try {
      unlinkSync(this.controlSocket);
    } catch {
      // the daemon removed it
    }
  }
}
