/**
 * Line parsers for the two log formats the bundle holds, written with charCode checks instead of
 * one big regex: the header test runs on every line of a gigabyte bundle.
 *
 * glog:  `I0625 05:43:23.800374  5366 nfs_server.cc:1115] msg`  (no year; `I20220625 ...` with
 *        glog's log_year_in_prefix)
 * log4j: `2022-06-25 05:43:31,656 [myid:2] - WARN  [thread:Class@702] - msg`  (ZooKeeper 3.4 and
 *        3.5+ share this layout; other log4j layouts with an ISO date first are read too).
 */
import type { Level } from './types.ts';

export interface Head {
  /** 0 when the line carries no year (glog). */
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  /** Milliseconds with the µs fraction. */
  ms: number;
  level: Level;
  msg: string;
  thread?: string;
  where?: string;
  myid?: string;
}

const D0 = 48;
/** Where the last fractionMs stopped: a module variable, so the per-line hot path allocates nothing. */
let fractionEnd = 0;

/** The milliseconds of up to 9 fraction digits starting at `start` (".800374" → 800.374). */
function fractionMs(line: string, start: number): number {
  let frac = 0;
  let n = 0;
  let q = start;
  while (n < 9) {
    const c = dig(line, q);
    if (c < 0) break;
    frac = frac * 10 + c;
    n++;
    q++;
  }
  fractionEnd = q;
  return n > 0 ? (frac * 1000) / 10 ** n : 0;
}

function dig(s: string, i: number): number {
  const c = s.charCodeAt(i) - D0;
  return c >= 0 && c <= 9 ? c : -1;
}
function num(s: string, i: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = dig(s, i + k);
    if (c < 0) return -1;
    v = v * 10 + c;
  }
  return v;
}
function validTime(mo: number, d: number, h: number, mi: number, s: number): boolean {
  return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 60;
}

const GLOG_LEVEL: Record<string, Level> = { I: 'I', W: 'W', E: 'E', F: 'F' };

/** A glog header line, or null. */
export function parseGlog(line: string): Head | null {
  const level = GLOG_LEVEL[line[0] ?? ''];
  if (!level) return null;
  let p = 1;
  let y = 0;
  // glog with --log_year_in_prefix writes yyyymmdd.
  if (dig(line, 5) >= 0) {
    y = num(line, 1, 4);
    if (y < 0) return null;
    p = 5;
  }
  const mo = num(line, p, 2);
  const d = num(line, p + 2, 2);
  if (line.charCodeAt(p + 4) !== 32) return null;
  const t = p + 5;
  const h = num(line, t, 2);
  const mi = num(line, t + 3, 2);
  const s = num(line, t + 6, 2);
  if (line[t + 2] !== ':' || line[t + 5] !== ':' || !validTime(mo, d, h, mi, s)) return null;
  let ms = 0;
  let q = t + 8;
  if (line[q] === '.') {
    ms = fractionMs(line, q + 1);
    q = fractionEnd;
  }
  // "  5366 nfs_server.cc:1115] msg"
  const close = line.indexOf('] ', q);
  let msg: string;
  let thread: string | undefined;
  let where: string | undefined;
  if (close >= 0 && close - q < 80) {
    const mid = line.slice(q, close).trim();
    const sp = mid.indexOf(' ');
    if (sp > 0) {
      thread = mid.slice(0, sp);
      where = mid.slice(sp + 1).trim();
    } else where = mid;
    msg = line.slice(close + 2);
  } else if (line.endsWith(']') && line.length - q < 80) {
    msg = '';
  } else return null;
  return { y, mo, d, h, mi, s, ms, level, msg, thread, where };
}

const LOG4J_LEVELS: Record<string, Level> = {
  TRACE: 'T',
  DEBUG: 'D',
  INFO: 'I',
  WARN: 'W',
  WARNING: 'W',
  ERROR: 'E',
  FATAL: 'F',
  SEVERE: 'E',
};

const LOCATION = /^[\w$.<>-]+@\d+$/;

/** A log4j/logback header line starting with an ISO date, or null. */
export function parseLog4j(line: string): Head | null {
  if (line.length < 19 || line[4] !== '-' || line[7] !== '-') return null;
  const y = num(line, 0, 4);
  const mo = num(line, 5, 2);
  const d = num(line, 8, 2);
  const sep = line[10];
  if (sep !== ' ' && sep !== 'T') return null;
  const h = num(line, 11, 2);
  const mi = num(line, 14, 2);
  const s = num(line, 17, 2);
  if (y < 1970 || line[13] !== ':' || line[16] !== ':' || !validTime(mo, d, h, mi, s)) return null;
  let q = 19;
  let ms = 0;
  if (line[q] === ',' || line[q] === '.') {
    ms = fractionMs(line, q + 1);
    q = fractionEnd;
  }
  let rest = line.slice(q);
  let myid: string | undefined;
  let level: Level = '?';
  let thread: string | undefined;
  let where: string | undefined;
  // ZooKeeper: " [myid:2] - WARN  [thread:Class@702] - msg"
  if (rest.startsWith(' [myid:')) {
    const e = rest.indexOf(']');
    if (e > 0) {
      myid = rest.slice(7, e);
      rest = rest.slice(e + 1);
    }
  }
  if (rest.startsWith(' - ')) rest = rest.slice(3);
  else rest = rest.trimStart();
  const lv = /^([A-Z]{4,7})\b\s*/.exec(rest);
  if (lv && LOG4J_LEVELS[lv[1]!]) {
    level = LOG4J_LEVELS[lv[1]!]!;
    rest = rest.slice(lv[0].length);
  }
  if (rest.startsWith('[')) {
    // The thread name may hold ':' and brackets (QuorumPeer[myid=1](plain=...)); the location is
    // the last ":Class@line] - " of the header.
    const close = rest.indexOf('] - ');
    const colon = close > 0 ? rest.lastIndexOf(':', close) : -1;
    if (colon > 0 && LOCATION.test(rest.slice(colon + 1, close))) {
      thread = rest.slice(1, colon);
      where = rest.slice(colon + 1, close);
      rest = rest.slice(close + 4);
    } else {
      const e = rest.indexOf('] ');
      if (e > 0) {
        thread = rest.slice(1, e);
        rest = rest.slice(e + 2);
        if (rest.startsWith('- ')) rest = rest.slice(2);
      }
    }
  }
  return { y, mo, d, h, mi, s, ms, level, msg: rest, thread, where, myid };
}

/** `Log file created at: 2022/06/15 17:59:01` — glog's own header, a year source. */
export function parseGlogCreated(line: string): { y: number; mo: number; d: number; h: number; mi: number; s: number } | null {
  const m = /^Log file created at: (\d{4})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2})/.exec(line);
  if (!m) return null;
  return { y: +m[1]!, mo: +m[2]!, d: +m[3]!, h: +m[4]!, mi: +m[5]!, s: +m[6]! };
}
