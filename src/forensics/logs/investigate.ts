/**
 * `investigate`, in its phases:
 *  1. discovery — plan the bundle: every file read by kind or skipped with the reason;
 *  2. reading — side files (stat listings, captures), ZooKeeper's data (sessions, election and
 *     membership znodes), and every log as a stream merged into one timeline;
 *  3. detectors — each fed the timeline in order, asked for findings at the end, once the
 *     topology has learned everything the bundle says;
 *  4. verdict — the conclusions, the data audit, or why there is none ("nothing to judge");
 *  5. report — the investigation the reports render.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { auditOffline, type AuditReport } from '../zkdata/audit.ts';
import { assignYears } from './years.ts';
import { planBundle, serviceOf, type BundlePlan, type DataDir, type NodeSpec, type PlannedFile } from './bundle.ts';
import { readDataTrail, type DataTrail } from './datatrail.ts';
import { LaneBuilder, type Lane } from './lanes.ts';
import { StoryDetector } from './story.ts';
import type { SkippedFile } from './walk.ts';
import { parseCapture, parseStatListing, type ZkCapture } from './captures.ts';
import type { Detector, DetectorContext } from './detector.ts';
import { FailedCallDetector } from './calls.ts';
import { LifelineDetector } from './lifeline.ts';
import { arraySource, mergeTimeline } from './merge.ts';
import { PeriodicDetector } from './periodic.ts';
import { QuorumDetector } from './quorum.ts';
import { newStats, readEntries, tailHead, type FileStats } from './reader.ts';
import { ErrorBurstDetector, ServiceSessionDetector } from './service-events.ts';
import { TimeZone } from './time.ts';
import { Topology } from './topology.ts';
import type { Entry, Finding } from './types.ts';
import { verdicts } from './verdict.ts';

export type { Lane } from './lanes.ts';

export interface InvestigateOptions {
  root?: string;
  nodeSpecs?: NodeSpec[];
  tz?: string;
  year?: number;
  minSilenceMs?: number;
  /** Called with bytes and files read so far and the bundle's totals (files: many small ones move it too). */
  onProgress?: (read: number, total: number, files: number, totalFiles: number) => void;
  /** Called with every merged batch, in timeline order (the `--timeline` output, the bench). */
  onBatch?: (batch: Entry[]) => void | Promise<void>;
  /** Called once the bundle is planned, with the zone its times are read in. */
  onStart?: (info: { tz: TimeZone; files: number; bytes: number }) => void;
  /** Skip the detectors (the bench's pure read+merge figure). */
  mergeOnly?: boolean;
}

export interface FileReport {
  file: string;
  node: string;
  service: string;
  kind: string;
  bytes: number;
  gzip: boolean;
  lines: number;
  entries: number;
  parsed: number;
  unknown: number;
  first: number;
  last: number;
  year?: number;
  yearSource?: string;
  mtime?: number;
  mtimeSource?: string;
  note?: string;
}

export interface DataAuditSection {
  dataDirs: DataDir[];
  status: 'no-data-dirs' | 'audited' | 'unavailable' | 'failed';
  note: string;
  result?: unknown;
}

export interface Investigation {
  bundle: string;
  tz: string;
  generatedAt: string;
  start: number;
  end: number;
  nodes: string[];
  sharedNodes: string[];
  verdicts: Finding[];
  findings: Finding[];
  lanes: Lane[];
  files: FileReport[];
  captures: { node: string; file: string; capture: ZkCapture }[];
  topology: {
    addresses: Record<string, string>;
    myids: Record<string, string>;
    /** endpoint → role (membership paths, ZooKeeper's data, standard ports). */
    endpoints: Record<string, string>;
    /** endpoint → node, where the port tells (a shared address never maps by itself). */
    endpointNodes: Record<string, string>;
    leaderEndpoints: string[];
    sharedAddresses: string[];
    sources: string[];
  };
  data: DataAuditSection;
  warnings: string[];
  /** Files not read and why (binary, unreadable, symlink loop, the same file twice). */
  skipped: SkippedFile[];
  /** Files read, counted by kind (glog, log4j, zk-txnlog …). */
  readByKind: Record<string, number>;
  /** Set when there is no verdict to give: why ("nothing to judge: 0 log lines; …"). */
  nothingToJudge: string | null;
  /** Facts about the topology that contradict each other (reported, not guessed between). */
  conflicts: string[];
  stats: { files: number; bytes: number; lines: number; entries: number; untimed: number; ms: number };
}

const MTIME_SLACK_MS = 24 * 3_600_000;

function mtimeEntry(
  node: string,
  service: string,
  target: string,
  mtime: number,
  source: string,
  file: string,
  line: number,
  more: string[],
  tz: TimeZone,
  seq: number,
): Entry {
  const e: Entry = {
    ts: mtime,
    node,
    service,
    file,
    line,
    level: 'I',
    fmt: 'mtime',
    text: `[mtime] ${target} last modified ${tz.format(mtime, 0)} (${source})`,
    msg: `last modified ${tz.format(mtime, 0)}`,
    src: 1_000_000,
    seq,
  };
  if (more.length) e.more = more;
  return e;
}

const TEXT_KINDS: ReadonlySet<string> = new Set(['glog', 'log4j', 'text', 'empty']);
const SIDE_KINDS: ReadonlySet<string> = new Set(['stat-listing', 'srvr', 'mntr', 'dump']);
/** Side files above this are not read into memory. */
const MAX_SIDE_FILE = 64 * 1024 * 1024;
/** Progress is reported at most this often. */
const PROGRESS_MS = 200;

function newFileReport(f: PlannedFile): FileReport {
  return {
    file: f.rel,
    node: f.node,
    service: f.service,
    kind: f.kind,
    bytes: f.size,
    gzip: f.gzip,
    lines: 0,
    entries: 0,
    parsed: 0,
    unknown: 0,
    first: NaN,
    last: NaN,
    ...(f.year ? { year: f.year, yearSource: f.yearSource } : {}),
    ...(f.dataDir ? { note: `ZooKeeper data (${f.dataDir}): read by the data audit and for sessions and election znodes` } : {}),
  };
}

/** Phase 1: the plan, the zone and years, the topology's first facts. */
async function discover(opts: InvestigateOptions): Promise<{ plan: BundlePlan; tz: TimeZone; topology: Topology }> {
  const tz = TimeZone.parse(opts.tz);
  const plan = await planBundle({ root: opts.root, nodeSpecs: opts.nodeSpecs });
  const tzUsed = opts.tz === undefined && plan.config.tz ? TimeZone.parse(plan.config.tz) : tz;
  assignYears(plan, tzUsed, opts.year ?? undefined);
  return { plan, tz: tzUsed, topology: new Topology(plan) };
}

interface SideFiles {
  captures: Investigation['captures'];
  mtimeEntries: Entry[];
}

/** Phase 2a: stat listings and captures, and the modification times that are evidence. */
function readSideFiles(plan: BundlePlan, tz: TimeZone, topology: Topology, reports: Map<PlannedFile, FileReport>, warnings: string[]): SideFiles {
  const captures: Investigation['captures'] = [];
  const listed = new Map<string, { mtime: number; source: string; line: number; more: string[]; listing: string }>();
  const mtimeEntries: Entry[] = [];
  let mseq = 0;
  for (const f of plan.files) {
    const r = reports.get(f)!;
    if (!SIDE_KINDS.has(f.kind)) continue;
    if (f.size > MAX_SIDE_FILE || f.gzip) {
      r.note = 'capture too large or compressed; not read';
      continue;
    }
    let text: string;
    try {
      text = readFileSync(f.abs, 'utf8');
    } catch (e) {
      r.note = `not read: ${(e as Error).message}`;
      warnings.push(`${f.rel}: ${(e as Error).message}`);
      continue;
    }
    r.lines = text.split('\n').length;
    if (f.kind === 'stat-listing') {
      for (const rec of parseStatListing(text, tz)) {
        const key = `${f.node}\u0000${basename(rec.path)}`;
        listed.set(key, { mtime: rec.mtime, source: `saved stat listing ${f.rel}:${rec.line}`, line: rec.line, more: rec.lines, listing: f.rel });
      }
    } else {
      captures.push({ node: f.node, file: f.rel, capture: parseCapture(f.kind as 'srvr' | 'mntr' | 'dump', text) });
      topology.scanMembership(text);
    }
  }
  const usedListing = new Set<string>();
  for (const f of plan.files) {
    if (!TEXT_KINDS.has(f.kind)) continue;
    const r = reports.get(f)!;
    const key = `${f.node}\u0000${basename(f.rel).replace(/\.gz$/, '')}`;
    const l = listed.get(key) ?? listed.get(`${f.node}\u0000${basename(f.rel)}`);
    if (l) {
      usedListing.add(key);
      r.mtime = l.mtime;
      r.mtimeSource = l.source;
      mtimeEntries.push(mtimeEntry(f.node, f.service, f.rel, l.mtime, l.source, l.listing, l.line, l.more, tz, mseq++));
      continue;
    }
    const h = tailHead(f);
    if (h) {
      const y = h.y || f.year || tz.ymd(f.mtimeMs).y;
      const last = tz.toEpoch(y, h.mo, h.d, h.h, h.mi, h.s, h.ms);
      if (f.mtimeMs >= last - 2000 && f.mtimeMs <= last + MTIME_SLACK_MS) {
        r.mtime = f.mtimeMs;
        r.mtimeSource = 'the file itself';
        mtimeEntries.push(mtimeEntry(f.node, f.service, f.rel, f.mtimeMs, 'file modification time', f.rel, 0, [], tz, mseq++));
      } else {
        r.mtimeSource = 'not used: not preserved in the bundle (far from the last line)';
      }
    }
  }
  // Listed files absent from the bundle still tell when they were last written.
  for (const [key, l] of listed) {
    if (usedListing.has(key)) continue;
    const [node, name] = key.split('\u0000') as [string, string];
    const service = serviceOf(name, 'text', { kind: 'text', parsedShare: 0 });
    mtimeEntries.push(mtimeEntry(node, service, name, l.mtime, l.source, l.listing, l.line, l.more, tz, mseq++));
  }
  return { captures, mtimeEntries };
}

interface Reading {
  start: number;
  end: number;
  entries: number;
  untimed: number;
  bytes: number;
  lines: number;
  parsed: number;
  lanes: Lane[];
}

/** Phase 2b: every log streamed, merged into one timeline, fed to the observers in order. */
async function readTimeline(
  plan: BundlePlan,
  tz: TimeZone,
  side: SideFiles,
  observers: { topology: Topology; detectors: Detector[] },
  reports: Map<PlannedFile, FileReport>,
  warnings: string[],
  opts: InvestigateOptions,
): Promise<Reading> {
  const readable = plan.files.filter((f) => TEXT_KINDS.has(f.kind) && f.kind !== 'empty');
  const totalBytes = readable.reduce((n, f) => n + f.size, 0);
  opts.onStart?.({ tz, files: readable.length, bytes: totalBytes });
  const stats = new Map<PlannedFile, FileStats>();
  const sources: AsyncIterable<Entry[]>[] = readable.map((f, i) => {
    const s = newStats();
    stats.set(f, s);
    return readEntries(f, tz, i, s);
  });
  if (side.mtimeEntries.length) sources.push(arraySource(side.mtimeEntries));
  const lanes = new LaneBuilder();
  let start = Infinity;
  let end = -Infinity;
  let entries = 0;
  let untimed = 0;
  let lastProgress = performance.now();
  const all = [...stats.values()];
  const progress = (): void =>
    opts.onProgress?.(
      all.reduce((n, s) => n + s.bytes, 0),
      totalBytes,
      all.reduce((n, s) => n + (s.done ? 1 : 0), 0),
      readable.length,
    );
  for await (const batch of mergeTimeline(sources)) {
    entries += batch.length;
    if (opts.onBatch) await opts.onBatch(batch);
    if (!opts.mergeOnly) {
      for (const e of batch) {
        observers.topology.observe(e);
        if (!Number.isFinite(e.ts)) {
          untimed++;
          continue;
        }
        if (e.ts < start) start = e.ts;
        if (e.ts > end) end = e.ts;
        lanes.add(e);
        for (const d of observers.detectors) d.observe(e);
      }
    }
    if (opts.onProgress && performance.now() - lastProgress >= PROGRESS_MS) {
      lastProgress = performance.now();
      progress();
    }
  }
  progress();
  let parsed = 0;
  for (const [f, s] of stats) {
    const r = reports.get(f)!;
    Object.assign(r, { lines: s.lines, entries: s.entries, parsed: s.parsed, unknown: s.unknown, first: s.firstTs, last: s.lastTs });
    parsed += s.parsed;
    if (s.error) {
      r.note = s.error;
      warnings.push(s.error);
    }
    if (f.kind === 'text' && s.parsed === 0) r.note = r.note ?? 'no known log format: kept as untimed text';
  }
  return {
    start,
    end,
    entries,
    untimed,
    parsed,
    lanes: lanes.lanesSorted(),
    bytes: all.reduce((n, s) => n + s.bytes, 0),
    lines: all.reduce((n, s) => n + s.lines, 0),
  };
}

/** "nothing to judge: 0 log lines; 3 files skipped: a (binary), …" — or null when there is. */
function nothingToJudge(reading: Reading, plan: BundlePlan): string | null {
  if (reading.parsed > 0) return null;
  const skipped = plan.skipped.length
    ? `; ${plan.skipped.length} file(s) skipped: ${plan.skipped
        .slice(0, 5)
        .map((s) => `${s.rel} (${s.reason})`)
        .join(', ')}${plan.skipped.length > 5 ? ', …' : ''}`
    : '';
  const other = plan.files.length ? `; ${plan.files.length} file(s) read, none with a glog or log4j line` : '; no file to read';
  return `nothing to judge: 0 log lines${other}${skipped}`;
}

function countByKind(plan: BundlePlan): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of plan.files) out[f.kind] = (out[f.kind] ?? 0) + 1;
  return out;
}

export async function investigate(opts: InvestigateOptions): Promise<Investigation> {
  const t0 = performance.now();
  // 1. Discovery.
  const { plan, tz, topology } = await discover(opts);
  const warnings = [...plan.warnings];
  const reports = new Map<PlannedFile, FileReport>(plan.files.map((f) => [f, newFileReport(f)]));

  // 2. Reading: side files, ZooKeeper's data, the timeline.
  const side = readSideFiles(plan, tz, topology, reports, warnings);
  let trail: DataTrail | null = null;
  if (!opts.mergeOnly && plan.dataDirs.length > 0) {
    trail = await readDataTrail(plan.dataDirs);
    warnings.push(...trail.warnings);
  }
  const lifeline = new LifelineDetector(opts.minSilenceMs);
  const quorum = new QuorumDetector();
  const story = new StoryDetector();
  const detectors: Detector[] = opts.mergeOnly
    ? []
    : [lifeline, new PeriodicDetector(), new FailedCallDetector(), quorum, new ServiceSessionDetector(), new ErrorBurstDetector(), story];
  const reading = await readTimeline(plan, tz, side, { topology, detectors }, reports, warnings, opts);

  // 3. Detectors, once the topology knows what the whole bundle says.
  topology.settle();
  topology.learn(story, trail);
  const ctx: DetectorContext = { tz, topology, nodes: plan.nodes, start: reading.start, end: reading.end, findings: [] };
  for (const d of detectors) ctx.findings.push(...d.finish(ctx));
  for (const c of topology.conflicts) {
    ctx.findings.push({ kind: 'topology-conflict', severity: 'warn', from: reading.start, to: reading.start, title: `topology conflict: ${c}`, evidence: [] });
  }

  // 4. Verdict.
  const noVerdict = opts.mergeOnly ? null : nothingToJudge(reading, plan);
  const vs = opts.mergeOnly || noVerdict ? [] : verdicts(ctx, quorum.facts, { story, trail, lanes: reading.lanes });
  const data = opts.mergeOnly
    ? { dataDirs: plan.dataDirs, status: 'no-data-dirs' as const, note: 'not audited (--timeline)' }
    : await dataAudit(plan.dataDirs, plan);
  if (data.status === 'audited' && data.result) {
    const r = data.result as AuditReport;
    ctx.findings.push({
      kind: 'data-audit',
      severity: r.class === 'diverged' ? 'error' : r.class === 'lagging' ? 'warn' : 'info',
      from: reading.end,
      to: reading.end,
      title: `ZooKeeper data audit (${plan.dataDirs.map((d) => d.node).join(', ')}): ${r.verdict}`,
      facts: { class: r.class, firstDivergence: r.firstDivergence ? `${r.firstDivergence.how} at 0x${r.firstDivergence.zxid.toString(16)}` : null },
      evidence: [],
    });
  }

  // 5. Report.
  const { start, end } = reading;
  return {
    bundle: plan.root,
    tz: tz.label(Number.isFinite(start) ? start : Date.now()),
    generatedAt: new Date().toISOString(),
    start: Number.isFinite(start) ? start : NaN,
    end: Number.isFinite(end) ? end : NaN,
    nodes: plan.nodes,
    sharedNodes: plan.sharedNodes,
    verdicts: vs.sort((a, b) => (a.severity === b.severity ? a.from - b.from : a.severity === 'error' ? -1 : 1)),
    findings: ctx.findings.sort((a, b) => a.from - b.from || a.to - b.to),
    lanes: reading.lanes,
    files: [...reports.values()],
    captures: side.captures,
    topology: {
      addresses: Object.fromEntries(topology.addressNode),
      myids: Object.fromEntries([...topology.myidNode].map(([k, v]) => [String(k), v])),
      endpoints: Object.fromEntries(topology.endpointRole),
      endpointNodes: Object.fromEntries([...topology.endpointNode].filter(([, n]) => n !== '')),
      leaderEndpoints: [...topology.leaderEndpoints],
      sharedAddresses: [...topology.sharedAddresses],
      sources: topology.sources,
    },
    data,
    warnings,
    skipped: plan.skipped,
    readByKind: countByKind(plan),
    nothingToJudge: noVerdict,
    conflicts: topology.conflicts,
    stats: {
      files: plan.files.length,
      bytes: reading.bytes,
      lines: reading.lines,
      entries: reading.entries,
      untimed: reading.untimed,
      ms: performance.now() - t0,
    },
  };
}

/**
 * The seam to the ZooKeeper data audit (src/forensics/zkdata/audit.ts, issue 5): bundles with the
 * data directories of two or more members get its offline verdict (consistent / lagging /
 * diverged); with one, the directory is listed and the report says why no audit ran.
 */
async function dataAudit(dirs: DataDir[], plan: BundlePlan): Promise<DataAuditSection> {
  if (dirs.length === 0) return { dataDirs: dirs, status: 'no-data-dirs', note: 'the bundle holds no ZooKeeper data directory' };
  if (dirs.length < 2) {
    return { dataDirs: dirs, status: 'unavailable', note: 'one data directory: the audit compares at least two members' };
  }
  try {
    const inputs = dirs.map((d) => {
      const log = plan.files.find((f) => f.node === d.node && f.service === 'zookeeper' && f.kind === 'log4j' && !f.gzip);
      return { dir: d.path, name: d.node, ...(log ? { serverLog: log.abs } : {}) };
    });
    const r = await auditOffline(inputs);
    return { dataDirs: dirs, status: 'audited', note: `offline audit of ${dirs.length} data directories: ${r.class}`, result: r };
  } catch (e) {
    return { dataDirs: dirs, status: 'failed', note: `data audit failed: ${(e as Error).message}` };
  }
}
