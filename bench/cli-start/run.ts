/**
 * How long `zkwarden --help` takes to start, side by side in one hyperfine run: the command of the
 * installed package (packed and installed into a temporary project, as users get it: compiled
 * JavaScript, no TypeScript at run time) against the sources through tsx (how the command ran
 * before it was a package, and how `npm run zkwarden` runs in a checkout). Node's own start
 * (`node -e ''`) is the floor; `npx zkwarden --help` adds npm's start to the installed command.
 * Goal: under 300 ms from the installed package. The CPU time per run is given beside the wall
 * times: on a shared machine it moves less with the load than they do.
 *
 *   npm run bench:cli-start -- [--runs 30] [--no-write]
 *
 * Results go to stdout and, unless --no-write, to docs/benchmarks.md under "## CLI start".
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { offlineEnv, packAndInstall, root } from '../../test/package/install.ts';
import { writeBenchSection } from '../docs-section.ts';

const HEADING = '## CLI start';
const GOAL_MS = 300;

class UsageError extends Error {}
class EnvironmentError extends Error {}

interface Row {
  name: string;
  command: string;
  note: string;
  goal?: boolean;
}

interface HyperfineResult {
  command: string;
  mean: number;
  stddev: number;
  median: number;
  min: number;
  max: number;
  /** Mean CPU seconds per run, user and system. */
  user: number;
  system: number;
}

function runsArg(text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 2 || v > 1000) throw new UsageError(`--runs: expected an integer from 2 to 1000, got ${text}`);
  return v;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const ms = (s: number): string => (s * 1000).toFixed(0);

function main(): void {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, 'no-write': { type: 'boolean', default: false } } });
  const runs = runsArg(values.runs);
  if (spawnSync('hyperfine', ['--version']).error) {
    throw new EnvironmentError('hyperfine is not installed: `npm run bench:cli-start` installs it (node scripts/setup.mjs bench)');
  }

  const work = mkdtempSync(join(tmpdir(), 'zkwarden-cli-start-'));
  try {
    process.stderr.write('packing and installing zkwarden into a temporary project...\n');
    const installed = packAndInstall(work);
    const node = process.execPath;
    const rows: Row[] = [
      {
        name: 'installed package',
        command: `${quote(installed.bin)} --help`,
        note: '`zkwarden --help`: the bin in node_modules/.bin, compiled JavaScript',
        goal: true,
      },
      {
        name: 'sources via tsx',
        command: `${quote(node)} --import tsx src/cli/main.ts --help`,
        note: 'the same CLI compiled on the fly (`npm run zkwarden -- --help`)',
      },
      { name: 'npx, installed package', command: `npx zkwarden --help`, note: 'the installed bin through npx: npm starts first' },
      { name: 'Node alone', command: `${quote(node)} -e ''`, note: "the floor: Node's own start" },
    ];
    const exported = join(work, 'hyperfine.json');
    // Each command runs in its own directory: the sources in the checkout, the rest in the project.
    const prepare = rows.map((r) => (r.name === 'sources via tsx' ? `cd ${quote(root)}` : `cd ${quote(installed.project)}`));
    const commands = rows.map((r, i) => `${prepare[i]} && ${r.command}`);
    const r = spawnSync(
      'hyperfine',
      [
        '--warmup',
        '3',
        '--runs',
        String(runs),
        '--shell',
        'bash',
        '--style',
        'basic',
        '--export-json',
        exported,
        ...rows.flatMap((row, i) => ['--command-name', row.name, commands[i]!]),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'], env: offlineEnv },
    );
    if (r.status !== 0) throw new Error(`hyperfine failed (exit ${r.status ?? r.signal})`);
    const results = (JSON.parse(readFileSync(exported, 'utf8')) as { results: HyperfineResult[] }).results;

    const byName = new Map(rows.map((row, i) => [row.name, results[i]!]));
    const goal = byName.get('installed package')!;
    const tsx = byName.get('sources via tsx')!;
    const floor = byName.get('Node alone')!;
    const met = goal.median * 1000 < GOAL_MS;
    const section = [
      HEADING,
      '',
      `\`npm run bench:cli-start -- --runs ${runs}\` (bench/cli-start/run.ts: hyperfine ${hyperfineVersion()}, 3 warm-up runs, \`--shell bash\`, each command preceded by a \`cd\`), ${new Date().toISOString().slice(0, 10)}; ${cpus().length} cores, Node.js ${process.version}, load average at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}.`,
      '',
      `Goal: \`zkwarden --help\` from the installed package in under ${GOAL_MS} ms: **${met ? 'met' : 'missed'}** (median ${ms(goal.median)} ms, ${(tsx.median / goal.median).toFixed(1)}x faster than the sources through tsx); CPU per run ${ms(goal.user + goal.system)} ms against ${ms(floor.user + floor.system)} ms for Node alone, what the command costs beyond Node's start whatever else the machine runs.`,
      '',
      '| command | median ms | mean ms | ± sd | min ms | max ms | CPU ms (user + sys) | what |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
      ...rows.map((row) => {
        const x = byName.get(row.name)!;
        return `| ${row.name} | ${ms(x.median)} | ${ms(x.mean)} | ${ms(x.stddev)} | ${ms(x.min)} | ${ms(x.max)} | ${ms(x.user + x.system)} | ${row.note} |`;
      }),
      '',
    ].join('\n');
    process.stdout.write(`\n${section}`);
    if (!values['no-write']) writeBenchSection(join(root, 'docs', 'benchmarks.md'), HEADING, section);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function hyperfineVersion(): string {
  return spawnSync('hyperfine', ['--version'], { encoding: 'utf8' })
    .stdout.trim()
    .replace(/^hyperfine /, '');
}

try {
  main();
} catch (e) {
  process.stderr.write(`bench:cli-start: ${(e as Error).message}\n`);
  process.exit(e instanceof UsageError ? 2 : e instanceof EnvironmentError ? 3 : 1);
}
