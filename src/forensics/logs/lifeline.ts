/**
 * Last sign of life and silence windows. A node is silent when every one of its logs stops
 * (its mtime records included) while other nodes keep logging; the threshold scales with the
 * node's own rhythm (10 × its median gap, at least `minSilenceMs`) so a quiet node is not
 * mistaken for a dead one.
 */
import { isLive, type Detector, type DetectorContext } from './detector.ts';
import { formatDuration } from './time.ts';
import { evidence, type Entry, type Finding } from './types.ts';

interface Gap {
  from: number;
  to: number;
  others: number;
  before: Entry[];
  after: Entry;
  eventsBefore: number;
}

interface NodeTrack {
  count: number;
  last: Entry | null;
  lastGlobal: number;
  /** Last entry per service, and last mtime record: the evidence at a gap's start. */
  lastBySvc: Map<string, Entry>;
  hist: number[];
  gaps: Gap[];
}

const MAX_GAPS = 64;

export class LifelineDetector implements Detector {
  readonly name = 'lifeline';
  private readonly nodes = new Map<string, NodeTrack>();
  private global = 0;
  constructor(private readonly minSilenceMs = 30_000) {}

  observe(e: Entry): void {
    if (!isLive(e)) return;
    this.global++;
    let t = this.nodes.get(e.node);
    if (!t) {
      t = { count: 0, last: null, lastGlobal: 0, lastBySvc: new Map(), hist: new Array(48).fill(0), gaps: [] };
      this.nodes.set(e.node, t);
    }
    if (t.last) {
      const gap = e.ts - t.last.ts;
      if (gap > 0) t.hist[Math.min(47, Math.max(0, Math.floor(Math.log2(gap)) + 10))]!++;
      if (gap >= this.minSilenceMs) {
        const g: Gap = {
          from: t.last.ts,
          to: e.ts,
          others: this.global - t.lastGlobal - 1,
          before: [...t.lastBySvc.values()],
          after: e,
          eventsBefore: t.count,
        };
        t.gaps.push(g);
        if (t.gaps.length > MAX_GAPS) {
          t.gaps.sort((a, b) => b.to - b.from - (a.to - a.from));
          t.gaps.length = MAX_GAPS;
        }
      }
    }
    t.count++;
    if (!t.last || e.ts >= t.last.ts) t.last = e;
    t.lastGlobal = this.global;
    const key = e.fmt === 'mtime' ? `${e.service} (mtime)` : e.service;
    t.lastBySvc.set(key, e);
  }

  private median(t: NodeTrack): number {
    const total = t.hist.reduce((a, b) => a + b, 0);
    let acc = 0;
    for (let i = 0; i < t.hist.length; i++) {
      acc += t.hist[i]!;
      if (acc * 2 >= total) return 2 ** (i - 10);
    }
    return 0;
  }

  finish(ctx: DetectorContext): Finding[] {
    const out: Finding[] = [];
    for (const [node, t] of this.nodes) {
      if (!t.last) continue;
      const threshold = Math.max(this.minSilenceMs, 10 * this.median(t));
      const silences = t.gaps.filter((g) => g.to - g.from >= threshold && g.others > 0 && t.count >= 5).sort((a, b) => a.from - b.from);
      const windows: { from: number; to: number; before: Entry[]; after?: Entry }[] = silences.map((g) => ({
        from: g.from,
        to: g.to,
        before: g.before,
        after: g.after,
      }));
      if (ctx.end - t.last.ts >= Math.max(threshold, 60_000) && t.count >= 20) {
        windows.push({ from: t.last.ts, to: ctx.end, before: [...t.lastBySvc.values()] });
      }
      for (const w of windows) {
        const before = w.before.filter((b) => b.ts <= w.from).sort((a, b) => a.ts - b.ts);
        // The node's last sign of life before this silence: its last log line, or an earlier last file write.
        const lastLine = before.filter((b) => b.fmt !== 'mtime').pop();
        const lastWrite = before.filter((b) => b.fmt === 'mtime').pop();
        const onset = lastLine && lastWrite ? Math.min(lastLine.ts, lastWrite.ts) : w.from;
        const resumed = w.after ? `resumes ${ctx.tz.format(w.to, 3)} (${w.after.service})` : 'no line after it in the bundle';
        out.push({
          kind: 'silence',
          severity: 'warn',
          from: w.from,
          to: w.to,
          node,
          title: `${node} silent for ${formatDuration(w.to - w.from)}: every log stops after ${ctx.tz.format(w.from, 6)}; ${resumed}`,
          detail: `threshold ${formatDuration(threshold)} (10 × the node's median gap, at least ${formatDuration(this.minSilenceMs)}); other nodes kept logging meanwhile`,
          facts: { from: w.from, to: w.to, resumed: !!w.after, onset },
          evidence: [...before.slice(-6).map((b) => evidence(b)), ...(w.after ? [evidence(w.after)] : [])],
        });
      }
      // Last sign of life: before the longest silence when there is one, else the node's end.
      const longest = [...windows].sort((a, b) => b.to - b.from - (a.to - a.from))[0];
      const lastEntries = (longest ? longest.before.filter((b) => b.ts <= longest.from) : [...t.lastBySvc.values()]).sort((a, b) => a.ts - b.ts);
      const logLines = lastEntries.filter((b) => b.fmt !== 'mtime');
      const mtimes = lastEntries.filter((b) => b.fmt === 'mtime');
      const lastLog = logLines[logLines.length - 1];
      const lastAny = lastEntries[lastEntries.length - 1]!;
      const lastMtime = mtimes[mtimes.length - 1];
      const from = lastLog && lastMtime ? Math.min(lastLog.ts, lastMtime.ts) : lastAny.ts;
      const to = lastAny.ts;
      const parts: string[] = [];
      if (lastLog) parts.push(`last log line ${ctx.tz.format(lastLog.ts, 6)} (${lastLog.service})`);
      if (lastMtime) parts.push(`last file write ${ctx.tz.format(lastMtime.ts, 0)} (mtime, ${lastMtime.service})`);
      out.push({
        kind: 'last-sign-of-life',
        severity: longest ? 'warn' : 'info',
        from,
        to,
        node,
        title: `${node}: last sign of life ${ctx.tz.format(from, 6)}${to > from ? ` – ${ctx.tz.format(to, 6)}` : ''}${longest ? ' before its silence' : ''}`,
        detail: parts.join('; '),
        facts: {
          lastLogLine: lastLog ? lastLog.ts : null,
          lastMtime: lastMtime ? lastMtime.ts : null,
          services: lastEntries.filter((b) => b.fmt !== 'mtime').map((b) => `${b.service} ${ctx.tz.format(b.ts, 6)}`),
          beforeSilence: !!longest,
        },
        evidence: lastEntries.slice(-8).map((b) => evidence(b)),
      });
    }
    return out;
  }
}
