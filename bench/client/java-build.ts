/**
 * The set-up of the client benchmark's Java peer: its driver (bench/client/java/JavaClientDriver.java)
 * is compiled with plain javac against Debian's ZooKeeper jars into
 * bench/client/java/build/<hash>/ (git-ignored) when that build is missing: the hash covers the
 * driver's source, zookeeper.jar and the JDK, so a change of any of them is a new build.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZOOKEEPER_JARS } from '../../src/lab/ensemble.ts';

const JAVA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'java');
const SOURCE = join(JAVA_DIR, 'JavaClientDriver.java');
const BUILD_DIR = join(JAVA_DIR, 'build');

export interface JavaBuild {
  /** The java beside the javac that compiled the driver: the class files match the runtime. */
  java: string;
  classpath: string;
}

/** How to start the driver: the JVM with its default settings (heap, collector, JIT), the client as its users run it. */
export function javaCommand(b: JavaBuild): [string, string[]] {
  return [b.java, ['-cp', b.classpath, 'JavaClientDriver']];
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
