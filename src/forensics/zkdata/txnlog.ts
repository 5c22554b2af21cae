/**
 * Reader of ZooKeeper transaction logs (`log.<zxid of its first txn>`, FileTxnLog):
 *
 *   FileHeader {int magic "ZKLG", int version 2, long dbid}
 *   entries: {long Adler32 of the payload, int length, payload, byte 'B'}
 *   payload: TxnHeader, record, optional TxnDigest (see src/zk/txn.ts)
 *
 * ZooKeeper preallocates log files with zeros, so a zero length ends the data. An entry cut by
 * the end of the file, or whose 'B' is missing, is the torn last write of a crash: ZooKeeper
 * stops there, and so does this reader, reporting it rather than failing.
 */
import { JuteDecodeError, JuteUnderflowError } from '../../zk/jute.ts';
import { decodeTxnEntry, type TxnEntry } from '../../zk/txn.ts';
import { adler32 } from './adler32.ts';
import { ChecksumError, MalformedFileError } from './errors.ts';
import { fileError, type FileHeader, readFileHeader, TXNLOG_MAGIC } from './snapshot.ts';
import { ChunkedInput } from './source.ts';

export interface LogEntry extends TxnEntry {
  /** Offset of the entry (its checksum) in the file. */
  offset: number;
  /** Payload bytes (header + record + digest), the unit the checksum covers. */
  payload: Buffer;
  storedChecksum: number;
  /** False only under `force`: the entry's checksum did not match and its content is suspect. */
  checksumOk: boolean;
}

export type LogEnd = { kind: 'preallocated'; offset: number } | { kind: 'eof'; offset: number } | { kind: 'torn'; offset: number; detail: string };

export interface TxnLogOptions {
  force?: boolean;
  /** Largest entry accepted; ZooKeeper's own limit is jute.maxbuffer (~1 MiB by default). */
  maxEntryLength?: number;
  chunk?: number;
}

const DEFAULT_MAX_ENTRY = 64 << 20;

export class TxnLogReader {
  readonly file: string;
  header: FileHeader | null = null;
  /** How the log ended; set once entries() has run to the end. */
  end: LogEnd | null = null;
  count = 0;
  checksumErrors = 0;
  readonly warnings: string[] = [];
  private readonly opts: TxnLogOptions;

  constructor(file: string, opts: TxnLogOptions = {}) {
    this.file = file;
    this.opts = opts;
  }

  /** Reads only the header (to sort or identify files cheaply). */
  static async readHeader(file: string): Promise<FileHeader> {
    const input = await ChunkedInput.open(file, { chunk: 64 });
    try {
      await input.refill(0);
      return await input.parse(
        (r) => readFileHeader(r, file, TXNLOG_MAGIC, 'transaction log'),
        (e) => e instanceof JuteUnderflowError,
      );
    } catch (e) {
      throw fileError(file, e, 'the file header');
    } finally {
      await input.close();
    }
  }

  async *entries(): AsyncGenerator<LogEntry> {
    const file = this.file;
    for await (const { offset, crc, payload } of this.frames()) {
      const computed = adler32(payload);
      const checksumOk = computed === crc;
      if (!checksumOk) {
        this.checksumErrors++;
        const err = new ChecksumError(file, offset, `the entry's ${payload.length}-byte payload`, crc, computed);
        if (!this.opts.force) throw err;
        this.warnings.push(`${err.message}; kept as suspect (--force)`);
      }
      let entry: TxnEntry;
      try {
        entry = decodeTxnEntry(payload, offset + 12);
      } catch (e) {
        if (e instanceof JuteDecodeError) {
          const err = new MalformedFileError(file, e.offset, `${e.expected} for ${e.field} of the entry at offset ${offset}`);
          if (checksumOk || !this.opts.force) throw err;
          this.warnings.push(`${err.message}; skipped (--force)`);
          continue;
        }
        throw e;
      }
      this.count++;
      yield { ...entry, offset, payload, storedChecksum: crc, checksumOk };
    }
  }

  /**
   * Each entry's offset and zxid, read from its TxnHeader {long clientId, int cxid, long zxid, …}
   * without checking or decoding the rest: a cheap index of the file. It can list an entry that
   * entries() then rejects (a checksum error) or skips (--force): readers of the index must
   * take entries() as the truth.
   */
  async *zxids(): AsyncGenerator<{ offset: number; zxid: number }> {
    for await (const { offset, payload } of this.frames(true)) {
      if (payload.length >= TXN_HEADER_ZXID_END) yield { offset, zxid: Number(payload.readBigInt64BE(TXN_HEADER_ZXID_END - 8)) };
    }
  }

  /**
   * The file's entries as framed on disk (checksum, payload), up to how the data ends (`end`).
   * With `view`, a payload is a view into the read window, valid only until the next entry is
   * asked for (no copy: for readers that take a few bytes of it at once).
   */
  private async *frames(view = false): AsyncGenerator<{ offset: number; crc: number; payload: Buffer }> {
    const file = this.file;
    const maxLen = this.opts.maxEntryLength ?? DEFAULT_MAX_ENTRY;
    const input = await ChunkedInput.open(file, { chunk: this.opts.chunk ?? 1 << 20 });
    try {
      await input.refill(0);
      try {
        this.header = await input.parse(
          (r) => readFileHeader(r, file, TXNLOG_MAGIC, 'transaction log'),
          (e) => e instanceof JuteUnderflowError,
        );
      } catch (e) {
        throw fileError(file, e, 'the file header');
      }
      for (;;) {
        if (input.reader.remaining === 0 && !(await input.refill())) {
          this.end = { kind: 'eof', offset: input.offset };
          return;
        }
        const offset = input.offset;
        let raw: { crc: number; payload: Buffer | null; eor: number };
        try {
          raw = await input.parse(
            (r) => {
              const crc = Number(BigInt.asUintN(64, r.readLong('entry.checksum')));
              const lenAt = r.offset;
              const len = r.readInt('entry.length');
              if (len === 0) return { crc, payload: null, eor: 0 };
              if (len < 0 || len > maxLen) throw new JuteDecodeError('entry.length', lenAt, `a length between 1 and ${maxLen}`, `got ${len}`);
              r.pos -= 4;
              const payload = view ? r.readBufferView('entry.payload') : r.readBuffer('entry.payload');
              const eor = r.readByte('entry.end');
              return { crc, payload, eor };
            },
            (e) => e instanceof JuteUnderflowError,
          );
        } catch (e) {
          if (e instanceof JuteUnderflowError) {
            this.end = { kind: 'torn', offset, detail: `the file ends inside the entry (${e.field})` };
            return;
          }
          throw fileError(file, e, `the entry at offset ${offset}`);
        }
        if (raw.payload === null) {
          this.end = { kind: 'preallocated', offset };
          return;
        }
        if (raw.eor !== 0x42) {
          this.end = { kind: 'torn', offset, detail: `the entry's end byte is 0x${(raw.eor & 0xff).toString(16)}, not 'B' (a partial last write)` };
          return;
        }
        yield { offset, crc: raw.crc, payload: raw.payload };
      }
    } finally {
      await input.close();
    }
  }
}

/** Where a TxnHeader's zxid ends: clientId (8 bytes), cxid (4), zxid (8). */
const TXN_HEADER_ZXID_END = 20;

/** Reads a whole log into memory (for small logs and tests). */
export async function readTxnLog(file: string, opts: TxnLogOptions = {}): Promise<{ reader: TxnLogReader; entries: LogEntry[] }> {
  const reader = new TxnLogReader(file, opts);
  const entries: LogEntry[] = [];
  for await (const e of reader.entries()) entries.push(e);
  return { reader, entries };
}
