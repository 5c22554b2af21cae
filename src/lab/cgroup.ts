/**
 * A node's CPU: a cgroup v1 `cpu` group (the controller these machines mount) that every process
 * of the node joins before it execs, so a CFS quota starves the whole node, as a host's CPU
 * starvation would. The lab's groups live under `<root>/zkwarden-<lab id>/`.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabEnvironmentError, LabUsageError, cpuCgroupRoot } from './host.ts';

export const DEFAULT_CFS_PERIOD_US = 100_000;

export interface CpuQuota {
  /** -1: no limit. */
  quotaUs: number;
  periodUs: number;
  /** The share of one core the group may use; null when unlimited. */
  fraction: number | null;
}

export interface CpuThrottling {
  periods: number;
  throttledPeriods: number;
  throttledMs: number;
}

export function labCgroupRoot(labId: string): string {
  return join(cpuCgroupRoot(), `zkwarden-${labId}`);
}

export class CpuCgroup {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** The group as /proc/PID/cgroup names it: its path inside the hierarchy ('/zkwarden-ID/node1'). */
  get hierarchyPath(): string {
    return this.path.slice(cpuCgroupRoot().length) || '/';
  }

  get procsFile(): string {
    return join(this.path, 'cgroup.procs');
  }

  create(): void {
    try {
      mkdirSync(this.path, { recursive: true });
    } catch (e) {
      throw new LabEnvironmentError('the cgroup v1 cpu controller', `cannot create ${this.path}: ${(e as Error).message}`);
    }
    if (!existsSync(join(this.path, 'cpu.cfs_quota_us'))) {
      throw new LabEnvironmentError(
        'the cgroup v1 cpu controller',
        `${this.path} has no cpu.cfs_quota_us: ${cpuCgroupRoot()} is not a cgroup v1 cpu hierarchy`,
      );
    }
  }

  /** Caps the group at `fraction` of one core (0.1 = 10 ms of CPU per 100 ms period; above 1 = several cores). */
  limit(fraction: number, periodUs = DEFAULT_CFS_PERIOD_US): CpuQuota {
    if (!(fraction > 0) || !Number.isFinite(fraction))
      throw new LabUsageError(`CPU share must be a positive number of cores (e.g. 0.1 for 10 %), got ${fraction}`);
    // The kernel refuses quotas below 1 ms.
    const quotaUs = Math.max(1000, Math.round(fraction * periodUs));
    writeFileSync(join(this.path, 'cpu.cfs_period_us'), `${periodUs}\n`);
    writeFileSync(join(this.path, 'cpu.cfs_quota_us'), `${quotaUs}\n`);
    return this.quota();
  }

  unlimit(): void {
    writeFileSync(join(this.path, 'cpu.cfs_quota_us'), '-1\n');
  }

  quota(): CpuQuota {
    const quotaUs = Number(readFileSync(join(this.path, 'cpu.cfs_quota_us'), 'utf8').trim());
    const periodUs = Number(readFileSync(join(this.path, 'cpu.cfs_period_us'), 'utf8').trim());
    return { quotaUs, periodUs, fraction: quotaUs < 0 ? null : quotaUs / periodUs };
  }

  throttling(): CpuThrottling {
    const stat = new Map<string, number>();
    for (const line of readFileSync(join(this.path, 'cpu.stat'), 'utf8').split('\n')) {
      const [k, v] = line.split(' ');
      if (k && v) stat.set(k, Number(v));
    }
    return { periods: stat.get('nr_periods') ?? 0, throttledPeriods: stat.get('nr_throttled') ?? 0, throttledMs: (stat.get('throttled_time') ?? 0) / 1e6 };
  }

  /** Processes (thread group leaders) in the group; none when it does not exist. */
  pids(): number[] {
    try {
      return readFileSync(this.procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  /** rmdir; false while processes remain in it. */
  remove(): boolean {
    try {
      rmdirSync(this.path);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT';
    }
  }
}
