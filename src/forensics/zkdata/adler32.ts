/**
 * Adler-32 (RFC 1950), the checksum ZooKeeper puts on every snapshot and log entry
 * (java.util.zip.Adler32). Node's zlib does not expose it, and it is tiny. Incremental: feed
 * the bytes in any pieces and read `value` at any time.
 */

const MOD = 65521;
/** zlib's NMAX: the most bytes summed before b could leave 32 bits; keeps the sums small integers. */
const NMAX = 5552;

export class Adler32 {
  private a = 1;
  private b = 0;

  update(buf: Uint8Array, start = 0, end = buf.length): this {
    let a = this.a;
    let b = this.b;
    let i = start;
    while (i < end) {
      const stop = Math.min(end, i + NMAX);
      // Unrolled by 8: the modulo is deferred to once per NMAX bytes, as zlib does.
      for (; i + 8 <= stop; i += 8) {
        a += buf[i]!;
        b += a;
        a += buf[i + 1]!;
        b += a;
        a += buf[i + 2]!;
        b += a;
        a += buf[i + 3]!;
        b += a;
        a += buf[i + 4]!;
        b += a;
        a += buf[i + 5]!;
        b += a;
        a += buf[i + 6]!;
        b += a;
        a += buf[i + 7]!;
        b += a;
      }
      for (; i < stop; i++) {
        a += buf[i]!;
        b += a;
      }
      a %= MOD;
      b %= MOD;
    }
    this.a = a;
    this.b = b;
    return this;
  }

  /** The checksum as an unsigned 32-bit number (what Java's getValue() returns as a long). */
  get value(): number {
    return this.b * 65536 + this.a;
  }

  reset(): this {
    this.a = 1;
    this.b = 0;
    return this;
  }
}

export function adler32(buf: Uint8Array, start = 0, end = buf.length): number {
  return new Adler32().update(buf, start, end).value;
}
