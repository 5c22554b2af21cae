/** The shapes shared by the bundle reader, the merge, the detectors and the reports. */

export type Level = 'T' | 'D' | 'I' | 'W' | 'E' | 'F' | '?';
/** How an entry was read: a parsed log line, a line of a file in no known format, a file's modification time. */
export type EntryFormat = 'glog' | 'log4j' | 'text' | 'mtime';

/** One timeline entry: a log record with its continuation lines (stack traces, `Traceback:` blocks). */
export interface Entry {
  /** Epoch ms (fraction = µs). NaN for lines no timestamp could be given to (kept, listed first). */
  ts: number;
  node: string;
  service: string;
  /** File path relative to the bundle. */
  file: string;
  /** 1-based line number of the first line in its file (after decompression). */
  line: number;
  level: Level;
  fmt: EntryFormat;
  /** The first line, exactly as written. */
  text: string;
  /** The message part of a parsed line (text after the header). */
  msg: string;
  /** Continuation lines, exactly as written. */
  more?: string[];
  /** log4j: the thread; glog: the thread id. */
  thread?: string;
  /** log4j: Class@line; glog: file.cc:line. */
  where?: string;
  /** log4j: the [myid:N] field when present. */
  myid?: string;
  /** Timestamp inherited from the surrounding lines, not read from this line. */
  inherited?: boolean;
  /** Index of the source in the merge and order inside it: the stable tie-break. */
  src: number;
  seq: number;
}

export interface EvidenceLine {
  ts: number;
  node: string;
  service: string;
  file: string;
  line: number;
  text: string;
  more?: string[];
}

export function evidence(e: Entry, maxMore = 12): EvidenceLine {
  const ev: EvidenceLine = { ts: e.ts, node: e.node, service: e.service, file: e.file, line: e.line, text: e.text };
  if (e.more && e.more.length > 0) ev.more = e.more.slice(0, maxMore);
  return ev;
}

export type FindingKind =
  | 'verdict'
  | 'last-sign-of-life'
  | 'silence'
  | 'periodic-gap'
  | 'failed-calls'
  | 'quorum-member-dropped'
  | 'quorum-state'
  | 'quorum-election'
  | 'quorum-sync'
  | 'zk-session-expired'
  | 'zk-zxid-mismatch'
  | 'zk-follower-lost-leader'
  | 'service-session-expired'
  | 'error-burst'
  | 'data-audit'
  | 'process-start'
  | 'zk-session-ended'
  | 'handover'
  | 'restored'
  | 'topology-conflict';

export type Severity = 'info' | 'warn' | 'error';

export interface Finding {
  kind: FindingKind;
  severity: Severity;
  /** Start (and end, for windows) in epoch ms. */
  from: number;
  to: number;
  node?: string;
  service?: string;
  title: string;
  detail?: string;
  /** Structured facts for the JSON report and the tests. */
  facts?: Record<string, string | number | boolean | string[] | null>;
  evidence: EvidenceLine[];
}
