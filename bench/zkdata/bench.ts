/**
 * zkdata benchmark: `zkwarden snapshot dump` side by side with ZooKeeper's SnapshotFormatter
 * on a snapshot of 1 million znodes, and the offline audit of three such members.
 * Wall time and peak RSS come from /usr/bin/time -v. Both dumps go to files, and the files are
 * checked to hold the same nodes (an order-independent hash of every node block), so the
 * comparison is of equal work.
 *
 *   npm run bench:zkdata -- [--nodes 1000000] [--dir /tmp/zkwarden-bench-zkdata] [--runs 1]
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync, cpSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { crc32 } from 'node:zlib';

const root = join(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const NODES = Number(opt('nodes', '1000000'));
const DIR = opt('dir', '/tmp/zkwarden-bench-zkdata');
const RUNS = Number(opt('runs', '1'));
const CP = ['zookeeper.jar', 'zookeeper-jute.jar', 'slf4j-api.jar', 'slf4j-nop.jar', 'jackson-core.jar', 'snappy-java.jar', 'netty-common.jar']
  .map((j) => `/usr/share/java/${j}`)
  .join(':');

interface Measure {
  seconds: number;
  cpuSeconds: number;
  maxRssMb: number;
  status: number;
}

function timed(cmd: string, cmdArgs: string[], stdoutFile: string | null): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const shell = `/usr/bin/time -v ${[cmd, ...cmdArgs].map((a) => `'${a}'`).join(' ')} > ${stdoutFile ?? '/dev/null'}`;
    const child = spawn('bash', ['-c', shell], { cwd: root, env: { ...process.env, TZ: 'UTC' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(err);
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
      const user = /User time \(seconds\): ([\d.]+)/.exec(err);
      const sys = /System time \(seconds\): ([\d.]+)/.exec(err);
      if (!wall || !rss) return reject(new Error(`no /usr/bin/time figures for ${cmd}:\n${err.slice(-2000)}`));
      const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
      resolve({ seconds, cpuSeconds: Number(user?.[1] ?? 0) + Number(sys?.[1] ?? 0), maxRssMb: Math.round(Number(rss[1]) / 1024), status: code ?? -1 });
    });
  });
}

/** Count and order-independent hash of the node blocks of a SnapshotFormatter-style dump. */
async function nodeBlocks(file: string): Promise<{ count: number; hash: number }> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let count = 0;
  let hash = 0;
  let block: string[] = [];
  const close = (): void => {
    if (block.length >= 10 && block[1]!.startsWith('  cZxid = ')) {
      count++;
      hash = (hash + crc32(block.join('\n'))) % 0x100000000;
    }
    block = [];
  };
  for await (const line of rl) {
    if (line === '----') close();
    else block.push(line);
  }
  close();
  return { count, hash };
}

async function main(): Promise<void> {
  const m1 = join(DIR, 'm1');
  if (!existsSync(join(m1, 'version-2')) || !readdirSync(join(m1, 'version-2')).some((f) => f.startsWith('snapshot.'))) {
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    process.stderr.write(`generating a ${NODES}-znode snapshot in ${m1}\n`);
    await timed(process.execPath, ['--import', 'tsx', 'bench/zkdata/gen-snapshot.ts', m1, String(NODES), '2000'], null);
    for (const m of ['m2', 'm3']) cpSync(m1, join(DIR, m), { recursive: true });
  }
  const snap = join(
    m1,
    'version-2',
    readdirSync(join(m1, 'version-2')).find((f) => f.startsWith('snapshot.'))!,
  );
  const zkwarden = [process.execPath, '--import', 'tsx', 'src/cli/main.ts'];
  const rows: [string, Measure][] = [];
  for (let r = 0; r < RUNS; r++) {
    rows.push([
      'ZooKeeper SnapshotFormatter (java 17)',
      await timed('java', ['-cp', CP, 'org.apache.zookeeper.server.SnapshotFormatter', snap], join(DIR, 'java.txt')),
    ]);
    rows.push(['zkwarden snapshot dump', await timed(zkwarden[0]!, [...zkwarden.slice(1), 'snapshot', 'dump', snap], join(DIR, 'zkwarden.txt'))]);
    rows.push(['zkwarden snapshot dump --json', await timed(zkwarden[0]!, [...zkwarden.slice(1), 'snapshot', 'dump', '--json', snap], null)]);
    rows.push([
      'zkwarden audit m1 m2 m3 (offline)',
      await timed(zkwarden[0]!, [...zkwarden.slice(1), 'audit', m1, join(DIR, 'm2'), join(DIR, 'm3')], join(DIR, 'audit.txt')),
    ]);
  }
  const java = await nodeBlocks(join(DIR, 'java.txt'));
  const mine = await nodeBlocks(join(DIR, 'zkwarden.txt'));
  const same = java.count === mine.count && java.hash === mine.hash;
  process.stdout.write(`\nsnapshot: ${snap} (${NODES} znodes requested)\n`);
  process.stdout.write(`node blocks: SnapshotFormatter ${java.count}, zkwarden ${mine.count}; identical content: ${same ? 'yes' : 'NO'}\n\n`);
  process.stdout.write('| run | wall s | CPU s | peak RSS MB |\n| --- | ---: | ---: | ---: |\n');
  for (const [name, m] of rows) process.stdout.write(`| ${name} | ${m.seconds.toFixed(2)} | ${m.cpuSeconds.toFixed(2)} | ${m.maxRssMb} |\n`);
  process.stdout.write(
    `\nload average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}; ${cpus().length} cores, Node ${process.version}\n`,
  );
  if (!same) process.exitCode = 1;
}

await main();
