/**
 * Periodic jobs: a message template (digits and hex masked) that recurs on one node/service at a
 * steady interval is a job; its cadence is learned from its own first runs, and every later
 * interval longer than 1.8 × the cadence is a gap (the scavenger's missing runs).
 */
import { isLive, type Detector, type DetectorContext } from './detector.ts';
import { formatDuration } from './time.ts';
import { evidence, type Entry, type Finding } from './types.ts';

const LEARN = 6;
const MAX_TEMPLATES = 5000;
const MIN_CADENCE_MS = 10_000;

interface Job {
  node: string;
  service: string;
  template: string;
  count: number;
  last: Entry | null;
  intervals: number[];
  cadence: number;
  firstRuns: Entry[];
  gaps: { from: Entry; to: Entry }[];
}

export function template(msg: string): string {
  return msg.slice(0, 120).replace(/0x[0-9a-fA-F]+|[0-9a-fA-F]{8,}|\d+/g, '#');
}

export class PeriodicDetector implements Detector {
  readonly name = 'periodic';
  private readonly jobs = new Map<string, Job>();
  /** Per lane (node + service): message key → job; looked up by source to avoid string building. */
  private readonly lanes = new Map<string, Map<string, Job>>();
  private readonly laneBySrc: Map<string, Job>[] = [];

  observe(e: Entry): void {
    if (!isLive(e) || e.fmt === 'mtime' || e.inherited || e.fmt === 'text') return;
    let lane = this.laneBySrc[e.src];
    if (!lane) {
      const id = `${e.node}\u0000${e.service}`;
      lane = this.lanes.get(id) ?? new Map<string, Job>();
      this.lanes.set(id, lane);
      this.laneBySrc[e.src] = lane;
    }
    // The log statement's source location (file.cc:line, Class@line) identifies a job's message
    // cheaply; the masked text is the fallback for layouts without one.
    const key = e.where ?? template(e.msg);
    let j = lane.get(key);
    if (!j) {
      if (lane.size >= MAX_TEMPLATES) return;
      j = {
        node: e.node,
        service: e.service,
        template: `${e.where ? `${e.where}] ` : ''}${template(e.msg)}`,
        count: 0,
        last: null,
        intervals: [],
        cadence: 0,
        firstRuns: [],
        gaps: [],
      };
      lane.set(key, j);
      this.jobs.set(`${e.node}\u0000${e.service}\u0000${key}`, j);
    }
    if (j.cadence < 0) return; // judged not periodic
    if (j.last) {
      const d = e.ts - j.last.ts;
      if (j.cadence === 0) {
        // Several lines of one run come close together: only count a new run after a pause.
        if (d < MIN_CADENCE_MS / 2) return;
        j.intervals.push(d);
        if (j.intervals.length >= LEARN) {
          const s = [...j.intervals].sort((a, b) => a - b);
          const med = s[s.length >> 1]!;
          const close = j.intervals.filter((x) => Math.abs(x - med) <= med * 0.1).length;
          if (med >= MIN_CADENCE_MS && close >= LEARN - 1) {
            j.cadence = med;
            // Gaps inside the learning window.
            let prev = j.firstRuns[0]!;
            for (const r of j.firstRuns.slice(1)) {
              if (r.ts - prev.ts > 1.8 * med) j.gaps.push({ from: prev, to: r });
              prev = r;
            }
            if (d > 1.8 * med) j.gaps.push({ from: j.last, to: e });
          } else if (j.intervals.length >= 3 * LEARN) j.cadence = -1;
        }
      } else {
        if (d < j.cadence / 2) return;
        if (d > 1.8 * j.cadence && j.gaps.length < 100) j.gaps.push({ from: j.last, to: e });
      }
    }
    j.count++;
    if (j.firstRuns.length <= 3 * LEARN) j.firstRuns.push(e);
    j.last = e;
  }

  finish(ctx: DetectorContext): Finding[] {
    const out: Finding[] = [];
    const seen = new Set<string>();
    const jobs = [...this.jobs.values()].filter((j) => j.cadence > 0).sort((a, b) => b.count - a.count);
    for (const j of jobs) {
      const gaps = [...j.gaps];
      if (j.last && ctx.end - j.last.ts > 2 * j.cadence) gaps.push({ from: j.last, to: j.last });
      for (const g of gaps) {
        const open = g.to === g.from;
        const to = open ? ctx.end : g.to.ts;
        const key = `${j.node}/${j.service}/${Math.round(g.from.ts / 1000)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const missed = Math.max(1, Math.round((to - g.from.ts) / j.cadence) - 1);
        out.push({
          kind: 'periodic-gap',
          severity: 'warn',
          from: g.from.ts,
          to,
          node: j.node,
          service: j.service,
          title: `${j.node} ${j.service}: a job that runs every ${formatDuration(j.cadence)} missed ~${missed} run(s) after ${ctx.tz.format(g.from.ts, 0)}${open ? ' (no run until the end of the bundle)' : `, next run ${ctx.tz.format(to, 0)}`}`,
          detail: `job template: "${j.template}" (${j.count} runs seen)`,
          facts: { cadenceMs: j.cadence, missed, runs: j.count, template: j.template },
          evidence: open ? [evidence(g.from)] : [evidence(g.from), evidence(g.to)],
        });
      }
    }
    return out;
  }
}
