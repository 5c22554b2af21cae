/** Typed errors of the guard. Each names the option, line or field at fault and what was expected. */

/** A guard or watchdog option is missing, malformed, or breaks the timing model (docs/guard.md). */
export class GuardConfigError extends Error {
  /** The option at fault, as the caller spelled it (e.g. `timing.graceMs`, `--deadline`). */
  readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = 'GuardConfigError';
    this.option = option;
  }
}

/** A line of the guard's line protocol that cannot be understood (docs/guard.md, "Line protocol"). */
export class ProtocolError extends Error {
  /** 1-based number of the line on its connection. */
  readonly line: number;
  /** The field at fault (`command`, `sessionId`, `seq`, ...). */
  readonly field: string;
  constructor(line: number, field: string, message: string) {
    super(`line ${line}: ${field}: ${message}`);
    this.name = 'ProtocolError';
    this.line = line;
    this.field = field;
  }
}
