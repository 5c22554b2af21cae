/**
 * `investigate`: plan the bundle, read every file as a stream, merge into one timeline, run the
 * detectors over it, and return the investigation (the reports render it).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { auditOffline, type AuditReport } from '../zkdata/audit.ts';
import { assignYears } from './years.ts';
import { planBundle, serviceOf, type BundlePlan, type DataDir, type NodeSpec, type PlannedFile } from './bundle.ts';
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

export interface InvestigateOptions {
  root?: string;
  nodeSpecs?: NodeSpec[];
  tz?: string;
  year?: number;
  minSilenceMs?: number;
  /** Called with bytes read so far and the bundle's total. */
  onProgress?: (read: number, total: number) => void;
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

export interface Lane {
  id: string;
  node: string;
  service: string;
  lines: number;
  first: number;
  last: number;
  /** Width of an activity bucket (1 s, doubled until a lane has at most 4096 buckets). */
  bucketMs: number;
  /** [bucket start (epoch ms), lines, error lines] per bucket with activity. */
  buckets: [number, number, number][];
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
  topology: { addresses: Record<string, string>; myids: Record<string, string>; endpoints: Record<string, string>; sources: string[] };
  data: DataAuditSection;
  warnings: string[];
  stats: { files: number; bytes: number; lines: number; entries: number; untimed: number; ms: number };
}

const MAX_BUCKETS = 4096;
const MTIME_SLACK_MS = 24 * 3_600_000;

function mtimeEntry(node: string, service: string, target: string, mtime: number, source: string, file: string, line: number, more: string[], tz: TimeZone, seq: number): Entry {
  const e: Entry = {
    ts: mtime, node, service, file, line, level: 'I', fmt: 'mtime',
    text: `[mtime] ${target} last modified ${tz.format(mtime, 0)} (${source})`,
    msg: `last modified ${tz.format(mtime, 0)}`, src: 1_000_000, seq,
  };
  if (more.length) e.more = more;
  return e;
}

export async function investigate(opts: InvestigateOptions): Promise<Investigation> {
  const t0 = performance.now();
  const tz = TimeZone.parse(opts.tz);
  const plan: BundlePlan = await planBundle({ root: opts.root, nodeSpecs: opts.nodeSpecs });
  const tzUsed = opts.tz === undefined && plan.config.tz ? TimeZone.parse(plan.config.tz) : tz;
  assignYears(plan, tzUsed, opts.year ?? undefined);
  const topology = new Topology(plan);
  const warnings = [...plan.warnings];

  const readable = plan.files.filter((f) => f.kind === 'glog' || f.kind === 'log4j' || f.kind === 'text');
  const reports = new Map<PlannedFile, FileReport>();
  for (const f of plan.files) {
    reports.set(f, {
      file: f.rel, node: f.node, service: f.service, kind: f.kind, bytes: f.size, gzip: f.gzip, lines: 0, entries: 0,
      parsed: 0, unknown: 0, first: NaN, last: NaN, ...(f.year ? { year: f.year, yearSource: f.yearSource } : {}),
    });
  }

  // Saved stat listings and captures.
  const captures: Investigation['captures'] = [];
  const listed = new Map<string, { mtime: number; source: string; line: number; more: string[]; listing: string }>();
  const mtimeEntries: Entry[] = [];
  let mseq = 0;
  for (const f of plan.files) {
    const r = reports.get(f)!;
    if (f.kind === 'stat-listing' || f.kind === 'srvr' || f.kind === 'mntr' || f.kind === 'dump') {
      if (f.size > 64 * 1024 * 1024 || f.gzip) {
        r.note = 'capture too large or compressed; not read';
        continue;
      }
      const text = readFileSync(f.abs, 'utf8');
      r.lines = text.split('\n').length;
      if (f.kind === 'stat-listing') {
        for (const rec of parseStatListing(text, tzUsed)) {
          const key = `${f.node}\u0000${basename(rec.path)}`;
          listed.set(key, { mtime: rec.mtime, source: `saved stat listing ${f.rel}:${rec.line}`, line: rec.line, more: rec.lines, listing: f.rel });
        }
      } else {
        captures.push({ node: f.node, file: f.rel, capture: parseCapture(f.kind, text) });
        topology.scanMembership(text);
      }
    } else if (f.kind === 'binary' || f.kind === 'zk-snapshot' || f.kind === 'zk-txnlog') {
      r.note = `${f.kind} file outside a data directory; not read as text`;
    }
  }
  const usedListing = new Set<string>();
  for (const f of readable) {
    const r = reports.get(f)!;
    const key = `${f.node}\u0000${basename(f.rel).replace(/\.gz$/, '')}`;
    const l = listed.get(key) ?? listed.get(`${f.node}\u0000${basename(f.rel)}`);
    if (l) {
      usedListing.add(key);
      r.mtime = l.mtime;
      r.mtimeSource = l.source;
      mtimeEntries.push(mtimeEntry(f.node, f.service, f.rel, l.mtime, l.source, l.listing, l.line, l.more, tzUsed, mseq++));
      continue;
    }
    const h = tailHead(f);
    if (h) {
      const y = h.y || f.year || tzUsed.ymd(f.mtimeMs).y;
      const last = tzUsed.toEpoch(y, h.mo, h.d, h.h, h.mi, h.s, h.ms);
      if (f.mtimeMs >= last - 2000 && f.mtimeMs <= last + MTIME_SLACK_MS) {
        r.mtime = f.mtimeMs;
        r.mtimeSource = 'the file itself';
        mtimeEntries.push(mtimeEntry(f.node, f.service, f.rel, f.mtimeMs, 'file modification time', f.rel, 0, [], tzUsed, mseq++));
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
    mtimeEntries.push(mtimeEntry(node, service, name, l.mtime, l.source, l.listing, l.line, l.more, tzUsed, mseq++));
  }

  const totalBytes = readable.reduce((n, f) => n + f.size, 0);
  opts.onStart?.({ tz: tzUsed, files: plan.files.length, bytes: totalBytes });
  const stats = new Map<PlannedFile, FileStats>();
  const sources: AsyncIterable<Entry[]>[] = readable.map((f, i) => {
    const s = newStats();
    stats.set(f, s);
    return readEntries(f, tzUsed, i, s);
  });
  if (mtimeEntries.length) sources.push(arraySource(mtimeEntries));

  const lifeline = new LifelineDetector(opts.minSilenceMs);
  const quorum = new QuorumDetector();
  const detectors: Detector[] = opts.mergeOnly ? [] : [
    lifeline, new PeriodicDetector(), new FailedCallDetector(), quorum, new ServiceSessionDetector(), new ErrorBurstDetector(),
  ];
  interface LaneAcc { node: string; service: string; lines: number; first: number; last: number; bucketMs: number; b: Map<number, [number, number]>; lastKey: number; lastBucket: [number, number] | null | undefined }
  // Activity histograms start at one-second buckets and double their width whenever a lane
  // holds too many: bounded memory, and short bundles still get a readable picture.
  const coarsen = (lane: LaneAcc): void => {
    const merged = new Map<number, [number, number]>();
    for (const [k, v] of lane.b) {
      const k2 = Math.floor(k / 2);
      const m = merged.get(k2);
      if (m) {
        m[0] += v[0];
        m[1] += v[1];
      } else merged.set(k2, [v[0], v[1]]);
    }
    lane.b = merged;
    lane.bucketMs *= 2;
    lane.lastKey = NaN;
    lane.lastBucket = null;
  };
  const lanes = new Map<string, LaneAcc>();
  const laneBySrc: LaneAcc[] = [];
  let start = Infinity;
  let end = -Infinity;
  let entries = 0;
  let untimed = 0;
  let lastProgress = 0;
  const readBytes = (): number => [...stats.values()].reduce((n, s) => n + s.bytes, 0);

  for await (const batch of mergeTimeline(sources)) {
    entries += batch.length;
    if (opts.onBatch) await opts.onBatch(batch);
    if (!opts.mergeOnly) {
      for (const e of batch) {
        topology.observe(e);
        if (!Number.isFinite(e.ts)) {
          untimed++;
          continue;
        }
        if (e.ts < start) start = e.ts;
        if (e.ts > end) end = e.ts;
        // Entries of one file share their lane; mtime records each name theirs.
        let lane = e.fmt === 'mtime' ? undefined : laneBySrc[e.src];
        if (!lane) {
          const id = `${e.node}/${e.service}`;
          lane = lanes.get(id);
          if (!lane) {
            lane = { node: e.node, service: e.service, lines: 0, first: e.ts, last: e.ts, bucketMs: 1000, b: new Map(), lastKey: NaN, lastBucket: null };
            lanes.set(id, lane);
          }
          if (e.fmt !== 'mtime') laneBySrc[e.src] = lane;
        }
        lane.lines += e.more === undefined ? 1 : 1 + e.more.length;
        if (e.ts > lane.last) lane.last = e.ts;
        if (e.ts < lane.first) lane.first = e.ts;
        const k = Math.floor(e.ts / lane.bucketMs);
        const err = e.level === 'E' || e.level === 'F' ? 1 : 0;
        let b = k === lane.lastKey ? lane.lastBucket : lane.b.get(k);
        if (!b) {
          b = [0, 0];
          lane.b.set(k, b);
          if (lane.b.size > MAX_BUCKETS) coarsen(lane);
        }
        b[0]++;
        b[1] += err;
        lane.lastKey = k;
        lane.lastBucket = b;
        for (const d of detectors) d.observe(e);
      }
    }
    if (opts.onProgress && entries - lastProgress >= 50_000) {
      lastProgress = entries;
      opts.onProgress(readBytes(), totalBytes);
    }
  }
  opts.onProgress?.(readBytes(), totalBytes);
  topology.settle();

  const ctx: DetectorContext = { tz: tzUsed, topology, nodes: plan.nodes, start, end, findings: [] };
  for (const d of detectors) ctx.findings.push(...d.finish(ctx));
  const vs = opts.mergeOnly ? [] : verdicts(ctx, quorum.facts);

  for (const [f, s] of stats) {
    const r = reports.get(f)!;
    Object.assign(r, { lines: s.lines, entries: s.entries, parsed: s.parsed, unknown: s.unknown, first: s.firstTs, last: s.lastTs });
    if (s.error) {
      r.note = s.error;
      warnings.push(s.error);
    }
    if (f.kind === 'text' && s.parsed === 0) r.note = r.note ?? 'no known log format: kept as untimed text';
  }

  const data = await dataAudit(plan.dataDirs, plan);
  if (data.status === 'audited' && data.result) {
    const r = data.result as AuditReport;
    ctx.findings.push({
      kind: 'data-audit', severity: r.class === 'diverged' ? 'error' : r.class === 'lagging' ? 'warn' : 'info', from: end, to: end,
      title: `ZooKeeper data audit (${plan.dataDirs.map((d) => d.node).join(', ')}): ${r.verdict}`,
      facts: { class: r.class, firstDivergence: r.firstDivergence ? `${r.firstDivergence.how} at 0x${r.firstDivergence.zxid.toString(16)}` : null },
      evidence: [],
    });
  }

  const inv: Investigation = {
    bundle: plan.root,
    tz: tzUsed.label(Number.isFinite(start) ? start : Date.now()),
    generatedAt: new Date().toISOString(),
    start: Number.isFinite(start) ? start : NaN,
    end: Number.isFinite(end) ? end : NaN,
    nodes: plan.nodes,
    sharedNodes: plan.sharedNodes,
    verdicts: vs.sort((a, b) => (a.severity === b.severity ? a.from - b.from : a.severity === 'error' ? -1 : 1)),
    findings: ctx.findings.sort((a, b) => a.from - b.from || a.to - b.to),
    lanes: [...lanes.entries()].map(([id, l]) => ({
      id, node: l.node, service: l.service, lines: l.lines, first: l.first, last: l.last, bucketMs: l.bucketMs,
      buckets: [...l.b.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [k * l.bucketMs, v[0], v[1]] as [number, number, number]),
    })).sort((a, b) => (a.node === b.node ? a.service.localeCompare(b.service) : a.node.localeCompare(b.node))),
    files: [...reports.values()],
    captures,
    topology: {
      addresses: Object.fromEntries(topology.addressNode),
      myids: Object.fromEntries([...topology.myidNode].map(([k, v]) => [String(k), v])),
      endpoints: Object.fromEntries(topology.endpointRole),
      sources: topology.sources,
    },
    data,
    warnings,
    stats: {
      files: plan.files.length, bytes: readBytes(), lines: [...stats.values()].reduce((n, s) => n + s.lines, 0),
      entries, untimed, ms: performance.now() - t0,
    },
  };
  return inv;
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
    const r = await auditOffline(inputs, { limit: 50 });
    return { dataDirs: dirs, status: 'audited', note: `offline audit of ${dirs.length} data directories: ${r.class}`, result: r };
  } catch (e) {
    return { dataDirs: dirs, status: 'failed', note: `data audit failed: ${(e as Error).message}` };
  }
}
