/**
 * Jute, ZooKeeper's serialization: big-endian ints and longs, length-prefixed buffers and
 * strings (-1 = null), count-prefixed vectors. One codec for the wire client and for the
 * snapshot and transaction-log readers.
 *
 * Decoding never trusts a length: a length is checked against the bytes that are really left
 * before anything is allocated, so a corrupt or hostile frame costs an exception, not memory.
 */

export class JuteDecodeError extends Error {
  readonly offset: number;
  readonly field: string;
  readonly expected: string;
  constructor(field: string, offset: number, expected: string, detail?: string) {
    super(`cannot decode ${field} at offset ${offset}: expected ${expected}${detail ? ` (${detail})` : ''}`);
    this.name = 'JuteDecodeError';
    this.field = field;
    this.offset = offset;
    this.expected = expected;
  }
}

/**
 * The input ended inside a value. Streaming readers catch this, fetch more bytes and retry
 * from the record's start; everyone else reports it as truncation.
 */
export class JuteUnderflowError extends JuteDecodeError {
  readonly needed: number;
  constructor(field: string, offset: number, needed: number, available: number) {
    super(field, offset, `${needed} more byte(s)`, `only ${available} left`);
    this.name = 'JuteUnderflowError';
    this.needed = needed;
  }
}

export class JuteReader {
  readonly buf: Buffer;
  /** Absolute offset of buf[0] in the whole input, so errors name the file offset. */
  readonly base: number;
  pos: number;
  private readonly end: number;

  constructor(buf: Buffer, start = 0, end = buf.length, base = 0) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.base = base;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Offset in the whole input of the next byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  private need(n: number, field: string): void {
    if (this.end - this.pos < n) throw new JuteUnderflowError(field, this.offset, n, this.end - this.pos);
  }

  readByte(field = 'byte'): number {
    this.need(1, field);
    return this.buf.readInt8(this.pos++);
  }

  readBool(field = 'boolean'): boolean {
    this.need(1, field);
    return this.buf[this.pos++] !== 0;
  }

  readInt(field = 'int'): number {
    this.need(4, field);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  readLong(field = 'long'): bigint {
    this.need(8, field);
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    // Zero (the owner of every node that is not ephemeral) needs no new bigint; within 53 bits
    // (zxids) one from an exact number; readBigInt64BE builds several.
    if (hi === 0 && lo === 0) return 0n;
    if (hi >= -0x200000 && hi <= 0x1fffff) return BigInt(hi * 0x100000000 + lo);
    return this.buf.readBigInt64BE(this.pos - 8);
  }

  /**
   * A long as a JS number, for zxids, times and session ids where 53 bits are plenty in
   * practice; values beyond that are refused rather than silently rounded.
   */
  readLongNumber(field = 'long'): number {
    this.need(8, field);
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    if (hi > 0x1fffff || hi < -0x200000) {
      // Outside the safe integer range: keep exactness by going through bigint.
      const v = this.buf.readBigInt64BE(this.pos);
      this.pos += 8;
      return Number(v);
    }
    this.pos += 8;
    return hi * 0x100000000 + lo;
  }

  private readLength(field: string, maxLength: number): number {
    const at = this.offset;
    const len = this.readInt(`${field}.length`);
    if (len < -1) throw new JuteDecodeError(field, at, 'a length of -1 or more', `got ${len}`);
    if (len > maxLength) throw new JuteDecodeError(field, at, `a length of at most ${maxLength}`, `got ${len}`);
    if (len > this.remaining) throw new JuteUnderflowError(field, this.offset, len, this.remaining);
    return len;
  }

  /** A buffer; -1 is null. The result is a copy, so it outlives the input chunk. */
  readBuffer(field = 'buffer', maxLength = Number.MAX_SAFE_INTEGER): Buffer | null {
    const len = this.readLength(field, maxLength);
    if (len === -1) return null;
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len;
    return out;
  }

  /** A view into the input without copying: valid only while the input buffer is. */
  readBufferView(field = 'buffer', maxLength = Number.MAX_SAFE_INTEGER): Buffer | null {
    const len = this.readLength(field, maxLength);
    if (len === -1) return null;
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  readString(field = 'string', maxLength = Number.MAX_SAFE_INTEGER): string | null {
    const len = this.readLength(field, maxLength);
    if (len === -1) return null;
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  /** A string that the schema says is never null; null on the wire is a decode error. */
  readUString(field = 'string', maxLength = Number.MAX_SAFE_INTEGER): string {
    const at = this.offset;
    const s = this.readString(field, maxLength);
    if (s === null) throw new JuteDecodeError(field, at, 'a string', 'got null (-1)');
    return s;
  }

  /**
   * A vector; -1 is null. minItemBytes bounds the count by the bytes left, so a huge count in
   * a short input fails before the loop starts.
   */
  readVector<T>(field: string, minItemBytes: number, item: (r: JuteReader, index: number) => T): T[] | null {
    const at = this.offset;
    const count = this.readInt(`${field}.count`);
    if (count === -1) return null;
    if (count < -1) throw new JuteDecodeError(field, at, 'a count of -1 or more', `got ${count}`);
    if (count * minItemBytes > this.remaining) {
      throw new JuteUnderflowError(field, this.offset, count * minItemBytes, this.remaining);
    }
    const out: T[] = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = item(this, i);
    return out;
  }

  skip(n: number, field = 'bytes'): void {
    this.need(n, field);
    this.pos += n;
  }
}

/** Strings up to this length are tried as ASCII first (JuteWriter.writeString). */
const ASCII_RUN = 256;

export class JuteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  writeByte(v: number): this {
    this.room(1);
    this.buf.writeInt8(v, this.pos++);
    return this;
  }

  writeBool(v: boolean): this {
    this.room(1);
    this.buf[this.pos++] = v ? 1 : 0;
    return this;
  }

  writeInt(v: number): this {
    this.room(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  writeLong(v: bigint | number): this {
    this.room(8);
    this.buf.writeBigInt64BE(typeof v === 'bigint' ? v : BigInt(v), this.pos);
    this.pos += 8;
    return this;
  }

  writeBuffer(v: Uint8Array | null | undefined): this {
    if (v == null) return this.writeInt(-1);
    this.writeInt(v.length);
    this.room(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
    return this;
  }

  writeString(v: string | null | undefined): this {
    if (v == null) return this.writeInt(-1);
    if (v.length <= ASCII_RUN && this.writeAscii(v)) return this;
    const n = Buffer.byteLength(v, 'utf8');
    this.writeInt(n);
    this.room(n);
    this.buf.write(v, this.pos, 'utf8');
    this.pos += n;
    return this;
  }

  /**
   * Writes a short string that is all ASCII (paths, scheme names) byte by byte, which is cheaper
   * than measuring and encoding it in the runtime; false, with nothing written, when it is not ASCII.
   */
  private writeAscii(v: string): boolean {
    const n = v.length;
    this.room(4 + n);
    const buf = this.buf;
    const at = this.pos + 4;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) return false;
      buf[at + i] = c;
    }
    buf.writeInt32BE(n, this.pos);
    this.pos = at + n;
    return true;
  }

  writeVector<T>(items: readonly T[] | null | undefined, item: (w: JuteWriter, v: T) => void): this {
    if (items == null) return this.writeInt(-1);
    this.writeInt(items.length);
    for (const v of items) item(this, v);
    return this;
  }

  /** Overwrites an int written earlier (frame lengths are known only at the end). */
  patchInt(at: number, v: number): this {
    this.buf.writeInt32BE(v, at);
    return this;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
