/** Shared CLI plumbing: exit codes and the human/JSON split every command follows. */

export const ExitCode = {
  ok: 0,
  /** The command found what it was asked to detect (divergence, a gray failure) or an operation failed. */
  finding: 1,
  /** Bad arguments or unreadable input. */
  usage: 2,
  /** The environment is not there: ZooKeeper unreachable, a package missing. */
  environment: 3,
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
  process.stdout.write(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${BigInt.asUintN(64, v).toString(16)}` : v), 2) + '\n',
  );
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
 * The forensics commands' shared error handling (one place, so every command behaves alike):
 * errors become one line and the documented exit code; under --json they are a JSON object
 * on stdout ({"error": {...}}); output piped into `head` ends quietly when the pipe closes.
 */
export function forensicsAction<A extends unknown[]>(
  toCliError: (e: unknown) => CliError | null,
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
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
      const err = e instanceof CliError ? e : toCliError(e) ?? fsInputError(e);
      if (!err) throw e;
      if (json) {
        process.stdout.write(`${JSON.stringify({ error: { message: err.message, exitCode: err.exitCode } })}\n`);
        process.exitCode = err.exitCode;
        return;
      }
      throw err;
    }
  };
}

/** A commander parser for options that take a positive integer: a bad value is a usage error naming the option. */
export function intOption(name: string): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new CliError(`--${name} expects a positive integer, got '${v}'`);
    return n;
  };
}
