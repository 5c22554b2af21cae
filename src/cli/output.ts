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

/** A commander parser for options that take a positive integer: a bad value is a usage error naming the option. */
export function intOption(name: string): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new CliError(`--${name} expects a positive integer, got '${v}'`);
    return n;
  };
}
