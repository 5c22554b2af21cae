/**
 * faultfs in healthy mode against the plain backing file system, side by side in one run:
 *
 * 1. Files: sequential write (1 MiB writes, then fsync), small appends each followed by
 *    fdatasync (what a transaction log does), and the latency of those fdatasync calls; on the
 *    faultfs mount and on a plain directory of the same file system, rounds interleaved (the
 *    order alternates every round) so that the machine's drift hits both alike.
 * 2. ZooKeeper's own write throughput: two standalone servers (Debian's 3.8, full JIT,
 *    forceSync=yes), one with every file on faultfs and one on the plain directory, both up for
 *    a repeat; zkwarden's client does creates then setData with N outstanding against one, then
 *    the other, round by round; every repeat starts new servers.
 *
 * Every figure is a median over rounds; "faultfs ÷ plain" is the median of the per-round
 * ratios with a bootstrap 95 % interval (bench/client/stats.ts).
 *
 *   npm run bench:faultfs -- [--rounds 20] [--seq-mb 64] [--appends 500] [--zk-ops 800] [--outstanding 64] [--size 1] [--repeat 3] [--only files|zk] [--no-write]
 *
 * Many short rounds rather than a few long ones: on a shared machine the load changes within
 * seconds, and only rounds moments apart cancel it.
 *
 * Results go to stdout and, unless --no-write, to docs/benchmarks.md under "## faultfs".
 */
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { FaultFs } from '../../src/lab/faultfs.ts';
import { createClient, type ZooKeeperClient } from '../../src/zk/index.ts';
import { medianOf, pairedRatio, percentile } from '../client/stats.ts';
import { writeBenchSection } from '../docs-section.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HEADING = '## faultfs';

class UsageError extends Error {}

type Side = 'faultfs' | 'plain';
const SIDES: Side[] = ['faultfs', 'plain'];

interface FileRound {
  seqMBps: number;
  appendsPerSec: number;
  /** every fdatasync of the append test, in ms */
  syncMs: number[];
}

function seqWrite(dir: string, mb: number): number {
  const file = join(dir, 'seq');
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const t0 = performance.now();
  const fd = openSync(file, 'w');
  for (let i = 0; i < mb; i++) writeSync(fd, chunk);
  fsyncSync(fd);
  closeSync(fd);
  const s = (performance.now() - t0) / 1000;
  unlinkSync(file);
  return mb / s;
}

function appends(dir: string, n: number): { perSec: number; syncMs: number[] } {
  const file = join(dir, 'appends.log');
  const rec = Buffer.alloc(200, 0x41);
  const syncMs: number[] = [];
  const fd = openSync(file, 'a');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    writeSync(fd, rec);
    const s0 = performance.now();
    fdatasyncSync(fd);
    syncMs.push(performance.now() - s0);
  }
  const s = (performance.now() - t0) / 1000;
  closeSync(fd);
  unlinkSync(file);
  return { perSec: n / s, syncMs };
}

async function pipelined(n: number, outstanding: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(outstanding, n) }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
  return (n / (performance.now() - t0)) * 1000;
}

/** User + system CPU of a process in µs (/proc/PID/stat, 10 ms ticks). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

function num(v: string | undefined, name: string, def: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${name}: expected an integer from 1 to ${max}, got ${v}`);
  return n;
}

const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;
const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        rounds: { type: 'string' },
        'seq-mb': { type: 'string' },
        appends: { type: 'string' },
        'zk-ops': { type: 'string' },
        outstanding: { type: 'string' },
        size: { type: 'string' },
        repeat: { type: 'string' },
        only: { type: 'string' },
        'no-write': { type: 'boolean' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  const rounds = num(values.rounds as string | undefined, 'rounds', 20, 1000);
  const seqMb = num(values['seq-mb'] as string | undefined, 'seq-mb', 64, 16_384);
  const nAppends = num(values.appends as string | undefined, 'appends', 500, 1_000_000);
  const zkOps = num(values['zk-ops'] as string | undefined, 'zk-ops', 800, 1_000_000);
  const repeats = num(values.repeat as string | undefined, 'repeat', 3, 100);
  const only = values.only as string | undefined;
  if (only !== undefined && only !== 'files' && only !== 'zk') throw new UsageError(`--only: expected files or zk, got ${only}`);
  const outstanding = num(values.outstanding as string | undefined, 'outstanding', 64, 10_000);
  const size = num(values.size as string | undefined, 'size', 1, 5);
  if (![1, 3, 5].includes(size)) throw new UsageError(`--size: expected 1, 3 or 5, got ${size}`);
  const loadBefore = loadavg()[0]!;

  const dir = mkdtempSync(join(tmpdir(), 'zkw-bench-faultfs-'));
  const backing = join(dir, 'backing');
  const plain = join(dir, 'plain');
  mkdirSync(backing);
  mkdirSync(plain);
  const ffs = await FaultFs.mount({ backing, mountpoint: join(dir, 'mnt') });
  const dirs: Record<Side, string> = { faultfs: ffs.mountpoint, plain };
  const ensembles: Partial<Record<Side, Ensemble>> = {};
  const clients: Partial<Record<Side, ZooKeeperClient>> = {};
  try {
    // ---- files
    const files: Record<Side, FileRound[]> = { faultfs: [], plain: [] };
    const filesDir: Record<Side, string> = { faultfs: join(dirs.faultfs, 'files'), plain: join(dirs.plain, 'files') };
    for (const side of SIDES) mkdirSync(filesDir[side]);
    for (const side of SIDES) seqWrite(filesDir[side], Math.min(seqMb, 32)); // warm-up
    for (let r = 0; r < rounds && only !== 'zk'; r++) {
      for (const side of r % 2 ? [...SIDES].reverse() : SIDES) {
        const seqMBps = seqWrite(filesDir[side], seqMb);
        const a = appends(filesDir[side], nAppends);
        files[side].push({ seqMBps, appendsPerSec: a.perSec, syncMs: a.syncMs });
      }
      process.stderr.write(`files round ${r + 1}/${rounds}\n`);
    }

    // ---- ZooKeeper: every repeat starts new servers (in alternating order), so one JVM's luck
    // (JIT, thread placement) does not decide the comparison.
    const data = Buffer.alloc(128, 0x62);
    const zkRates: Record<Side, { create: number[][]; setData: number[][] }> = { faultfs: { create: [], setData: [] }, plain: { create: [], setData: [] } };
    let fuseZkOps = 0;
    let daemonUs = 0;
    const fuseCounts: Record<string, number> = {};
    for (let rep = 0; rep < repeats && only !== 'files'; rep++) {
      const order = rep % 2 ? [...SIDES].reverse() : SIDES;
      for (const side of order) {
        ensembles[side] = await Ensemble.start({
          size,
          baseDir: join(dirs[side], `zk-${rep}`),
          fastStartup: false,
          preAllocSizeKb: 65536,
          startTimeoutMs: 90_000,
        });
        const zk = createClient(ensembles[side]!.connectString, { sessionTimeoutMs: 10_000, requestTimeoutMs: 60_000 });
        await zk.connect({ timeoutMs: 20_000 });
        clients[side] = zk;
        zkRates[side].create.push([]);
        zkRates[side].setData.push([]);
      }
      // One warm-up round each, not counted: JIT and the first log file's preallocation.
      const warm = Math.min(zkOps * 2, 2000);
      for (const side of order) {
        await clients[side]!.create('/warm');
        await pipelined(warm, outstanding, (i) => clients[side]!.create(`/warm/n${i}`, data));
        await pipelined(warm, outstanding, (i) => clients[side]!.setData(`/warm/n${i}`, data));
      }
      // What faultfs costs per ZooKeeper write: its requests (status counts) and its daemon's CPU.
      const c0 = (await ffs.status()).counts;
      const d0 = cpuUs(ffs.daemonPid);
      for (let r = 0; r < rounds; r++) {
        for (const side of r % 2 ? [...SIDES].reverse() : SIDES) {
          const zk = clients[side]!;
          await zk.create(`/r${r}`);
          zkRates[side].create[rep]!.push(await pipelined(zkOps, outstanding, (i) => zk.create(`/r${r}/n${i}`, data)));
          zkRates[side].setData[rep]!.push(await pipelined(zkOps, outstanding, (i) => zk.setData(`/r${r}/n${i}`, data)));
          if (side === 'faultfs') fuseZkOps += 2 * zkOps;
        }
      }
      daemonUs += cpuUs(ffs.daemonPid) - d0;
      const c1 = (await ffs.status()).counts;
      for (const k of Object.keys(c1)) fuseCounts[k] = (fuseCounts[k] ?? 0) + c1[k]! - (c0[k] ?? 0);
      for (const side of SIDES) {
        await clients[side]?.close().catch(() => undefined);
        await ensembles[side]?.close();
        clients[side] = undefined;
        ensembles[side] = undefined;
        rmSync(join(dirs[side], `zk-${rep}`), { recursive: true, force: true });
      }
      process.stderr.write(`ZooKeeper repeat ${rep + 1}/${repeats}\n`);
    }
    const daemonUsPerOp = fuseZkOps ? daemonUs / fuseZkOps : NaN;
    const perOp = (k: string): string => (fuseZkOps ? ((fuseCounts[k] ?? 0) / fuseZkOps).toFixed(3) : '-');

    // ---- report
    const ratio = (f: number[], p: number[]): string => {
      const x = pairedRatio([f], [p]);
      return `${x.median.toFixed(3)} (${x.low.toFixed(3)}–${x.high.toFixed(3)})`;
    };
    const syncLat = (side: Side): { p50: number; p99: number } => {
      const all = Float64Array.from(files[side].flatMap((x) => x.syncMs)).sort();
      return { p50: percentile(all, 0.5), p99: percentile(all, 0.99) };
    };
    const seq = (side: Side): number[] => files[side].map((x) => x.seqMBps);
    const app = (side: Side): number[] => files[side].map((x) => x.appendsPerSec);
    const fl = syncLat('faultfs');
    const pl = syncLat('plain');
    const zkRatioCreate = pairedRatio(zkRates.faultfs.create, zkRates.plain.create);
    const zkRatioSet = pairedRatio(zkRates.faultfs.setData, zkRates.plain.setData);
    const zkMedian = (side: Side, op: 'create' | 'setData'): number => medianOf(zkRates[side][op].flat());
    const goal = Math.min(zkRatioCreate.median, zkRatioSet.median) >= 0.8;
    const cmd = `npm run bench:faultfs -- --rounds ${rounds} --seq-mb ${seqMb} --appends ${nAppends} --zk-ops ${zkOps} --outstanding ${outstanding} --size ${size} --repeat ${repeats}`;
    const section = [
      HEADING,
      '',
      `\`${cmd}\` (bench/faultfs/run.ts), ${new Date().toISOString().slice(0, 10)}.`,
      '',
      `faultfs in healthy mode (no rules) against a plain directory on the same file system (${tmpdir()}), in one run, ${rounds} interleaved rounds ` +
        `(the order alternates every round); every figure is the median over the rounds, "faultfs ÷ plain" the median of the per-round ratios with a bootstrap 95 % interval. ` +
        `Machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; 1-minute load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end.`,
      '',
      '| files | faultfs | plain | faultfs ÷ plain |',
      '| --- | ---: | ---: | ---: |',
      `| sequential write, ${seqMb} MiB in 1 MiB writes + fsync, MB/s | ${fmt(medianOf(seq('faultfs')))} | ${fmt(medianOf(seq('plain')))} | ${ratio(seq('faultfs'), seq('plain'))} |`,
      `| 200-byte append + fdatasync, ${nAppends} per round, per s | ${fmt(medianOf(app('faultfs')))} | ${fmt(medianOf(app('plain')))} | ${ratio(app('faultfs'), app('plain'))} |`,
      `| fdatasync latency p50, ms | ${fl.p50.toFixed(3)} | ${pl.p50.toFixed(3)} | |`,
      `| fdatasync latency p99, ms | ${fl.p99.toFixed(3)} | ${pl.p99.toFixed(3)} | |`,
      '',
      `ZooKeeper 3.8 (${size === 1 ? 'one standalone server' : `${size} servers`} per side, full JIT, forceSync=yes, preAllocSize 64 MiB, every file of the servers on its side), ` +
        `zkwarden's client with ${outstanding} outstanding requests, ${fmt(zkOps)} creates then ${fmt(zkOps)} setData of 128 bytes per round and side, ${rounds} rounds after a warm-up, ` +
        `repeated ${repeats} times with new servers (the interval is a two-level bootstrap over repeats and their rounds):`,
      '',
      '| ZooKeeper writes/s | faultfs | plain | faultfs ÷ plain |',
      '| --- | ---: | ---: | ---: |',
      `| create | ${fmt(zkMedian('faultfs', 'create'))} | ${fmt(zkMedian('plain', 'create'))} | ${zkRatioCreate.median.toFixed(3)} (${zkRatioCreate.low.toFixed(3)}–${zkRatioCreate.high.toFixed(3)}) |`,
      `| setData | ${fmt(zkMedian('faultfs', 'setData'))} | ${fmt(zkMedian('plain', 'setData'))} | ${zkRatioSet.median.toFixed(3)} (${zkRatioSet.low.toFixed(3)}–${zkRatioSet.high.toFixed(3)}) |`,
      '',
      `faultfs's cost per ZooKeeper write on its side: ${perOp('write')} write, ${perOp('fsync')} fsync and ${perOp('metadata')} metadata requests ` +
        `(group commit: one flush and one fdatasync per batch, and the stat ZooKeeper makes of its log after a write), and ${daemonUsPerOp.toFixed(1)} µs of daemon CPU.`,
      '',
      `Goal (issue 12: ZooKeeper on a healthy faultfs keeps at least 80 % of its plain-directory write throughput): ${goal ? 'met' : 'NOT met'} by the per-round medians ` +
        `(create ${pct(zkRatioCreate.median)}, 95 % interval ${pct(zkRatioCreate.low)}–${pct(zkRatioCreate.high)}; ` +
        `setData ${pct(zkRatioSet.median)}, interval ${pct(zkRatioSet.low)}–${pct(zkRatioSet.high)}). ` +
        'See docs/faultfs.md for what the ratio depends on (mostly the load on the machine) and the design choices behind these figures.',
      '',
    ].join('\n');
    process.stdout.write(section + '\n');
    // A narrowed run (--only) is for profiling: it never writes the docs.
    if (!values['no-write'] && only === undefined) {
      const file = join(root, 'docs', 'benchmarks.md');
      writeBenchSection(file, HEADING, section);
      process.stderr.write(`wrote the faultfs section of ${file}\n`);
    }
  } finally {
    for (const side of SIDES) await clients[side]?.close().catch(() => undefined);
    for (const side of SIDES) await ensembles[side]?.close().catch(() => undefined);
    await ffs.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench:faultfs: ${(e as Error).message}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
