/**
 * Saved command outputs a bundle may hold: `stat` listings (file modification times, the evidence
 * of when a process last wrote), and ZooKeeper's `srvr`, `mntr` and `dump` four-letter words (read
 * by the one parser of src/zk/admin.ts).
 */
import { parseDump, parseMntr, srvrFields } from '../../zk/admin.ts';
import { sessionHex } from '../../zk/records.ts';
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
  Jan: 1,
  Feb: 2,
  Mar: 3,
  Apr: 4,
  May: 5,
  Jun: 6,
  Jul: 7,
  Aug: 8,
  Sep: 9,
  Oct: 10,
  Nov: 11,
  Dec: 12,
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
  if (kind === 'srvr') {
    const f = srvrFields(text);
    if (f.mode !== undefined) cap.mode = f.mode;
    if (f.zxidHex !== undefined) cap.zxid = f.zxidHex;
    if (f.nodeCount !== undefined) cap.nodeCount = f.nodeCount;
    if (f.version !== undefined) cap.version = f.version;
  } else if (kind === 'mntr') {
    const m = parseMntr(text);
    if (m.zk_server_state !== undefined) cap.mode = m.zk_server_state;
    if (m.zk_znode_count !== undefined) cap.nodeCount = Number(m.zk_znode_count);
    if (m.zk_ephemerals_count !== undefined) cap.ephemerals = Number(m.zk_ephemerals_count);
    if (m.zk_version !== undefined) cap.version = m.zk_version.split(',')[0];
  } else {
    const sessions: Record<string, string[]> = {};
    for (const [id, paths] of parseDump(text).ephemerals) sessions[sessionHex(id)] = paths;
    cap.sessions = sessions;
    cap.ephemerals = Object.values(sessions).reduce((n, p) => n + p.length, 0);
  }
  return cap;
}
