/**
 * Chunked input for the streaming readers. A file is read in fixed-size chunks; a parser works
 * on the current window with a JuteReader and, when a record runs past the window's end
 * (JuteUnderflowError), asks for a refill and parses that record again from its start. So a
 * snapshot of several GB is read with a window of a few MB, whatever its size.
 *
 * Bytes that leave the window are fed to an optional Adler32 first: the checksum of a snapshot
 * covers everything before its seal, and a window never holds all of it.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { JuteReader } from '../../zk/jute.ts';
import { Adler32 } from './adler32.ts';
import { snappyPull } from './snappy.ts';

export const DEFAULT_CHUNK = 4 << 20;

type Pull = () => Promise<Buffer | null>;

function filePull(fh: FileHandle, chunk: number, size: number): Pull {
  let pos = 0;
  return async () => {
    // Small files get small buffers; a file that grows while read is still read to its end.
    const want = Math.max(Math.min(chunk, size - pos), 4096);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    pos += bytesRead;
    return bytesRead === 0 ? null : buf.subarray(0, bytesRead);
  };
}

function streamPull(stream: AsyncIterable<Buffer>): Pull {
  const it = stream[Symbol.asyncIterator]();
  return async () => {
    const n = await it.next();
    return n.done ? null : (n.value as Buffer);
  };
}

export class ChunkedInput {
  readonly file: string;
  /** True when offsets are in a decompressed stream rather than the file. */
  readonly compressed: boolean;
  /** The current window. `reader.base` is the absolute offset of its first byte. */
  reader: JuteReader;
  eof = false;
  private readonly pull: Pull;
  private readonly closeFn: () => Promise<void>;
  /** Absolute offset up to which bytes have been fed to `checksum`. */
  private checkedTo = 0;
  readonly checksum: Adler32 | null;

  private constructor(file: string, pull: Pull, closeFn: () => Promise<void>, compressed: boolean, checksum: boolean) {
    this.file = file;
    this.pull = pull;
    this.closeFn = closeFn;
    this.compressed = compressed;
    this.reader = new JuteReader(Buffer.alloc(0));
    this.checksum = checksum ? new Adler32() : null;
  }

  /**
   * Opens FILE. `.gz` and `.snappy` files are decompressed on the fly (ZooKeeper's checksum
   * covers the decompressed bytes, and error offsets are then offsets in that stream).
   */
  static async open(file: string, opts: { chunk?: number; checksum?: boolean } = {}): Promise<ChunkedInput> {
    const chunk = opts.chunk ?? DEFAULT_CHUNK;
    if (file.endsWith('.snappy')) {
      const fh = await open(file, 'r');
      try {
        const { size } = await fh.stat();
        return new ChunkedInput(file, snappyPull(fh, file, size), () => fh.close(), true, opts.checksum ?? false);
      } catch (e) {
        await fh.close();
        throw e;
      }
    }
    if (file.endsWith('.gz')) {
      const raw = createReadStream(file, { highWaterMark: chunk });
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      raw.on('error', (e) => gunzip.destroy(e));
      const stream = raw.pipe(gunzip);
      return new ChunkedInput(
        file,
        streamPull(stream),
        async () => {
          raw.destroy();
          gunzip.destroy();
        },
        true,
        opts.checksum ?? false,
      );
    }
    const fh = await open(file, 'r');
    let size: number;
    try {
      size = (await fh.stat()).size;
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new ChunkedInput(file, filePull(fh, chunk, size), () => fh.close(), false, opts.checksum ?? false);
  }

  /** Absolute offset of the reader's position. */
  get offset(): number {
    return this.reader.offset;
  }

  /**
   * Keeps bytes from absolute offset `keepFrom` (the start of the record being parsed) and
   * appends the next chunk. Returns false at the end of input.
   */
  async refill(keepFrom = this.reader.offset): Promise<boolean> {
    if (this.eof) return false;
    const r = this.reader;
    const keepRel = keepFrom - r.base;
    if (this.checksum && keepFrom > this.checkedTo) {
      this.checksum.update(r.buf, this.checkedTo - r.base, keepRel);
      this.checkedTo = keepFrom;
    }
    const next = await this.pull();
    if (next === null) {
      this.eof = true;
      return false;
    }
    const tail = r.buf.subarray(keepRel, r.buf.length);
    const buf = tail.length === 0 ? next : Buffer.concat([tail, next]);
    this.reader = new JuteReader(buf, 0, buf.length, keepFrom);
    return true;
  }

  /** Makes at least n bytes available in the window (fewer only at the end of input). */
  async ensure(n: number): Promise<void> {
    while (this.reader.remaining < n && (await this.refill())) {
      // refill keeps the unread bytes and appends a chunk
    }
  }

  /** Runs a parse of one record, refilling and retrying from its start while it underflows. */
  async parse<T>(fn: (r: JuteReader) => T, isUnderflow: (e: unknown) => boolean): Promise<T> {
    for (;;) {
      const start = this.reader.pos;
      try {
        return fn(this.reader);
      } catch (e) {
        if (!isUnderflow(e)) throw e;
        this.reader.pos = start;
        if (!(await this.refill(this.reader.base + start))) throw e;
      }
    }
  }

  /** The Adler32 of every byte before absolute offset `upTo` (which must be in the window). */
  checksumUpTo(upTo: number): number {
    if (!this.checksum) throw new Error('checksum not enabled');
    const r = this.reader;
    if (upTo > this.checkedTo) {
      this.checksum.update(r.buf, this.checkedTo - r.base, upTo - r.base);
      this.checkedTo = upTo;
    }
    return this.checksum.value;
  }

  async close(): Promise<void> {
    await this.closeFn();
  }
}
