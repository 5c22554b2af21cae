/**
 * ZooKeeper's own Java client as a peer of the client benchmark. The driver
 * (bench/client/java/JavaClientDriver.java) is compiled with plain javac against Debian's
 * ZooKeeper jars into bench/client/java/build/<hash>/ (git-ignored) when that build is missing:
 * the hash covers the driver's source, zookeeper.jar and the JDK, so a change of any of them is a
 * new build. The runner sends it one slice at a time over its stdin/stdout line protocol, so its
 * slices take their turns in the same rounds as the in-process clients'.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ZOOKEEPER_JARS } from '../../src/lab/ensemble.ts';
import { CLOCK_TICK_US } from './proc.ts';

const JAVA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'java');
const SOURCE = join(JAVA_DIR, 'JavaClientDriver.java');
const BUILD_DIR = join(JAVA_DIR, 'build');

export interface JavaBuild {
  /** The java beside the javac that compiled the driver: the class files match the runtime. */
  java: string;
  classpath: string;
}

function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** Builds the driver if its build is missing; a string says why the Java client cannot run. */
export function buildJavaDriver(log: (msg: string) => void): JavaBuild | string {
  const javacOnPath = onPath('javac');
  if (!javacOnPath) return 'the Java client: javac not found (`node scripts/setup.mjs bench` installs default-jdk-headless)';
  const javac = realpathSync(javacOnPath);
  const java = join(dirname(javac), 'java');
  if (!existsSync(java)) return `the Java client: no java beside ${javac}`;
  const zkJar = join(ZOOKEEPER_JARS, 'zookeeper.jar');
  // The no-op binding keeps slf4j quiet; zookeeper.jar's manifest names the rest (jute, slf4j-api, ...).
  const nop = join(ZOOKEEPER_JARS, 'slf4j-nop.jar');
  for (const jar of [zkJar, nop]) if (!existsSync(jar)) return `the Java client: ${jar} is missing (apt-get install -y zookeeper)`;
  const jar = statSync(realpathSync(zkJar));
  const hash = createHash('sha256')
    .update(readFileSync(SOURCE))
    .update(`\0${realpathSync(zkJar)} ${jar.size} ${jar.mtimeMs}\0${javac} ${statSync(javac).mtimeMs}`)
    .digest('hex')
    .slice(0, 16);
  const out = join(BUILD_DIR, hash);
  if (!existsSync(join(out, 'JavaClientDriver.class'))) {
    log(`building the Java client's driver (javac, ${javac})`);
    mkdirSync(BUILD_DIR, { recursive: true });
    // Compiled aside and renamed into place, so a concurrent run never sees half a build.
    const tmp = `${out}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    // -implicit:none and an explicit source path: javac would otherwise compile sources it finds
    // in the jars on the class path (findbugs-annotations ships some).
    const r = spawnSync(javac, ['-d', tmp, '-implicit:none', '-sourcepath', JAVA_DIR, '-Xlint:all,-path', '-cp', zkJar, SOURCE], {
      encoding: 'utf8',
    });
    if (r.status !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      return `the Java client: javac failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`;
    }
    try {
      renameSync(tmp, out);
    } catch (e) {
      // Another run finished the same build first.
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(out, 'JavaClientDriver.class'))) throw e;
    }
    for (const old of readdirSync(BUILD_DIR)) {
      if (old !== hash && !old.includes('.tmp-')) rmSync(join(BUILD_DIR, old), { recursive: true, force: true });
    }
  }
  return { java, classpath: [out, zkJar, nop].join(':') };
}

export interface SliceRequest {
  op: 'create' | 'getData' | 'setData' | 'delete';
  base: string;
  from: number;
  to: number;
  concurrency: number;
  dataBytes: number;
}

export interface SliceResult {
  wallMs: number;
  /** When the slice's first request was sent, in ms on the monotonic clock. */
  t0Ms: number;
  /** The JVM's CPU time (all threads) over the slice, in µs; 10 ms resolution. */
  cpuUs: number;
  /** Per request, in index order: latency in ms, and start in ms on the monotonic clock (CLOCK_MONOTONIC, as process.hrtime). */
  latencies: number[];
  starts: number[];
}

/** One JVM running the driver; commands are answered in order, one line each. */
export class JavaDriver {
  /** From the driver's "ready" line: ZooKeeper's version, the JVM, its garbage collectors. */
  info = { zookeeper: '?', jvm: '?', gcs: '?' };
  private readonly pending: { resolve(line: string): void; reject(e: Error): void; timer: NodeJS.Timeout }[] = [];
  private stderr = '';
  private exited = false;
  /** No JVM outlives the runner, even when it fails in the middle of a slice. */
  private readonly killOnExit = (): void => {
    this.child.kill('SIGKILL');
  };

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    process.once('exit', this.killOnExit);
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.once('error', (e) => this.fail(`could not start (${e.message})`));
    // Writing to a JVM that has died fails with EPIPE; its exit is what gets reported.
    child.stdin.on('error', () => {});
    child.once('exit', (code, signal) => {
      this.exited = true;
      process.removeListener('exit', this.killOnExit);
      this.fail(`exited (${signal ?? `code ${code}`})`);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const p = this.pending.shift();
      if (!p) return;
      clearTimeout(p.timer);
      p.resolve(line);
    });
  }

  /** Starts the JVM with its default settings (heap, collector, JIT): the client as its users run it. */
  static async start(build: JavaBuild, timeoutMs = 60_000): Promise<JavaDriver> {
    const d = new JavaDriver(spawn(build.java, ['-cp', build.classpath, 'JavaClientDriver'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      const ready = await d.answer(timeoutMs, 'start');
      if (!ready.startsWith('ready\t')) throw new Error(`Java client driver: expected "ready", got ${ready.slice(0, 200)}`);
      const [, zookeeper = '?', jvm = '?', gcs = '?'] = ready.split('\t');
      d.info = { zookeeper, jvm, gcs };
      return d;
    } catch (e) {
      d.child.kill('SIGKILL');
      throw e;
    }
  }

  private fail(why: string): void {
    const tail = this.stderr.trim().split('\n').slice(-3).join(' / ');
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new Error(`Java client driver ${why}${tail ? `: ${tail}` : ''}`));
    }
  }

  /** The next line the driver prints. */
  private answer(timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.pending.findIndex((p) => p.timer === timer);
        if (i >= 0) this.pending.splice(i, 1);
        // A late answer would be taken for the next command's: this driver is done.
        this.child.kill('SIGKILL');
        reject(new Error(`Java client driver: no answer to ${what} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.push({ resolve, reject, timer });
    });
  }

  /** Sends one command; resolves with the words after "ok", rejects on "error ...". */
  private async command(line: string, timeoutMs: number): Promise<string[]> {
    if (this.exited) throw new Error(`Java client driver is not running${this.stderr.trim() ? `: ${this.stderr.trim()}` : ''}`);
    const answer = this.answer(timeoutMs, line.split(' ')[0]);
    this.child.stdin.write(line + '\n');
    const reply = await answer;
    if (reply === 'ok' || reply.startsWith('ok ')) return reply.split(' ').slice(1);
    throw new Error(`Java client: ${reply.replace(/^error /, '')}`);
  }

  async connect(connectString: string, sessionMs: number): Promise<void> {
    await this.command(`connect ${connectString} ${sessionMs}`, 30_000);
  }

  async run(s: SliceRequest): Promise<SliceResult> {
    const n = s.to - s.from;
    // Generous: a slice at 1 outstanding on a loaded machine is a few ms per request.
    const words = await this.command(`run ${s.op} ${s.base} ${s.from} ${s.to} ${s.concurrency} ${s.dataBytes}`, 60_000 + 20 * n);
    const v = words.map(Number);
    if (v.length !== 3 + 2 * n || v.some((x) => !Number.isFinite(x))) throw new Error(`Java client: a malformed reply to run (${words.length} words for ${n} requests)`);
    const t0 = v[2];
    const latencies = new Array<number>(n);
    const starts = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      latencies[i] = v[3 + 2 * i] / 1e6;
      starts[i] = (t0 + v[4 + 2 * i]) / 1e6;
    }
    return { wallMs: v[0] / 1e6, t0Ms: t0 / 1e6, cpuUs: v[1] * CLOCK_TICK_US, latencies, starts };
  }

  /** Closes the session, then the JVM (it exits at the end of its stdin); killed if it does not. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      await this.command('close', 20_000);
    } finally {
      this.child.stdin.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
  }
}
