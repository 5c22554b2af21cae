/**
 * Saved command outputs a bundle may hold: `stat` listings (file modification times, the evidence
 * of when a process last wrote), and ZooKeeper's `srvr`, `mntr` and `dump` four-letter words.
 */
import type { TimeZone } from './time.ts';

export interface StatRecord {
  /** The path as written in the listing. */
  path: string;
  mtime: number;
  /** 1-based line of the `Modify:` line in the listing. */
  line: number;
  /** The listing's lines for this file, exactly as written. */
  lines: string[];
  /** Resolution of the written time: 1000 for `Sat Jun 25 05:43:24 2022`, less for GNU's ns. */
  resolutionMs: number;
}

const MONTHS: Record<string, number> = {
  Jan: 1, Feb: 2, Mar: 3, Apr: 4, May: 5, Jun: 6, Jul: 7, Aug: 8, Sep: 9, Oct: 10, Nov: 11, Dec: 12,
};

/**
 * Parse a saved `stat` listing: BSD/macOS `stat -x` (`Modify: Sat Jun 25 05:43:24 2022`, local
 * time) and GNU coreutils (`Modify: 2022-06-25 05:43:24.123456789 +0800`).
 */
export function parseStatListing(text: string, tz: TimeZone): StatRecord[] {
  const out: StatRecord[] = [];
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  let cur: { path: string; start: number } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const f = /^\s*File: (?:"(.*)"|‘(.*)’|'(.*)'|(.*?))\s*(?:->.*)?$/.exec(line);
    if (f) {
      cur = { path: f[1] ?? f[2] ?? f[3] ?? f[4] ?? '', start: i };
      continue;
    }
    const m = /^\s*Modify: (.*)$/.exec(line);
    if (!m || !cur) continue;
    const v = m[1]!.trim();
    let mtime = NaN;
    let res = 1000;
    const bsd = /^\w{3} (\w{3})\s+(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(v);
    const gnu = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?: ([+-])(\d{2})(\d{2}))?$/.exec(v);
    if (bsd && MONTHS[bsd[1]!]) {
      mtime = tz.toEpoch(+bsd[6]!, MONTHS[bsd[1]!]!, +bsd[2]!, +bsd[3]!, +bsd[4]!, +bsd[5]!, 0);
    } else if (gnu) {
      const frac = gnu[7] ? Number(`0.${gnu[7]}`) * 1000 : 0;
      res = gnu[7] ? 10 ** (3 - Math.min(gnu[7].length, 6)) : 1000;
      if (gnu[8]) {
        const off = (Number(gnu[9]) * 60 + Number(gnu[10])) * (gnu[8] === '-' ? -1 : 1);
        mtime = Date.UTC(+gnu[1]!, +gnu[2]! - 1, +gnu[3]!, +gnu[4]!, +gnu[5]!, +gnu[6]!) + frac - off * 60_000;
      } else mtime = tz.toEpoch(+gnu[1]!, +gnu[2]!, +gnu[3]!, +gnu[4]!, +gnu[5]!, +gnu[6]!, frac);
    }
    if (!Number.isFinite(mtime)) continue;
    // The block: from the command line above `File:` (if any) to the end of the record.
    let end = i + 1;
    while (end < lines.length && !/^\s*File: /.test(lines[end]!) && !/^\$ /.test(lines[end]!) && lines[end]!.trim() !== '') end++;
    const from = cur.start > 0 && /^\$ /.test(lines[cur.start - 1]!) ? cur.start - 1 : cur.start;
    out.push({ path: cur.path, mtime, line: i + 1, lines: lines.slice(from, end), resolutionMs: res });
    cur = null;
  }
  return out;
}

export interface ZkCapture {
  kind: 'srvr' | 'mntr' | 'dump';
  mode?: string;
  zxid?: string;
  nodeCount?: number;
  ephemerals?: number;
  version?: string;
  /** dump: ephemeral paths per session. */
  sessions?: Record<string, string[]>;
}

export function parseCapture(kind: 'srvr' | 'mntr' | 'dump', text: string): ZkCapture {
  const cap: ZkCapture = { kind };
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (kind === 'srvr') {
    for (const l of lines) {
      let m: RegExpExecArray | null;
      if ((m = /^Mode: (\S+)/.exec(l))) cap.mode = m[1];
      else if ((m = /^Zxid: (0x[0-9a-fA-F]+)/.exec(l))) cap.zxid = m[1];
      else if ((m = /^Node count: (\d+)/.exec(l))) cap.nodeCount = Number(m[1]);
      else if ((m = /^Zookeeper version: ([^,]+)/.exec(l))) cap.version = m[1];
    }
  } else if (kind === 'mntr') {
    for (const l of lines) {
      const [k, v] = l.split('\t');
      if (v === undefined) continue;
      if (k === 'zk_server_state') cap.mode = v;
      else if (k === 'zk_znode_count') cap.nodeCount = Number(v);
      else if (k === 'zk_ephemerals_count') cap.ephemerals = Number(v);
      else if (k === 'zk_version') cap.version = v.split(',')[0];
    }
  } else {
    const sessions: Record<string, string[]> = {};
    let cur: string | null = null;
    let inEph = false;
    for (const l of lines) {
      if (/^ephemeral nodes dump:/.test(l)) inEph = true;
      if (!inEph) continue;
      const s = /^(0x[0-9a-fA-F]+):\s*$/.exec(l);
      if (s) {
        cur = s[1]!;
        sessions[cur] = [];
      } else if (cur && /^\s+\//.test(l)) sessions[cur]!.push(l.trim());
    }
    cap.sessions = sessions;
    cap.ephemerals = Object.values(sessions).reduce((n, p) => n + p.length, 0);
  }
  return cap;
}
