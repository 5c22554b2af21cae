/** Shared CLI plumbing: exit codes and the human/JSON split every command follows. */
import type { Command } from 'commander';
import { bigintReplacer } from '../zk/index.ts';

export const ExitCode = {
  ok: 0,
  /** The command found what it was asked to detect (divergence, a gray failure) or an operation failed. */
  finding: 1,
  /** Bad arguments or unreadable input. */
  usage: 2,
  /** The environment is not there: ZooKeeper unreachable, a package missing. */
  environment: 3,
  /** A bug in zkwarden: an error no command expected (EX_SOFTWARE of sysexits.h); `--debug` prints its stack. */
  internal: 70,
} as const;

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.usage) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, bigintReplacer, 2) + '\n');
}

/** Progress and notes go to stderr so stdout stays parseable. */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Node's fs errors that mean bad input: the path is named, one line, exit 2. */
const INPUT_ERRNOS: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'ELOOP', 'EISDIR', 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG']);

/** A one-line CliError for an fs error: "PATH: EACCES: permission denied". */
export function fsInputError(e: unknown): CliError | null {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.code !== 'string' || !INPUT_ERRNOS.has(err.code)) return null;
  const msg = err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
  return new CliError(`${err.path ?? ''}${err.path ? ': ' : ''}${err.code}: ${msg}`, ExitCode.usage);
}

/**
 * A command's shared error handling (one place, so every command behaves alike):
 * errors become one line and the documented exit code; under --json they are a JSON object
 * on stdout ({"error": {...}}); output piped into `head` ends quietly when the pipe closes.
 */
export function cliAction<A extends unknown[]>(toCliError: (e: unknown) => CliError | null, fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok);
      throw e;
    });
    const opts = args.find((a, i) => i === args.length - 2 && a && typeof a === 'object') as { json?: boolean; format?: string } | undefined;
    const json = !!opts?.json || opts?.format === 'json';
    try {
      await fn(...args);
    } catch (e) {
      const err = e instanceof CliError ? e : (toCliError(e) ?? fsInputError(e));
      if (!err) throw e;
      if (json) {
        writeJsonError(err.message, err.exitCode);
        process.exitCode = err.exitCode;
        return;
      }
      throw err;
    }
  };
}

/** A positive integer option's value (`name` without the dashes); a bad value is a usage error naming the option. */
export function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new CliError(`--${name} expects a positive integer, got '${v}'`);
  return n;
}

/**
 * The same as a commander parser, checked while the command line is read. (Inside an action,
 * positiveInt's error is under cliAction, so a JSON error under --json wherever --json stands.)
 */
export function intOption(name: string): (v: string) => number {
  return (v: string): number => positiveInt(name, v);
}

/** A zxid (an epoch is one too) as ZooKeeper prints them (0x hex) or decimal. */
export function zxidOption(name: string, v: string): number {
  const s = v.trim().toLowerCase();
  const n = s.startsWith('0x') ? parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < 0 || (s.startsWith('0x') && !/^0x[0-9a-f]+$/.test(s))) {
    throw new CliError(`--${name} expects a zxid such as 0x100000025 or a decimal number, got '${v}'`);
  }
  return n;
}

/** The error object a command prints on stdout under --json: {"error": {"message", "exitCode"}}. */
export function writeJsonError(message: string, exitCode: number): void {
  process.stdout.write(`${JSON.stringify({ error: { message, exitCode } })}\n`);
}

/** Commands whose usage errors (Commander's own) become JSON errors when --json was given. */
const jsonUsageCommands = new Set<Command>();
let usageErrorAsJson = false;

function askedForJson(c: Command): boolean {
  return c.getOptionValue('json') === true || (c.getOptionValueSource('format') === 'cli' && c.getOptionValue('format') === 'json');
}

/**
 * Commander's own usage errors (unknown option, too many arguments, a missing argument) under
 * `--json` (or `--format json`): the JSON error object on stdout instead of the text and help on
 * stderr; the exit code stays 2 (main.ts maps every CommanderError to it). Options parsed before
 * the error are known by then — Commander reads every known option before it reports an unknown
 * one — so the command that asked for JSON is the one whose `json` option is set.
 *
 * Any command group can call this on its commands (subcommands included).
 */
export function jsonUsageErrors(cmd: Command): void {
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(cmd)) {
    jsonUsageCommands.add(c);
    const out = c.configureOutput();
    if ((out.outputError as { jsonAware?: boolean } | undefined)?.jsonAware) continue;
    const outputError = out.outputError ?? ((str: string, write: (s: string) => void): void => write(str));
    const writeErr = out.writeErr ?? ((str: string): void => void process.stderr.write(str));
    const jsonAware = Object.assign(
      (str: string, write: (s: string) => void): void => {
        if (![...jsonUsageCommands].some(askedForJson)) return outputError(str, write);
        usageErrorAsJson = true;
        writeJsonError(
          str
            .trim()
            .replace(/^error: /, '')
            .replace(/\s*\n\s*/g, ' '),
          ExitCode.usage,
        );
      },
      { jsonAware: true },
    );
    // The help Commander prints after an error would follow the JSON: not under --json.
    c.configureOutput({
      outputError: jsonAware,
      writeErr: (str: string) => {
        if (!usageErrorAsJson) writeErr(str);
      },
    });
  }
}
