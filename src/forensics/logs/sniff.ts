/**
 * Format sniffing: what a bundle file holds, decided from its first bytes. A file is read by
 * what it contains, not by its name, so renamed, rotated and mixed files still land right.
 */
import { parseGlog, parseGlogCreated, parseLog4j } from './formats.ts';

export type FileKind =
  | 'glog'
  | 'log4j'
  | 'stat-listing'
  | 'srvr'
  | 'mntr'
  | 'dump'
  | 'zk-snapshot'
  | 'zk-txnlog'
  | 'zk-config'
  | 'text'
  | 'binary'
  | 'empty'
  /** acceptedEpoch, currentEpoch, myid of a data directory. */
  | 'zk-state';

export interface Sniffed {
  kind: FileKind;
  /** Share of the sampled lines with a recognised header, for the report. */
  parsedShare: number;
  /** The first full date seen in the sample (log4j), a year source for sibling glog files. */
  firstDate?: { y: number; mo: number; d: number };
  /** glog: month/day of the first header line. */
  firstGlog?: { mo: number; d: number; y: number };
  /** glog: the `Log file created at:` header. */
  created?: { y: number; mo: number; d: number };
  /** A ZooKeeper log's [myid:N]. */
  myid?: string;
}

export const SNIFF_BYTES = 64 * 1024;

export function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

export function sniff(head: Buffer): Sniffed {
  if (head.length === 0) return { kind: 'empty', parsedShare: 0 };
  const magic = head.length >= 4 ? head.readUInt32BE(0) : 0;
  if (magic === 0x5a4b534e) return { kind: 'zk-snapshot', parsedShare: 0 };
  if (magic === 0x5a4b4c47) return { kind: 'zk-txnlog', parsedShare: 0 };
  let ctrl = 0;
  for (let i = 0; i < head.length; i++) {
    const b = head[i]!;
    if (b === 0) ctrl += 4;
    else if (b < 32 && b !== 9 && b !== 10 && b !== 13 && b !== 27 && b !== 12) ctrl++;
  }
  if (ctrl > head.length * 0.05) return { kind: 'binary', parsedShare: 0 };
  const text = head.toString('utf8');
  const lines = text.split('\n', 2000);
  if (head.length === SNIFF_BYTES && lines.length > 1) lines.pop(); // a cut line
  let glog = 0;
  let log4j = 0;
  let nonEmpty = 0;
  const out: Sniffed = { kind: 'text', parsedShare: 0 };
  let statFile = 0;
  let statModify = 0;
  let mntr = 0;
  let srvr = 0;
  let dump = 0;
  let cfg = 0;
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    nonEmpty++;
    const g = parseGlog(line);
    if (g) {
      glog++;
      if (!out.firstGlog) out.firstGlog = { mo: g.mo, d: g.d, y: g.y };
      continue;
    }
    const l = parseLog4j(line);
    if (l) {
      log4j++;
      if (!out.firstDate) out.firstDate = { y: l.y, mo: l.mo, d: l.d };
      if (l.myid && !out.myid) out.myid = l.myid;
      continue;
    }
    const c = parseGlogCreated(line);
    if (c) out.created = { y: c.y, mo: c.mo, d: c.d };
    if (/^\s*File: /.test(line)) statFile++;
    else if (/^Modify: /.test(line)) statModify++;
    else if (/^zk_[a-z_]+\t/.test(line)) mntr++;
    else if (/^(Zookeeper version: |Mode: (leader|follower|standalone|observer)|Zxid: 0x|Node count: )/.test(line)) srvr++;
    else if (/^(SessionTracker dump:|ephemeral nodes dump:|Sessions with Ephemerals|Session Sets \()/.test(line)) dump++;
    else if (/^(server\.\d+|tickTime|dataDir|clientPort|syncLimit|initLimit)\s*=/.test(line)) cfg++;
  }
  const parsed = glog + log4j;
  out.parsedShare = nonEmpty ? parsed / nonEmpty : 0;
  if (nonEmpty === 0) out.kind = 'empty';
  else if (statFile > 0 && statModify > 0 && parsed === 0) out.kind = 'stat-listing';
  else if (mntr >= 3 && parsed === 0) out.kind = 'mntr';
  else if (srvr >= 2 && parsed === 0) out.kind = 'srvr';
  else if (dump >= 1 && parsed === 0) out.kind = 'dump';
  else if (cfg >= 2 && parsed === 0) out.kind = 'zk-config';
  else if (parsed > 0) out.kind = glog >= log4j ? 'glog' : 'log4j';
  return out;
}
