/**
 * Buffered text output with backpressure. Dumps of millions of records encode each piece
 * straight into a reusable byte buffer (no large joined strings for the garbage collector),
 * and hand full buffers to the stream only when the reader pauses or the batch is large.
 */
import type { Writable } from 'node:stream';

export class TextSink {
  private buf: Buffer;
  private pos = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly out: Writable;
  private readonly size: number;

  constructor(out: Writable, size = 1 << 20) {
    this.out = out;
    this.size = size;
    this.buf = Buffer.allocUnsafe(size);
  }

  write(s: string): void {
    // Worst case 3 bytes per UTF-16 unit; a piece larger than a buffer goes on its own.
    if (s.length * 3 > this.size - this.pos) {
      this.rotate();
      if (s.length * 3 > this.size) {
        const b = Buffer.from(s, 'utf8');
        this.pending.push(b);
        this.pendingBytes += b.length;
        return;
      }
    }
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  private rotate(): void {
    if (this.pos === 0) return;
    this.pending.push(this.buf.subarray(0, this.pos));
    this.pendingBytes += this.pos;
    this.buf = Buffer.allocUnsafe(this.size);
    this.pos = 0;
  }

  /** True when the caller should flush at its next chance. */
  get full(): boolean {
    return this.pendingBytes + this.pos >= this.size * 4;
  }

  async flush(): Promise<void> {
    this.rotate();
    if (this.pending.length === 0) return;
    const chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const c of chunks) {
      await new Promise<void>((resolve, reject) => {
        this.out.write(c, (err) => (err ? reject(err) : resolve()));
      });
    }
  }
}
