/**
 * zkwarden as users get it: `npm pack` (which builds dist/ once, through prepack), installed
 * into an empty project without the registry, then used from there: every subpath of the
 * exports map imported from plain Node (no TypeScript at run time), a consumer file and the
 * examples type-checked with `tsc` against the shipped declarations, and the `zkwarden` bin run.
 *
 * The install is offline (test/package/install.ts): it works on a fresh CI machine after `npm ci`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ok, packAndInstall, root, run, type RunResult } from './install.ts';

const repoPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | Record<string, string>>;
  dependencies: Record<string, string>;
};

let work: string;
let consumer: string;
let tarballFiles: string[];
const subpaths = Object.keys(repoPackage.exports).filter((k) => k !== './package.json');
const specifierOf = (subpath: string): string => (subpath === '.' ? repoPackage.name : `${repoPackage.name}/${subpath.slice(2)}`);

before(() => {
  work = mkdtempSync(join(tmpdir(), 'zkwarden-pack-'));
  const installed = packAndInstall(work);
  consumer = installed.project;
  tarballFiles = installed.files;
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
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/zkwarden.js',
      'dist/cli/main.js',
      'dist/cli/commands.json',
      'native/faultfs/faultfs.c',
      'native/faultfs/build.mjs',
      'test/fixtures/seed-bundle/bundle.json',
    ]) {
      assert.ok(tarballFiles.includes(f), `${f} is not in the tarball`);
    }
    const stray = tarballFiles.filter(
      (f) =>
        !/^(package\.json|README\.md|LICENSE|bin\/zkwarden\.js|dist\/.+\.(js|d\.ts)|dist\/cli\/commands\.json|native\/faultfs\/(faultfs\.c|build\.mjs)|test\/fixtures\/seed-bundle\/.+)$/.test(
          f,
        ),
    );
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
      zkwarden: [
        'createClient',
        'ZooKeeperClient',
        'Election',
        'FencedWriter',
        'LeaderDiscovery',
        'MembersWatcher',
        'endSession',
        'NoNodeError',
        'Guard',
        'ProtocolError',
      ],
      'zkwarden/zk': ['createClient', 'endSession', 'JuteDecodeError', 'SessionExpiredError'],
      'zkwarden/recipes': ['Election', 'FencedError', 'readLeader', 'registerMember'],
      'zkwarden/forensics': ['readSnapshot', 'openDataDir', 'treeAt', 'auditOffline', 'investigate', 'render'],
      'zkwarden/lab': ['Ensemble', 'EnsembleError', 'FaultFs'],
      'zkwarden/guard': ['Guard', 'HealthGate', 'Watchdog'],
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

  it('loads command groups lazily, with help and errors exactly as the sources (every group loaded) give them', () => {
    const sources = (args: string[]): RunResult => run(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], { cwd: root });
    const bin = join(consumer, 'node_modules', '.bin', 'zkwarden');
    for (const args of [['--help'], ['help', 'snapshot'], ['audit', '--help'], ['no-such-command']]) {
      const built = run(bin, args, { cwd: consumer });
      const eager = sources(args);
      assert.deepEqual({ status: built.status, stdout: built.stdout, stderr: built.stderr }, eager, `zkwarden ${args.join(' ')}`);
    }
  });
});
