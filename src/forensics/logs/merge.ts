/**
 * k-way merge of per-file entry streams into one timeline. Each source is read one batch at a
 * time, so memory is bounded by (sources × batch), not by the bundle. Order: time, then source
 * index, then position in the source — stable, so equal timestamps keep file order, and a file
 * whose own lines go back in time (threads racing to the logger) keeps its order too.
 * Untimed entries (NaN) sort first.
 */
import type { Entry } from './types.ts';

interface Cursor {
  it: AsyncIterator<Entry[]>;
  batch: Entry[];
  i: number;
}

function key(e: Entry): number {
  return Number.isNaN(e.ts) ? -Infinity : e.ts;
}

function less(a: Cursor, b: Cursor): boolean {
  const x = a.batch[a.i]!;
  const y = b.batch[b.i]!;
  const kx = key(x);
  const ky = key(y);
  if (kx !== ky) return kx < ky;
  if (x.src !== y.src) return x.src < y.src;
  return x.seq < y.seq;
}

async function fill(c: Cursor): Promise<boolean> {
  while (c.i >= c.batch.length) {
    const r = await c.it.next();
    if (r.done) return false;
    c.batch = r.value;
    c.i = 0;
  }
  return true;
}

/** Merge sources; yields merged batches of up to `batchSize` entries. */
export async function* mergeTimeline(sources: AsyncIterable<Entry[]>[], batchSize = 4096): AsyncGenerator<Entry[]> {
  const heap: Cursor[] = [];
  for (const s of sources) {
    const c: Cursor = { it: s[Symbol.asyncIterator](), batch: [], i: 0 };
    if (await fill(c)) heap.push(c);
  }
  const down = (i: number): void => {
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && less(heap[r]!, heap[l]!) ? r : l;
      if (!less(heap[m]!, heap[i]!)) return;
      [heap[m], heap[i]] = [heap[i]!, heap[m]!];
      i = m;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  let out: Entry[] = [];
  while (heap.length > 0) {
    const top = heap[0]!;
    out.push(top.batch[top.i++]!);
    if (out.length >= batchSize) {
      yield out;
      out = [];
    }
    if (top.i >= top.batch.length && !(await fill(top))) {
      const last = heap.pop()!;
      if (heap.length > 0 && last !== top) {
        heap[0] = last;
        down(0);
      }
      continue;
    }
    down(0);
  }
  if (out.length) yield out;
}

/** A source over entries already in memory (mtime records, small captures). Sorted here. */
export async function* arraySource(entries: Entry[]): AsyncGenerator<Entry[]> {
  const sorted = [...entries].sort((a, b) => key(a) - key(b) || a.seq - b.seq);
  if (sorted.length) yield sorted;
}
