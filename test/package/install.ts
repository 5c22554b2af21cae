/**
 * Packs zkwarden as `npm publish` would (`npm pack`, which builds dist/ through prepack) and
 * installs the tarball into an empty project, without the registry: the runtime dependencies
 * are packed from this checkout's node_modules, so it works offline on a fresh machine right
 * after `npm ci`. Used by the pack test and by bench/cli-start.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');

/** Environment for npm: no call may reach a registry. */
export const offlineEnv = {
  ...process.env,
  npm_config_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: offlineEnv, timeout: 180_000, ...opts });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The command's stdout; throws with everything it printed when it failed. */
export function ok(what: string, r: RunResult): string {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `npm pack --json` prints the lifecycle scripts' output too; the report is the JSON array at the end. */
function packReport(stdout: string): { filename: string; files: { path: string }[] }[] {
  return JSON.parse(stdout.slice(stdout.search(/^\[/m))) as { filename: string; files: { path: string }[] }[];
}

/** The runtime dependency closure, as the lock file has it: every installed package not marked dev. */
function runtimeClosure(): string[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const dirs = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && !p.dev && !p.devOptional)
    .map(([path]) => path);
  // A nested one (two versions of one package) would need an `overrides` entry in the project.
  const nested = dirs.filter((d) => d.split('node_modules/').length > 2);
  if (nested.length > 0) throw new Error(`nested runtime dependencies are not handled yet: ${nested.join(', ')}`);
  return dirs;
}

export interface Installed {
  /** The project the package is installed into. */
  project: string;
  /** The tarball's files, sorted. */
  files: string[];
  /** The installed `zkwarden` command. */
  bin: string;
}

/** Packs the package into `work` and installs it into `work`/consumer. */
export function packAndInstall(work: string): Installed {
  const [report] = packReport(ok('npm pack', run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root })));
  if (!report) throw new Error('npm pack reported nothing');
  const closure = runtimeClosure();
  const packed = packReport(
    ok(
      'npm pack (dependencies)',
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work, ...closure.map((d) => join(root, d))], { cwd: root }),
    ),
  );
  if (packed.length !== closure.length) throw new Error(`packed ${packed.length} of ${closure.length} dependencies`);

  const project = join(work, 'consumer');
  // The dependencies are listed beside zkwarden only so that npm finds them without a registry;
  // zkwarden's own ranges must accept them, or npm would try to fetch others and fail.
  const dependencies: Record<string, string> = { zkwarden: `file:../${report.filename}` };
  closure.forEach((dir, i) => (dependencies[dir.slice('node_modules/'.length)] = `file:../${packed[i]!.filename}`));
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies }, null, 2));
  ok('npm install', run('npm', ['install', '--offline', '--no-package-lock', '--ignore-scripts'], { cwd: project }));
  return { project, files: report.files.map((f) => f.path).sort(), bin: join(project, 'node_modules', '.bin', 'zkwarden') };
}
