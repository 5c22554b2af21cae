/**
 * zkwarden as users get it: `npm pack` (which builds dist/ once, through prepack), installed
 * into an empty project without the registry, then used from there: every subpath of the
 * exports map imported from plain Node (no TypeScript at run time), a consumer file and the
 * examples type-checked with `tsc` against the shipped declarations, and the `zkwarden` bin run.
 *
 * The runtime dependencies come from this checkout's node_modules, packed, so the install works
 * offline on a fresh CI machine right after `npm ci`.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const repoPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: Record<string, string | Record<string, string>>;
  dependencies: Record<string, string>;
};
// No call below may reach a registry.
const env = { ...process.env, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 180_000, ...opts });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function ok(what: string, r: { status: number | null; stdout: string; stderr: string }): string {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `npm pack --json` prints the lifecycle scripts' output too; the report is the JSON array at the end. */
function packReport(stdout: string): { filename: string; files: { path: string }[] }[] {
  return JSON.parse(stdout.slice(stdout.search(/^\[/m))) as { filename: string; files: { path: string }[] }[];
}

/** The runtime dependency closure, as the lock file has it (every installed package not marked dev). */
function runtimeClosure(): string[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const dirs = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && !p.dev && !p.devOptional)
    .map(([path]) => path);
  const nested = dirs.filter((d) => d.split('node_modules/').length > 2);
  // A nested runtime dependency (two versions of one package) would need an `overrides` entry below.
  assert.deepEqual(nested, [], 'runtime dependencies nested under others are not handled by this test yet');
  return dirs;
}

let work: string;
let consumer: string;
let tarballFiles: string[];
const subpaths = Object.keys(repoPackage.exports).filter((k) => k !== './package.json');
const specifierOf = (subpath: string): string => (subpath === '.' ? repoPackage.name : `${repoPackage.name}/${subpath.slice(2)}`);

before(() => {
  work = mkdtempSync(join(tmpdir(), 'zkwarden-pack-'));
  const [report] = packReport(ok('npm pack', run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root })));
  assert.ok(report, 'npm pack reported nothing');
  tarballFiles = report.files.map((f) => f.path).sort();

  const closure = runtimeClosure();
  const packed = packReport(
    ok(
      'npm pack (dependencies)',
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work, ...closure.map((d) => join(root, d))], { cwd: root }),
    ),
  );
  assert.equal(packed.length, closure.length);

  consumer = join(work, 'consumer');
  const dependencies: Record<string, string> = { [repoPackage.name]: `file:../${report.filename}` };
  closure.forEach((dir, i) => (dependencies[dir.slice('node_modules/'.length)] = `file:../${packed[i]!.filename}`));
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies }, null, 2));
  ok('npm install', run('npm', ['install', '--offline', '--no-package-lock', '--ignore-scripts'], { cwd: consumer }));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the compiled modules, their types, the bin and the seed bundle the demo reads; no sources, tests or benchmarks', () => {
    for (const subpath of subpaths) {
      const target = repoPackage.exports[subpath] as Record<string, string>;
      for (const file of [target.types!, target.default!]) assert.ok(tarballFiles.includes(file.slice(2)), `${subpath}: ${file} is not in the tarball`);
    }
    for (const f of ['package.json', 'README.md', 'bin/zkwarden.js', 'dist/cli/main.js', 'test/fixtures/seed-bundle/bundle.json']) {
      assert.ok(tarballFiles.includes(f), `${f} is not in the tarball`);
    }
    const stray = tarballFiles.filter((f) => !/^(package\.json|README\.md|bin\/zkwarden\.js|dist\/.+\.(js|d\.ts)|test\/fixtures\/seed-bundle\/.+)$/.test(f));
    assert.deepEqual(stray, []);
    assert.deepEqual(
      tarballFiles.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      [],
    );
  });

  it('installs with only its runtime dependencies: no TypeScript compiler, no tsx, no browser driver', () => {
    const installed = readdirSync(join(consumer, 'node_modules')).filter((n) => !n.startsWith('.'));
    for (const absent of ['tsx', 'typescript', 'playwright-core', 'esbuild']) assert.ok(!installed.includes(absent), `${absent} was installed`);
    assert.ok(installed.includes('commander'));
    const shipped = JSON.parse(readFileSync(join(consumer, 'node_modules', 'zkwarden', 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.deepEqual(Object.keys(shipped.dependencies).sort(), Object.keys(repoPackage.dependencies).sort());
  });

  it('imports every subpath of its exports map from plain Node ESM, and nothing that is not exported', () => {
    const script = `
      const out = {};
      for (const s of ${JSON.stringify(subpaths.map(specifierOf))}) out[s] = Object.keys(await import(s)).sort();
      try { await import('zkwarden/dist/zk/client.js'); out.internal = 'importable'; } catch (e) { out.internal = e.code; }
      console.log(JSON.stringify(out));`;
    const exportsOf = JSON.parse(ok('import', run(process.execPath, ['--input-type=module', '-e', script], { cwd: consumer }))) as Record<string, string[]>;
    const expected: Record<string, string[]> = {
      zkwarden: ['createClient', 'ZooKeeperClient', 'Election', 'FencedWriter', 'LeaderDiscovery', 'MembersWatcher', 'endSession', 'NoNodeError'],
      'zkwarden/zk': ['createClient', 'endSession', 'JuteDecodeError', 'SessionExpiredError'],
      'zkwarden/recipes': ['Election', 'FencedError', 'readLeader', 'registerMember'],
      'zkwarden/forensics': ['readSnapshot', 'openDataDir', 'treeAt', 'auditOffline', 'investigate', 'render'],
      'zkwarden/lab': ['Ensemble', 'EnsembleError'],
      'zkwarden/guard': [],
    };
    for (const subpath of subpaths) {
      const names = exportsOf[specifierOf(subpath)];
      assert.ok(names, `${specifierOf(subpath)} did not import`);
      for (const name of expected[specifierOf(subpath)] ?? []) assert.ok(names.includes(name), `${specifierOf(subpath)} lacks ${name}`);
    }
    assert.equal(exportsOf.internal, 'ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('type-checks a consumer and the examples against the shipped declarations (strict, no skipLibCheck)', () => {
    writeFileSync(
      join(consumer, 'use.ts'),
      `import { createClient, Election, FencedError, type ElectionState, type Term } from 'zkwarden';
import { readLeader, type LeaderInfo } from 'zkwarden/recipes';
import { endSession, type Stat } from 'zkwarden/zk';
import { Ensemble, type EnsembleOptions } from 'zkwarden/lab';
import { readSnapshot, type SnapshotSummary } from 'zkwarden/forensics';
import * as guard from 'zkwarden/guard';

export async function use(): Promise<[ElectionState, Term | null, LeaderInfo | null, Stat | null, SnapshotSummary, unknown]> {
  const options: EnsembleOptions = { size: 1 };
  const ens = await Ensemble.start(options);
  const client = createClient(ens.connectString, { sessionTimeoutMs: 6000 });
  const election = new Election(client, { candidate: { endpoint: '127.0.0.1:8080' } });
  // @ts-expect-error a candidate needs its endpoint: the types are real, not any
  new Election(client, { candidate: { name: 'no endpoint' } });
  const err: unknown = new Error();
  if (err instanceof FencedError) err.reason satisfies string;
  await endSession(ens.connectString, client.sessionId, client.sessionPassword);
  return [election.state, election.term, await readLeader(client), await client.exists('/'), await readSnapshot('snapshot.0'), guard];
}
`,
    );
    for (const f of readdirSync(join(root, 'examples')).filter((n) => n.endsWith('.ts'))) copyFileSync(join(root, 'examples', f), join(consumer, f));
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        include: ['*.ts'],
      }),
    );
    ok('tsc', run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: consumer }));
  });

  it('runs `npx zkwarden --help` and a real command from the compiled CLI', () => {
    const help = ok('npx zkwarden --help', run('npx', ['zkwarden', '--help'], { cwd: consumer }));
    assert.match(help, /^Usage: zkwarden \[options\] \[command\]/);
    for (const command of ['demo', 'lab', 'investigate', 'snapshot', 'leader']) assert.match(help, new RegExp(`^  ${command}\\b`, 'm'));
    // The demo's last step reads the seed bundle shipped beside the CLI.
    const bundle = join(consumer, 'node_modules', 'zkwarden', 'test', 'fixtures', 'seed-bundle');
    assert.ok(existsSync(bundle));
    const r = run('npx', ['zkwarden', 'investigate', bundle], { cwd: consumer });
    assert.equal(r.status, 1, `a gray failure is a finding (exit 1):\n${r.stderr}`);
    assert.match(r.stdout, /VERDICT: Gray failure of the meta leader on node1/);
  });
});
