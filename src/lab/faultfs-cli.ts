/**
 * The `zkwarden lab disk …` verbs, as plain functions the lab's CLI wires (src/cli may import
 * src/lab, not the other way round): parse a fault from words, run it against a mount, and give
 * back both the JSON value and the human line. Errors stay typed: FaultFsInputError is bad
 * usage (exit 2), any other FaultFsError the environment (exit 3).
 */
import { FaultFs, FaultFsError, FaultFsInputError, normalizeRules, type FaultFsStatus, type FaultRule, type OpClass } from './faultfs.ts';

export const DISK_USAGE = 'healthy | stall | delay MS | error ERRNO | release [ERRNO] | status   [--ops read,write,fsync,metadata] [--path GLOB]';

export interface DiskOptions {
  /** Comma-separated op classes, e.g. "write,fsync". */
  ops?: string;
  /** A glob relative to the mount root. */
  path?: string;
}

/** `stall`, `delay 200`, `error EIO`, `healthy` plus --ops/--path → one rule. */
export function parseDiskFault(words: string[], opts: DiskOptions = {}): FaultRule {
  const [mode, arg, ...rest] = words;
  if (rest.length > 0) throw new FaultFsInputError('arguments', `unexpected ${JSON.stringify(rest.join(' '))} (usage: ${DISK_USAGE})`);
  const rule: Partial<FaultRule> & { mode: FaultRule['mode'] } = { mode: mode as FaultRule['mode'] };
  if (mode === 'delay') {
    if (arg === undefined || !/^\d+$/.test(arg)) throw new FaultFsInputError('delay', `expected a number of milliseconds, got ${JSON.stringify(arg ?? '')}`);
    rule.delayMs = Number(arg);
  } else if (mode === 'error') {
    if (arg === undefined) throw new FaultFsInputError('errno', 'expected an errno name such as EIO or ENOSPC');
    rule.errno = arg;
  } else if (arg !== undefined) {
    throw new FaultFsInputError('arguments', `${mode} takes no argument, got ${JSON.stringify(arg)} (usage: ${DISK_USAGE})`);
  }
  if (opts.ops !== undefined) rule.ops = opts.ops.split(',').map((s) => s.trim()) as OpClass[];
  if (opts.path !== undefined) rule.path = opts.path;
  try {
    return normalizeRules(rule as FaultRule)[0]!;
  } catch (e) {
    // Name the command-line option, not the API field.
    if (e instanceof FaultFsInputError) {
      const field = e.field
        .replace(/^rule\.(ops)(\[\d+\])?$/, '--ops')
        .replace(/^rule\.path$/, '--path')
        .replace(/^rule\.(mode)$/, 'mode')
        .replace(/^rule\.errno$/, 'errno')
        .replace(/^rule\.delayMs$/, 'delay');
      throw new FaultFsInputError(field, e.message.slice(e.field.length + 2));
    }
    throw e;
  }
}

export function describeRule(r: FaultRule): string {
  const what = r.mode === 'delay' ? `delay ${r.delayMs} ms` : r.mode === 'error' ? `error ${r.errno}` : r.mode;
  return `${what} for ${r.ops ? r.ops.join(',') : 'all ops'} on ${r.path ?? 'every path'}`;
}

export function formatDiskStatus(mountpoint: string, st: FaultFsStatus): string {
  const rules = st.rules.length ? st.rules.map((r, i) => `  ${i + 1}. ${describeRule(r)}`).join('\n') : '  healthy (no rules)';
  const counts = Object.entries(st.counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${mountpoint}: ${st.pending} pending (${st.stalled} stalled, ${st.delayed} delayed)\n${rules}\n  requests: ${counts}`;
}

export interface DiskResult {
  json: Record<string, unknown>;
  text: string;
}

/**
 * One verb against the faultfs at mountpoint: a fault (replaces the rules), `release [ERRNO]`
 * or `status`. `healthy` also answers whatever is stalled, so the disk is well afterwards.
 */
export async function runDiskCommand(mountpoint: string, words: string[], opts: DiskOptions = {}): Promise<DiskResult> {
  const verb = words[0];
  if (verb === undefined) throw new FaultFsInputError('mode', `expected one of: ${DISK_USAGE}`);
  if (verb === 'status' || verb === 'release' || verb === 'healthy') {
    if (opts.ops !== undefined || opts.path !== undefined)
      throw new FaultFsInputError(opts.ops !== undefined ? '--ops' : '--path', `${verb} takes no --ops or --path`);
  }
  const disk = FaultFs.attach(mountpoint);
  if (verb === 'status') {
    const st = await disk.status();
    return { json: { mountpoint: disk.mountpoint, ...st }, text: formatDiskStatus(disk.mountpoint, st) };
  }
  if (verb === 'release') {
    if (words.length > 2) throw new FaultFsInputError('arguments', `release takes at most one errno (usage: ${DISK_USAGE})`);
    const released = await disk.release(words[1] === undefined ? {} : { errno: words[1] });
    return {
      json: { mountpoint: disk.mountpoint, released },
      text: `${disk.mountpoint}: released ${released} stalled request(s)${words[1] ? ` with ${words[1]}` : ''}`,
    };
  }
  const rule = parseDiskFault(words, opts);
  // Every verb replaces the disk's rules; healthy (which takes no --ops/--path) clears them.
  await disk.set(rule.mode === 'healthy' ? [] : [rule]);
  const released = rule.mode === 'healthy' ? await disk.release() : 0;
  return {
    json: { mountpoint: disk.mountpoint, rules: [rule], released },
    text: `${disk.mountpoint}: ${describeRule(rule)}${released ? ` (released ${released} stalled request(s))` : ''}`,
  };
}

/** The exit code a disk verb's error means: 2 bad input, 3 environment. */
export function diskExitCode(err: unknown): number {
  return err instanceof FaultFsInputError ? 2 : err instanceof FaultFsError ? 3 : 1;
}
