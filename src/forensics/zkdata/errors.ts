/**
 * Errors of the data-file readers. Every one names the file, the byte offset and what was
 * expected there, so an operator can open the file at that offset and see for themselves.
 */

export class ZkDataError extends Error {
  readonly file: string;
  readonly offset: number;
  readonly expected: string;
  constructor(file: string, offset: number, expected: string, detail?: string) {
    super(`${file}: at offset ${offset}: expected ${expected}${detail ? ` (${detail})` : ''}`);
    this.name = 'ZkDataError';
    this.file = file;
    this.offset = offset;
    this.expected = expected;
  }
}

/** The file ends inside a record (a copy cut short, a crash while writing a snapshot). */
export class TruncatedFileError extends ZkDataError {
  constructor(file: string, offset: number, expected: string, detail?: string) {
    super(file, offset, expected, detail ?? 'the file ends here');
    this.name = 'TruncatedFileError';
  }
}

/** Bytes that cannot be what the format says is there: a corrupt or foreign file. */
export class MalformedFileError extends ZkDataError {
  constructor(file: string, offset: number, expected: string, detail?: string) {
    super(file, offset, expected, detail);
    this.name = 'MalformedFileError';
  }
}

/** An Adler32 mismatch. `--force` turns it into a warning and marks what follows as suspect. */
export class ChecksumError extends ZkDataError {
  readonly stored: number;
  readonly computed: number;
  constructor(file: string, offset: number, what: string, stored: number, computed: number) {
    super(file, offset, `the Adler32 of ${what} to be 0x${stored.toString(16)}`, `computed 0x${computed.toString(16)}`);
    this.name = 'ChecksumError';
    this.stored = stored;
    this.computed = computed;
  }
}

/** A format zkwarden recognises but cannot read (e.g. a snapshot version it does not know). */
export class UnsupportedFormatError extends ZkDataError {
  constructor(file: string, offset: number, expected: string, detail?: string) {
    super(file, offset, expected, detail);
    this.name = 'UnsupportedFormatError';
  }
}

/** A data directory that holds no ZooKeeper files, or not the ones asked for. */
export class DataDirError extends Error {
  readonly dir: string;
  constructor(dir: string, message: string) {
    super(`${dir}: ${message}`);
    this.name = 'DataDirError';
    this.dir = dir;
  }
}
