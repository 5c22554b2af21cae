/**
 * Streaming reader: one bundle file → batches of timeline entries. Lines are split from 1 MiB
 * chunks (gzip inflated on the fly); a header line (glog or log4j, whichever the file holds,
 * then the other for mixed files) starts an entry, other lines continue it (stack traces,
 * `Traceback:` blocks). Nothing is dropped: lines before the first header inherit its time,
 * continuation beyond a cap becomes entries of its own, and a file with no header at all is
 * kept as untimed text.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { PlannedFile } from './bundle.ts';
import { parseGlog, parseLog4j, type Head } from './formats.ts';
import type { TimeZone } from './time.ts';
import type { Entry } from './types.ts';

/** Continuation lines kept inside one entry; more become entries of their own. */
export const MAX_CONTINUATION = 500;
/** Lines waiting for a first timestamp before they are emitted untimed. */
const MAX_PREFIX = 1000;
const BATCH = 1024;
const CHUNK = 256 * 1024;
/** Longer lines are cut (in order) so one runaway line cannot take the heap. */
const MAX_LINE = 8 << 20;

export interface FileStats {
  lines: number;
  bytes: number;
  entries: number;
  /** Lines read as a header of the file's main format or the other one. */
  parsed: number;
  /** Lines not recognised as any header (continuations and text); all kept. */
  unknown: number;
  firstTs: number;
  lastTs: number;
  /** The whole file has been read (for progress by files). */
  done?: boolean;
  error?: string;
}

export function newStats(): FileStats {
  return { lines: 0, bytes: 0, entries: 0, parsed: 0, unknown: 0, firstTs: NaN, lastTs: NaN };
}

/** Turns heads into epoch times for one file, keeping the glog year across New Year. */
export class Clock {
  private year: number;
  private lastMo = 0;
  constructor(
    private readonly tz: TimeZone,
    year: number | undefined,
  ) {
    this.year = year ?? new Date().getFullYear();
  }
  epoch(h: Head): number {
    let y = h.y;
    if (y === 0) {
      if (this.lastMo && h.mo < this.lastMo - 6) this.year++;
      else if (this.lastMo && h.mo > this.lastMo + 6) this.year--;
      this.lastMo = h.mo;
      y = this.year;
    }
    return this.tz.toEpoch(y, h.mo, h.d, h.h, h.mi, h.s, h.ms);
  }
}

export async function* readEntries(f: PlannedFile, tz: TimeZone, src: number, stats: FileStats): AsyncGenerator<Entry[]> {
  const clock = new Clock(tz, f.year);
  let batch: Entry[] = [];
  let cur: Entry | null = null;
  let prefix: { line: number; text: string }[] = [];
  let lastTs = NaN;
  let seq = 0;
  let lineNo = 0;

  const mk = (text: string, line: number, ts: number, fmt: Entry['fmt'], h?: Head): Entry => {
    // Every field is set, even when undefined, so all entries share one object shape and the
    // detectors' property reads stay monomorphic.
    return {
      ts,
      node: f.node,
      service: f.service,
      file: f.rel,
      line,
      level: h ? h.level : '?',
      fmt,
      text,
      msg: h ? h.msg : text,
      more: undefined,
      thread: h?.thread,
      where: h?.where,
      myid: h?.myid,
      inherited: undefined,
      src,
      seq: seq++,
    };
  };
  const emit = (e: Entry): void => {
    stats.entries++;
    batch.push(e);
  };
  const flushPrefix = (ts: number): void => {
    for (const p of prefix) {
      const e = mk(p.text, p.line, ts, 'text');
      if (Number.isFinite(ts)) e.inherited = true;
      emit(e);
    }
    prefix = [];
  };

  const onLine = (text: string): void => {
    lineNo++;
    stats.lines++;
    let h: Head | null = null;
    let fmt: Entry['fmt'] = 'text';
    // Cheap first-character screens before the parsers: most lines are headers.
    const c0 = text.charCodeAt(0);
    if (c0 >= 48 && c0 <= 57) {
      h = parseLog4j(text);
      if (h) fmt = 'log4j';
    } else if (c0 === 73 || c0 === 87 || c0 === 69 || c0 === 70) {
      h = parseGlog(text);
      if (h) fmt = 'glog';
    }
    if (h) {
      stats.parsed++;
      const ts = clock.epoch(h);
      if (cur) emit(cur);
      if (prefix.length) flushPrefix(ts);
      cur = mk(text, lineNo, ts, fmt, h);
      lastTs = ts;
      if (!(stats.firstTs <= ts)) stats.firstTs = ts;
      if (!(stats.lastTs >= ts)) stats.lastTs = ts;
      return;
    }
    stats.unknown++;
    if (cur) {
      const more = (cur.more ??= []);
      if (more.length < MAX_CONTINUATION) {
        more.push(text);
        return;
      }
      emit(cur);
      cur = null;
    }
    if (Number.isFinite(lastTs)) {
      const e = mk(text, lineNo, lastTs, 'text');
      e.inherited = true;
      emit(e);
      return;
    }
    prefix.push({ line: lineNo, text });
    if (prefix.length >= MAX_PREFIX) flushPrefix(NaN);
  };

  const raw = createReadStream(f.abs, { highWaterMark: CHUNK });
  const stream = f.gzip ? raw.pipe(createGunzip({ chunkSize: CHUNK })) : raw;
  raw.on('data', (c: Buffer | string) => {
    stats.bytes += c.length;
  });
  const dec = new StringDecoder('utf8');
  let rest = '';
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const s = rest + dec.write(chunk);
      let start = 0;
      let nl = s.indexOf('\n');
      while (nl >= 0) {
        const end = nl > start && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        onLine(s.slice(start, end));
        start = nl + 1;
        nl = s.indexOf('\n', start);
      }
      rest = s.slice(start);
      if (batch.length >= BATCH) {
        const out = batch;
        batch = [];
        yield out;
      }
      // A line longer than 8 MiB is cut so memory stays bounded; the parts stay in order.
      if (rest.length > MAX_LINE) {
        onLine(rest);
        rest = '';
      }
    }
  } catch (e) {
    stats.error = `${f.rel}: read stopped after ${stats.bytes} bytes: ${(e as Error).message}`;
  } finally {
    raw.destroy();
  }
  rest += dec.end();
  if (rest.length > 0) onLine(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
  if (cur) emit(cur);
  if (prefix.length) flushPrefix(NaN);
  stats.done = true;
  if (batch.length) yield batch;
}

/** The last header of a plain file, from its last 64 KiB (for checking modification times). */
export function tailHead(f: PlannedFile): Head | null {
  if (f.gzip || f.size === 0) return null;
  const n = Math.min(f.size, 64 * 1024);
  let fd = -1;
  try {
    fd = openSync(f.abs, 'r');
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, f.size - n);
    const lines = b.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const l = lines[i]!.replace(/\r$/, '');
      const h = parseGlog(l) ?? parseLog4j(l);
      if (h) return h;
    }
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return null;
}
