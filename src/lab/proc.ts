/**
 * What Linux's /proc says about a process: its scheduler state, CPU time, start time, cgroups.
 * The one reader of /proc/PID/stat in the project (the ensemble and the lab both ask it).
 *
 * Nothing here touches a lab node's disk, so it answers even when every process of a node is
 * stuck on a stalled file system — which is when the answer matters.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * A process or thread state as /proc shows it: R running, S interruptible sleep, D uninterruptible
 * (disk) sleep, T stopped by a signal, t traced, Z zombie, X dead, I idle kernel thread.
 */
export type ProcState = 'R' | 'S' | 'D' | 'T' | 't' | 'Z' | 'X' | 'I' | 'P' | 'W' | 'K';

export interface ProcStat {
  pid: number;
  comm: string;
  state: ProcState;
  ppid: number;
  /** Its process group. */
  pgrp: number;
  /** User and system CPU time of the whole process (every thread), in clock ticks. */
  utimeTicks: number;
  stimeTicks: number;
  /** Start time after boot in clock ticks: with the pid, it names one process for good (pids are reused). */
  startTicks: number;
}

/** The fields of a /proc/PID/stat (or task/TID/stat) line; null when the process is gone. */
export function readStat(pid: number, tid?: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return parseStat(text);
}

/** Parses one stat line. The command name is in parentheses and may itself hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // Fields after the name, numbered as in proc(5) from field 3 (state).
  const rest = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  if (rest.length < 20) return null;
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] as ProcState,
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    utimeTicks: Number(rest[11]),
    stimeTicks: Number(rest[12]),
    startTicks: Number(rest[19]),
  };
}

export function processState(pid: number): ProcState | null {
  return readStat(pid)?.state ?? null;
}

/** Every thread's state; a JVM's main thread sleeps while another is stuck in D. */
export function threadStates(pid: number): Map<number, ProcState> {
  const out = new Map<number, ProcState>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const st = readStat(pid, Number(tid));
    if (st) out.set(Number(tid), st.state);
  }
  return out;
}

/** True when every thread of the process is stopped (T) or gone. */
export function allThreadsStopped(pid: number): boolean {
  for (const state of threadStates(pid).values()) {
    if (state !== 'T' && state !== 't' && state !== 'Z' && state !== 'X') return false;
  }
  return true;
}

/** Alive and not a zombie (a zombie still answers kill(0)). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but is not ours to signal.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const state = processState(pid);
  return state !== null && state !== 'Z' && state !== 'X';
}

let clockTicks: number | undefined;

/** sysconf(_SC_CLK_TCK), asked once. */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout?.trim());
    clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** CPU time (user + system, every thread) the process has used so far, in ms; null when gone. */
export function cpuTimeMs(pid: number): number | null {
  const st = readStat(pid);
  if (!st) return null;
  return ((st.utimeTicks + st.stimeTicks) * 1000) / clockTicksPerSecond();
}

/** The process named by pid and start time, so a recorded owner is not confused with a reused pid. */
export interface ProcessIdentity {
  pid: number;
  startTicks: number;
}

export function identify(pid: number): ProcessIdentity | null {
  const st = readStat(pid);
  return st ? { pid, startTicks: st.startTicks } : null;
}

export function identityAlive(id: ProcessIdentity): boolean {
  const st = readStat(id.pid);
  return st !== null && st.startTicks === id.startTicks && st.state !== 'Z' && st.state !== 'X';
}

/** The cgroup v1 path of the process in one controller (e.g. 'cpu'), or null when gone. */
export function cgroupOf(pid: number, controller: string): string | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers !== undefined && path !== undefined && controllers.split(',').includes(controller)) return path;
  }
  return null;
}

/** Sends a signal; false when the process is already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

const READ_CMDLINES = 'for p; do printf "%s " "$p"; tr "\\0" " " < "/proc/$p/cmdline" 2>/dev/null; echo; done';

/**
 * The command lines of processes (arguments joined by spaces), read by a child bounded in time:
 * reading /proc/PID/cmdline takes the process's memory-map lock, which a process stuck in a page
 * fault on a stalled mount can hold, and this process must never wait on a lab disk. A process
 * whose command line is not read in time (or a kernel thread) gets its command name in brackets.
 */
export async function commandLines(pids: number[], timeoutMs = 2000): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (pids.length > 0) {
    const stdout = await new Promise<string>((resolve) => {
      execFile(
        '/bin/sh',
        ['-c', READ_CMDLINES, 'zkwarden-cmdlines', ...pids.map(String)],
        { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' },
        (_err, text) => resolve(text ?? ''),
      );
    });
    for (const line of stdout.split('\n')) {
      const m = /^(\d+) (.*\S)\s*$/.exec(line);
      if (m) out.set(Number(m[1]), m[2]!);
    }
  }
  for (const pid of pids) if (!out.has(pid)) out.set(pid, `[${readStat(pid)?.comm ?? '?'}]`);
  return out;
}
