/**
 * glog lines carry no year. Each glog file gets one, from the most direct evidence available:
 * the --year flag, the file's own name (`x.log.20220615-175901.3570`), glog's
 * `Log file created at:` header, a sibling log with full dates on the same node, any dated log in
 * the bundle, bundle.json, and last the file's modification time. Lines crossing New Year inside
 * one file are handled by the reader (month going back by more than six).
 */
import type { BundlePlan, PlannedFile } from './bundle.ts';
import type { TimeZone } from './time.ts';

/** The year for month `mo` closest to a reference date (handles Dec → Jan across files). */
function nearYear(refY: number, refMo: number, mo: number): number {
  if (mo - refMo > 6) return refY - 1;
  if (refMo - mo > 6) return refY + 1;
  return refY;
}

export function assignYears(plan: BundlePlan, tz: TimeZone, flagYear?: number): void {
  const dated = plan.files.filter((f) => f.kind === 'log4j' && f.sniff.firstDate);
  for (const f of plan.files) {
    if (f.kind !== 'glog' && !(f.kind === 'text' && f.sniff.firstGlog)) continue;
    const first = f.sniff.firstGlog;
    const mo = first?.mo ?? 1;
    if (first && first.y > 0) {
      f.year = first.y;
      f.yearSource = 'the lines themselves (yyyymmdd prefix)';
      continue;
    }
    if (flagYear !== undefined) {
      f.year = flagYear;
      f.yearSource = '--year';
      continue;
    }
    const nm = /\.((?:19|20)\d{2})(\d{2})(\d{2})-\d{6}(?:\.|$)/.exec(f.rel);
    if (nm) {
      f.year = nearYear(+nm[1]!, +nm[2]!, mo);
      f.yearSource = `file name (${nm[1]}${nm[2]}${nm[3]})`;
      continue;
    }
    if (f.sniff.created) {
      f.year = nearYear(f.sniff.created.y, f.sniff.created.mo, mo);
      f.yearSource = `"Log file created at" header (${f.sniff.created.y})`;
      continue;
    }
    const sibling =
      pick(
        dated.filter((d) => d.node === f.node),
        mo,
      ) ?? pick(dated, mo);
    if (sibling) {
      const d = sibling.sniff.firstDate!;
      f.year = nearYear(d.y, d.mo, mo);
      f.yearSource = `${sibling.node === f.node ? 'sibling' : 'bundle'} log with full dates (${sibling.rel})`;
      continue;
    }
    if (plan.config.year) {
      f.year = plan.config.year;
      f.yearSource = 'bundle.json';
      continue;
    }
    const m = tz.ymd(f.mtimeMs);
    f.year = nearYear(m.y, m.mo, mo);
    f.yearSource = 'file modification time (no better evidence; pass --year if wrong)';
  }
}

function pick(files: PlannedFile[], mo: number): PlannedFile | undefined {
  let best: PlannedFile | undefined;
  let bestDist = Infinity;
  for (const f of files) {
    const d = Math.abs(f.sniff.firstDate!.mo - mo);
    const dist = Math.min(d, 12 - d);
    if (dist < bestDist) {
      best = f;
      bestDist = dist;
    }
  }
  return best;
}
