/** Shared by the security tests: the CLI as a child process with its own environment, and the leak scan. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runBench } from '../bench/run-bench.ts';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The child's argv as the kernel shows it to every user (/proc/PID/cmdline), read while it ran. */
  cmdline: string;
}

/**
 * Runs `zkwarden ARGS` with `env` added to a minimal environment (not the test's own, so a
 * secret given to one child is not inherited by the servers or the next child).
 */
export async function runCliWithEnv(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  let cmdline = [process.execPath, ...args].join(' ');
  const r = await runBench(join('src', 'cli', 'main.ts'), args, timeoutMs, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
    onSpawn: (pid) => {
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
      } catch {
        // Exited already: the argv we gave is then what it was.
      }
    },
  });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr, cmdline };
}

/** Every regular file under `dir` (symlinks not followed). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

export interface Secret {
  what: string;
  /** Every form it could be written in (text, hex, base64, raw bytes). */
  forms: Buffer[];
}

export function textSecret(what: string, value: string): Secret {
  return { what, forms: [Buffer.from(value, 'utf8')] };
}

export function bytesSecret(what: string, value: Buffer): Secret {
  return {
    what,
    forms: [Buffer.from(value), Buffer.from(value.toString('hex')), Buffer.from(value.toString('hex').toUpperCase()), Buffer.from(value.toString('base64'))],
  };
}

/**
 * A private key in every form it could leak in: its PEM text, its base64 body on one line, its
 * DER bytes, and each of its base64 lines alone (one line of a key is already a leak).
 */
export function pemSecret(what: string, pem: string): Secret {
  const m = /-----BEGIN [^-]+-----([\s\S]+?)-----END/.exec(pem);
  if (!m) throw new Error(`${what}: not PEM`);
  const lines = m[1]!.split(/\s+/).filter((l) => l.length >= 32);
  const body = lines.join('');
  return { what, forms: [Buffer.from(pem.trim()), Buffer.from(body), Buffer.from(body, 'base64'), ...lines.map((l) => Buffer.from(l))] };
}

/** Where each secret appears: `[where, what]` pairs; empty means nothing leaked. */
export function findLeaks(sources: { where: string; content: Buffer }[], secrets: Secret[]): [string, string][] {
  const hits: [string, string][] = [];
  for (const { where, content } of sources) {
    for (const s of secrets) if (s.forms.some((f) => f.length > 0 && content.includes(f))) hits.push([where, s.what]);
  }
  return hits;
}

/** The files under `dirs`, minus `excluded` (exact paths), as leak-scan sources. */
export function fileSources(dirs: string[], excluded: string[]): { where: string; content: Buffer }[] {
  const skip = new Set(excluded.map((p) => resolve(p)));
  return dirs
    .flatMap((d) => filesUnder(d))
    .filter((f) => !skip.has(resolve(f)))
    .map((f) => ({ where: f, content: readFileSync(f) }));
}

/** ZooKeeper's session password for a session id: java.util.Random(id ^ 0xB3415C00).nextBytes(16) (ZooKeeperServer.generatePasswd). */
export function zookeeperSessionPassword(sessionId: bigint): Buffer {
  const MULT = 0x5deece66dn;
  const MASK = (1n << 48n) - 1n;
  let seed = (BigInt.asIntN(64, sessionId) ^ 0xb3415c00n ^ MULT) & MASK;
  const nextInt = (): number => {
    seed = (seed * MULT + 0xbn) & MASK;
    return Number(BigInt.asIntN(32, seed >> 16n));
  };
  const out = Buffer.alloc(16);
  for (let i = 0; i < out.length;) {
    let rnd = nextInt();
    for (let n = Math.min(out.length - i, 4); n-- > 0; rnd >>= 8) out[i++] = rnd & 0xff;
  }
  return out;
}
