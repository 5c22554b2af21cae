/**
 * Client per-request cost: what a client spends itself on one request at 1 outstanding, where
 * throughput is 1 / round trip and every microsecond on the client's own path (API call to socket
 * write, socket read to the caller's continuation) is a microsecond of latency.
 *
 *   node --import tsx bench/client/cost.ts [--ops 3000] [--rounds 6] [--clients zkwarden,java]
 *                                          [--callgrind] [--cg-ops 1000,4000] [--cg-repeat 3] [--no-write]
 *
 * Two measurements, against the same follower of the same ensemble as run.ts (ensemble.ts):
 *
 * - CPU per request by thread (default): zkwarden in this process and ZooKeeper's Java client in
 *   its JVM (bench/client/java), `--rounds` rounds of one `--ops`-request slice each, the order of
 *   the clients alternating. Each thread's run time, run-queue wait and timeslices come from
 *   /proc/PID/task/TID/schedstat (nanoseconds). The request path is the thread(s) every request
 *   passes through: zkwarden's main thread (the event loop); the Java client's SendThread (socket)
 *   and EventThread (callbacks). Other threads (garbage collection, JIT compilers, ...) are counted
 *   apart. At 1 outstanding the request path's CPU per request is serial with the round trip.
 * - Instructions per request (--callgrind): zkwarden in a process of its own (node-driver.ts, the
 *   runner's closed loop) under valgrind's callgrind, its counters zeroed before and dumped after
 *   slices of the two `--cg-ops` sizes; the difference of the counts over the difference of the
 *   sizes cancels what a slice does once. It counts every thread of that process and does not move
 *   with the load on the machine, as CPU time does (a thread woken after other work ran finds its
 *   caches cold): the figure for comparing two versions of the client on a busy machine.
 *
 * Results go to stdout and, unless --no-write, to docs/benchmarks.md under "## Client per-request cost".
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient } from '../../src/zk/index.ts';
import { writeBenchSection } from '../docs-section.ts';
import { ALL_OPS, JAVA, SESSION_MS, opFn, zkwarden, type OpName } from './clients.ts';
import { drive } from './drive.ts';
import { BENCH_ENSEMBLE } from './ensemble.ts';
import { buildJavaDriver, javaCommand } from './java-build.ts';
import { SliceDriver } from './slice-driver.ts';
import { medianOf } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const DATA_BYTES = 128;

class UsageError extends Error {}

/** One thread's counters from /proc/PID/task/TID/schedstat: ns on a CPU, ns waiting for one, timeslices. */
interface ThreadTimes {
  comm: string;
  runNs: number;
  waitNs: number;
  slices: number;
}

function threadTimes(pid: number): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const [runNs, waitNs, slices] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(' ').map(Number);
      out.set(Number(t), { comm, runNs, waitNs, slices });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** Per request over one slice: the request path's threads, the others, and the round trip. */
interface SliceCost {
  roundTripUs: number;
  pathCpuUs: number;
  otherCpuUs: number;
  pathWaitUs: number;
  pathSlices: number;
}

function sliceCost(
  before: Map<number, ThreadTimes>,
  after: Map<number, ThreadTimes>,
  onPath: (tid: number, comm: string) => boolean,
  n: number,
  wallMs: number,
): SliceCost {
  let path = 0;
  let other = 0;
  let wait = 0;
  let slices = 0;
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { comm: a.comm, runNs: 0, waitNs: 0, slices: 0 };
    if (onPath(tid, a.comm)) {
      path += a.runNs - b.runNs;
      wait += a.waitNs - b.waitNs;
      slices += a.slices - b.slices;
    } else {
      other += a.runNs - b.runNs;
    }
  }
  return { roundTripUs: (wallMs * 1000) / n, pathCpuUs: path / n / 1000, otherCpuUs: other / n / 1000, pathWaitUs: wait / n / 1000, pathSlices: slices / n };
}

/** A client measured by thread: it runs slices, and says which of its threads are the request path. */
interface Measured {
  name: string;
  pid: number;
  onPath(tid: number, comm: string): boolean;
  run(op: OpName, base: string, from: number, to: number): Promise<number>;
  close(): Promise<void>;
}

async function zkwardenHere(cs: string, data: Buffer): Promise<Measured> {
  const a = zkwarden();
  await a.connect(cs);
  return {
    name: 'zkwarden',
    pid: process.pid,
    onPath: (tid) => tid === process.pid,
    async run(op, base, from, to) {
      const [wall] = await drive(from, to, 1, opFn(a, op, base, data), [], []);
      return wall;
    },
    close: () => a.close(),
  };
}

async function javaThere(cs: string): Promise<Measured | string> {
  const build = buildJavaDriver((msg) => process.stderr.write(`${msg}\n`));
  if (typeof build === 'string') return build;
  const d = await SliceDriver.start(JAVA, javaCommand(build));
  await d.connect(cs, SESSION_MS);
  return {
    name: JAVA,
    pid: d.pid,
    // ClientCnxn's two threads, "main-SendThread(host:port)" and "main-EventThread" (comm keeps 15 characters).
    onPath: (_tid, comm) => comm.startsWith('main-SendThread') || comm.startsWith('main-EventThrea'),
    async run(op, base, from, to) {
      return (await d.run({ op, base, from, to, concurrency: 1, dataBytes: DATA_BYTES })).wallMs;
    },
    close: () => d.close(),
  };
}

/** Instructions per thread since the counters were last zeroed: the summary lines of a callgrind dump (one file per thread, the main thread first). */
let dumps = 0;
function callgrind(pid: number, command: 'zero' | 'dump', dir: string): { main: number; others: number } {
  execFileSync('callgrind_control', [command === 'zero' ? '-z' : '-d', String(pid)], { stdio: 'ignore', timeout: 60_000 });
  if (command === 'zero') return { main: 0, others: 0 };
  const n = ++dumps;
  let main = 0;
  let others = 0;
  for (const f of readdirSync(dir).filter((x) => x.startsWith(`cg.${pid}.${n}-`))) {
    const m = /^summary:\s+(\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    if (!m) throw new Error(`no summary line in callgrind dump ${f}`);
    if (f.endsWith('-01')) main = Number(m[1]);
    else others += Number(m[1]);
  }
  return { main, others };
}

/** Per op, per slice: the main thread's instructions per request and the other threads'. */
type Counts = Map<OpName, { main: number; others: number }[]>;

/** `keep`: a directory for the dumps (for callgrind_annotate), else a temporary one, removed at the end. */
async function instructionsPerRequest(
  cs: string,
  setup: ReturnType<typeof createClient>,
  n: number,
  repeats: number,
  keep: string | undefined,
): Promise<Counts> {
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'zkw-cost-cg-'));
  if (keep) mkdirSync(keep, { recursive: true });
  const script = join(here, 'node-driver.ts');
  const d = await SliceDriver.start(
    'zkwarden under callgrind',
    [
      'valgrind',
      ['--tool=callgrind', '--quiet', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath, '--import', 'tsx', script],
    ],
    600_000,
  );
  const out: Counts = new Map(ALL_OPS.map((o) => [o, []]));
  try {
    await d.connect(cs, SESSION_MS);
    // The JIT tiers up on executed code, not on time: the same warm-up as in CPU mode.
    await setup.create('/cost/cg-warm');
    for (const op of ALL_OPS) {
      process.stderr.write(`callgrind: warm-up ${op}\n`);
      await d.run({ op, base: '/cost/cg-warm', from: 0, to: Math.max(n, 5000), concurrency: 1, dataBytes: DATA_BYTES });
    }
    await setup.create('/cost/cg');
    for (const op of ALL_OPS) {
      for (let r = 0; r < repeats; r++) {
        callgrind(d.pid, 'zero', dir);
        await d.run({ op, base: '/cost/cg', from: r * n, to: (r + 1) * n, concurrency: 1, dataBytes: DATA_BYTES });
        const c = callgrind(d.pid, 'dump', dir);
        out.get(op)!.push({ main: c.main / n, others: c.others / n });
        process.stderr.write(
          `callgrind ${op} ${r + 1}/${repeats}: ${Math.round(c.main / n)} instructions/request on the main thread, ${Math.round(c.others / n)} on the others\n`,
        );
      }
    }
  } finally {
    await d.close().catch(() => undefined);
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

function usage(): never {
  throw new UsageError(
    'usage: cost.ts [--ops N] [--rounds N] [--clients zkwarden,java] [--callgrind] [--cg-ops N] [--cg-repeat N] [--cg-dir DIR] [--no-write]',
  );
}

async function main(): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      options: {
        ops: { type: 'string' },
        rounds: { type: 'string' },
        clients: { type: 'string' },
        callgrind: { type: 'boolean' },
        'cg-ops': { type: 'string' },
        'cg-repeat': { type: 'string' },
        'cg-dir': { type: 'string' },
        'no-write': { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch {
    usage();
  }
  const int = (name: string, def: number): number => {
    const v = values[name] === undefined ? def : Number(values[name]);
    if (!Number.isInteger(v) || v <= 0) throw new UsageError(`--${name}: expected a positive integer, got ${String(values[name])}`);
    return v;
  };
  const n = int('ops', 3000);
  const rounds = int('rounds', 6);
  const cgRepeat = int('cg-repeat', 5);
  const cgOps = int('cg-ops', 2000);
  const names = String(values.clients ?? 'zkwarden,java').split(',');
  for (const c of names) if (c !== 'zkwarden' && c !== 'java') throw new UsageError(`--clients: unknown client ${c} (expected zkwarden, java)`);
  const withCallgrind = values.callgrind === true;
  const data = Buffer.alloc(DATA_BYTES, 0x61);

  const loadBefore = loadavg()[0];
  const ens = await Ensemble.start(BENCH_ENSEMBLE);
  const results = new Map<string, Map<OpName, SliceCost[]>>();
  let instructions: Counts | null = null;
  const skipped: string[] = [];
  try {
    const leader = await ens.leaderId();
    const target = ens.servers.find((s) => s.id !== leader)!;
    const cs = ens.address(target.id);
    const setup = createClient(cs, { sessionTimeoutMs: SESSION_MS });
    await setup.connect();
    await setup.create('/cost');
    const clients: Measured[] = [];
    for (const c of names) {
      const m = c === 'zkwarden' ? await zkwardenHere(cs, data) : await javaThere(cs);
      if (typeof m === 'string') skipped.push(m);
      else clients.push(m);
    }
    for (const [i, c] of clients.entries()) {
      await setup.create(`/cost/warm${i}`);
      await setup.create(`/cost/c${i}`);
      for (const op of ALL_OPS) await c.run(op, `/cost/warm${i}`, 0, Math.max(n, 5000));
      results.set(c.name, new Map(ALL_OPS.map((o) => [o, []])));
    }
    for (const op of ALL_OPS) {
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? clients : [...clients].reverse();
        for (const c of order) {
          const i = clients.indexOf(c);
          const before = threadTimes(c.pid);
          const wall = await c.run(op, `/cost/c${i}`, r * n, (r + 1) * n);
          const cost = sliceCost(before, threadTimes(c.pid), c.onPath, n, wall);
          results.get(c.name)!.get(op)!.push(cost);
        }
      }
      for (const c of clients) {
        const xs = results.get(c.name)!.get(op)!;
        const med = (k: keyof SliceCost): string => medianOf(xs.map((x) => x[k])).toFixed(1);
        process.stderr.write(
          `${op} ${c.name}: round trip ${med('roundTripUs')} µs, request path ${med('pathCpuUs')} µs CPU, other threads ${med('otherCpuUs')} µs, run-queue wait ${med('pathWaitUs')} µs\n`,
        );
      }
    }
    for (const c of clients) await c.close();
    if (withCallgrind) instructions = await instructionsPerRequest(cs, setup, cgOps, cgRepeat, values['cg-dir'] as string | undefined);
    await setup.close();
  } finally {
    await ens.close();
  }

  const command = `node --import tsx bench/client/cost.ts --ops ${n} --rounds ${rounds} --clients ${names.join(',')}${withCallgrind ? ` --callgrind --cg-ops ${cgOps} --cg-repeat ${cgRepeat}` : ''}`;
  const lines: string[] = [];
  lines.push('## Client per-request cost', '');
  lines.push(`\`${command}\` (bench/client/cost.ts), ${new Date().toISOString().slice(0, 10)}.`, '');
  lines.push(
    'What a client spends itself on one request at 1 outstanding, where throughput is 1 / round trip and every ' +
      "microsecond of the client's own path (from the call to the socket write, from the socket read to the caller's " +
      'continuation) is a microsecond of latency. Same ensemble and follower as the Client section; ' +
      `${n.toLocaleString('en-US')} requests per slice, ${rounds} rounds per op, the order of the clients alternating; ` +
      `${DATA_BYTES}-byte values; every figure is the median over the rounds. CPU by thread from /proc/PID/task/TID/schedstat ` +
      "(nanoseconds): the request path is the thread(s) every request passes through (zkwarden: the event loop's thread; " +
      'the Java client: its SendThread, which owns the socket, and its EventThread, which runs the callbacks); other threads ' +
      "(garbage collectors, JIT compilers) are counted apart; run-queue wait is the time the request path's threads were " +
      `ready but not running. Machine: ${cpus().length} cores, Node ${process.version}, 1-minute load average ` +
      `${loadBefore.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end.`,
    '',
  );
  lines.push('| op | client | round trip µs | request path CPU µs/request | other threads CPU µs/request | run-queue wait µs/request | timeslices/request |');
  lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const op of ALL_OPS) {
    for (const [name, byOp] of results) {
      const xs = byOp.get(op)!;
      const med = (k: keyof SliceCost, d = 1): string => medianOf(xs.map((x) => x[k])).toFixed(d);
      lines.push(
        `| ${op} | ${name} | ${med('roundTripUs', 0)} | ${med('pathCpuUs')} | ${med('otherCpuUs')} | ${med('pathWaitUs')} | ${med('pathSlices', 2)} |`,
      );
    }
  }
  if (skipped.length > 0) lines.push('', `Not measured: ${skipped.join('; ')}.`);
  if (instructions) {
    lines.push(
      '',
      `Instructions per request, zkwarden alone in a process of its own (node-driver.ts: the runner's closed loop, whose ` +
        `bookkeeping per request, its timing and its reply to the runner, is included) under valgrind's callgrind: counters ` +
        `zeroed before and dumped after each of ${cgRepeat} slices of ${cgOps.toLocaleString('en-US')} requests per op; the main ` +
        "thread (the event loop: every request's path, and the garbage collector's pauses) apart from the other threads (JIT " +
        'compilers, concurrent marking); median over the slices, min–max beside it. Unlike CPU time, these counts do not move ' +
        'with the load on the machine (valgrind runs the threads one at a time, so the client is slower but does the same work).',
      '',
      '| op | main thread instructions/request | min–max | other threads instructions/request |',
      '| --- | ---: | --- | ---: |',
    );
    const k = (v: number): string => Math.round(v).toLocaleString('en-US');
    for (const op of ALL_OPS) {
      const xs = instructions.get(op)!;
      const main = xs.map((x) => x.main);
      lines.push(`| ${op} | ${k(medianOf(main))} | ${k(Math.min(...main))}–${k(Math.max(...main))} | ${k(medianOf(xs.map((x) => x.others)))} |`);
    }
  }
  const section = lines.join('\n') + '\n';
  process.stdout.write(`\n${section}`);
  if (values['no-write'] !== true) writeBenchSection(join(root, 'docs', 'benchmarks.md'), '## Client per-request cost', section);
}

main().catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`cost.ts: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`cost.ts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
