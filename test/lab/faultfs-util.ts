/** Shared by the faultfs tests: scratch mounts under the dev prefix, and process facts from /proc. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultFs, releaseMount } from '../../src/lab/faultfs.ts';

export interface Scratch {
  dir: string;
  backing: string;
  mountpoint: string;
}

/** A backing dir and a mount point under one temporary directory named with the faultfs dev prefix. */
export function scratch(): Scratch {
  const dir = mkdtempSync(join(tmpdir(), 'zkw-dev-faultfs-'));
  const backing = join(dir, 'backing');
  const mountpoint = join(dir, 'mnt');
  mkdirSync(backing);
  mkdirSync(mountpoint);
  return { dir, backing, mountpoint };
}

export async function mountScratch(): Promise<{ s: Scratch; fs: FaultFs }> {
  const s = scratch();
  const fs = await FaultFs.mount({ backing: s.backing, mountpoint: s.mountpoint });
  return { s, fs };
}

/** Unmounts (works while stalled) and removes the scratch directory; the mount is gone first, so rm never walks it. */
export async function dropScratch(s: Scratch | undefined, fs: FaultFs | undefined): Promise<void> {
  if (fs) await fs.unmount();
  if (s) {
    await releaseMount(s.mountpoint);
    rmSync(s.dir, { recursive: true, force: true });
  }
}

/** The state letter of /proc/PID/stat (R, S, D, T, Z), or null once the process is gone. */
export function procState(pid: number): string | null {
  try {
    const stat = readText(`/proc/${pid}/stat`);
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return null;
  }
}

/** True when SIGKILL is pending on the process (SigPnd or ShdPnd has bit 9): delivered, not acted on. */
export function sigkillPending(pid: number): boolean {
  const status = readText(`/proc/${pid}/status`);
  return ['SigPnd', 'ShdPnd'].some((k) => {
    const m = new RegExp(`^${k}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 8n)) !== 0n;
  });
}

function readText(file: string): string {
  return readFileSync(file, 'utf8');
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** The exit, waited for at most 30 s: a request the daemon never answers must fail the test, not hang it. */
  exited: Promise<Exit>;
}

/** A child (dd, setpriv …) whose exit is awaited as a fact. */
export function run(cmd: string, args: string[]): Spawned {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  const exited = new Promise<Exit>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')} (pid ${pid}) did not exit within 30 s (state ${procState(pid)})`)), 30_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
  exited.catch(() => undefined); // a test that never awaits it must not crash on the rejection
  return { child, pid, exited };
}
