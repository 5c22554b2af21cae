/**
 * The host tools the lab drives (ip, iptables, nsenter, ss) and the errors it reports.
 *
 * Every command runs with a timeout: a wedged `ip` or `iptables` must end in a clear error, not
 * a hung lab. A capability the machine lacks (not root, no iptables, no cgroup v1 `cpu`) is a
 * `LabEnvironmentError` naming it, so the CLI exits 3 instead of running faults that do nothing.
 */
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export class LabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

/** The caller asked for something that does not exist or is not allowed (an unknown node, an address the lab did not create). */
export class LabUsageError extends LabError {
  constructor(message: string) {
    super(message);
    this.name = 'LabUsageError';
  }
}

/** The machine cannot run the lab: `capability` names what is missing (the CLI's exit 3). */
export class LabEnvironmentError extends LabError {
  readonly capability: string;
  constructor(capability: string, detail: string) {
    super(`the lab needs ${capability}: ${detail}`);
    this.name = 'LabEnvironmentError';
    this.capability = capability;
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
}

function describe(cmd: string, args: string[]): string {
  return [cmd, ...args].join(' ');
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
      if (e && typeof e.code === 'string') {
        reject(
          e.code === 'ENOENT'
            ? new LabEnvironmentError(cmd, `'${cmd}' is not installed (not found in PATH)`)
            : new LabError(`${describe(cmd, args)}: ${e.message}`),
        );
        return;
      }
      if (e?.killed) {
        reject(new LabError(`${describe(cmd, args)}: no answer after ${timeoutMs} ms`));
        return;
      }
      const code = e ? (typeof e.code === 'number' ? e.code : 1) : 0;
      const result = { code, stdout, stderr };
      if (code !== 0 && !opts.allowFailure) reject(new LabError(`${describe(cmd, args)} failed (exit ${code}): ${stderr.trim() || stdout.trim()}`));
      else resolve(result);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** The synchronous twin, for exit hooks where nothing can be awaited. Never throws. */
export function runSync(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, { input: opts.input, timeout: opts.timeoutMs ?? 10_000, killSignal: 'SIGKILL', encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? r.error.message : '') };
}

export function netnsPath(netns: string): string {
  return `/var/run/netns/${netns}`;
}

/** Runs a command inside a network namespace only (its mounts stay the root namespace's). */
export function inNetns(netns: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('nsenter', [`--net=${netnsPath(netns)}`, '--', cmd, ...args], opts);
}

export function inNetnsSync(netns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): RunResult {
  return runSync('nsenter', [`--net=${netnsPath(netns)}`, '--', cmd, ...args], opts);
}

function onPath(binary: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** The cgroup v1 `cpu` hierarchy; ZKWARDEN_CGROUP_CPU points elsewhere (tests use it to show the exit-3 path). */
export function cpuCgroupRoot(): string {
  return process.env.ZKWARDEN_CGROUP_CPU ?? '/sys/fs/cgroup/cpu';
}

const TOOLS: { binary: string; capability: string; pkg: string }[] = [
  { binary: 'ip', capability: 'network namespaces, veth pairs and bridges (ip)', pkg: 'iproute2' },
  { binary: 'ss', capability: 'socket listing inside namespaces (ss)', pkg: 'iproute2' },
  { binary: 'nsenter', capability: 'entering a network namespace (nsenter)', pkg: 'util-linux' },
  { binary: 'iptables', capability: 'iptables', pkg: 'iptables' },
  { binary: 'iptables-restore', capability: 'iptables', pkg: 'iptables' },
];

/**
 * What can be checked before creating anything: root, the tools, the cgroup v1 `cpu` controller.
 * Whether the kernel really does namespaces and iptables shows when the first node is made; that
 * failure is reported as a LabEnvironmentError too.
 */
export function checkCapabilities(): void {
  if (typeof process.geteuid === 'function' && process.geteuid() !== 0) {
    throw new LabEnvironmentError(
      'root (CAP_NET_ADMIN and CAP_SYS_ADMIN)',
      `running as uid ${process.geteuid()}; network namespaces, iptables and cgroups need root`,
    );
  }
  for (const t of TOOLS) {
    if (!onPath(t.binary)) throw new LabEnvironmentError(t.capability, `'${t.binary}' is not installed (apt-get install -y ${t.pkg})`);
  }
  const root = cpuCgroupRoot();
  if (!existsSync(join(root, 'cpu.cfs_quota_us')) || !existsSync(join(root, 'cgroup.procs'))) {
    throw new LabEnvironmentError('the cgroup v1 cpu controller', `${root}/cpu.cfs_quota_us not found (mount -t cgroup -o cpu cgroup ${root})`);
  }
}
