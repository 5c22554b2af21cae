/** Terminal and Markdown summaries: the verdict first, then the findings in time order. */
import { bigintReplacer } from '../../zk/records.ts';
import type { Investigation } from '../logs/investigate.ts';
import { formatDuration, TimeZone } from '../logs/time.ts';
import type { EvidenceLine, Finding } from '../logs/types.ts';

function zoneOf(inv: Investigation): TimeZone {
  const m = /\(([+-]\d{2}:\d{2}|UTC)\)$/.exec(inv.tz);
  try {
    return TimeZone.parse(m ? m[1] : inv.tz);
  } catch {
    return TimeZone.parse('UTC');
  }
}

function evLine(e: EvidenceLine): string {
  return `${e.file}:${e.line}  ${e.text}`;
}

const ORDER: Record<string, number> = { error: 0, warn: 1, info: 2 };

export function renderText(inv: Investigation, opts: { maxFindings?: number; color?: boolean } = {}): string {
  const tz = zoneOf(inv);
  const c = (code: string, s: string): string => (opts.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const out: string[] = [];
  const span = Number.isFinite(inv.start) ? `${tz.format(inv.start, 3)} – ${tz.format(inv.end, 3)} (${formatDuration(inv.end - inv.start)})` : 'no timed lines';
  out.push(c('1', `zkwarden investigate ${inv.bundle}`));
  out.push(`nodes: ${inv.nodes.join(', ')}   time zone: ${inv.tz}   span: ${span}`);
  out.push(accounting(inv));
  out.push('');
  if (inv.nothingToJudge) out.push(c('1;33', `VERDICT: ${inv.nothingToJudge}`));
  else if (inv.verdicts.length === 0) {
    out.push(c('1', 'VERDICT: no leader failure pattern found') + ` (${inv.findings.length} findings below)`);
  }
  for (const v of inv.verdicts) {
    out.push(c(v.severity === 'error' ? '1;31' : '1;33', `VERDICT: ${v.title}`));
    for (const l of (v.detail ?? '').split('\n').filter(Boolean)) out.push(`  - ${l}`);
    for (const e of v.evidence.slice(0, 6)) out.push(c('2', `    ${evLine(e)}`));
    out.push('');
  }
  out.push(c('1', `Timeline of findings (${inv.tz})`));
  const shown = inv.findings.filter((f) => !(f.kind === 'quorum-state' && f.severity === 'info')).slice(0, opts.maxFindings ?? 200);
  for (const f of shown) {
    const sev = f.severity === 'error' ? c('31', 'E') : f.severity === 'warn' ? c('33', 'W') : 'I';
    out.push(`${sev} ${tz.format(f.from, 3)}  ${f.title}`);
    const first = f.evidence[0];
    if (first && f.kind !== 'last-sign-of-life') out.push(c('2', `      ${evLine(first)}`.slice(0, 220)));
  }
  const hidden = inv.findings.length - shown.length;
  if (hidden > 0) out.push(c('2', `  (${hidden} more — FOLLOWING/LEADING state changes and the rest — in --format md, json or html)`));
  out.push('');
  out.push(c('1', 'Lanes'));
  for (const l of inv.lanes) out.push(`  ${l.id.padEnd(28)} ${String(l.lines).padStart(9)} lines  ${tz.format(l.first, 0)} – ${tz.format(l.last, 0)}`);
  const unknown = inv.files.reduce((n, f) => n + f.unknown, 0);
  out.push('');
  out.push(
    `read ${inv.stats.files} files, ${(inv.stats.bytes / 1e6).toFixed(1)} MB, ${inv.stats.lines} lines (${unknown} continuation/unrecognised lines kept, ${inv.stats.untimed} untimed) in ${(inv.stats.ms / 1000).toFixed(2)} s`,
  );
  out.push(
    `data: ${inv.data.status} — ${inv.data.note}${inv.data.dataDirs.length ? ` (${inv.data.dataDirs.map((d) => `${d.node}:${d.rel}`).join(', ')})` : ''}`,
  );
  for (const s of inv.skipped) out.push(c('33', `skipped: ${s.rel}: ${s.reason}: ${s.detail}`));
  for (const w of inv.warnings) out.push(c('33', `warning: ${w}`));
  return out.join('\n') + '\n';
}

/** "files: 7 read (3 glog, 2 log4j, 2 zk-txnlog); 2 skipped (1 binary, 1 symlink-loop)". */
export function accounting(inv: Investigation): string {
  const read = Object.entries(inv.readByKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const total = Object.values(inv.readByKind).reduce((a, b) => a + b, 0);
  const why = new Map<string, number>();
  for (const s of inv.skipped) why.set(s.reason, (why.get(s.reason) ?? 0) + 1);
  const skipped = inv.skipped.length ? `; ${inv.skipped.length} skipped (${[...why].map(([k, n]) => `${n} ${k}`).join(', ')})` : '; none skipped';
  return `files: ${total} read${read ? ` (${read})` : ''}${skipped}`;
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function mdFinding(tz: TimeZone, f: Finding): string[] {
  const out = [`- **${tz.format(f.from, 3)}** ${mdEscape(f.title)}`];
  if (f.detail) for (const l of f.detail.split('\n')) out.push(`  - ${l}`);
  if (f.evidence.length) {
    out.push('', '  ```text');
    for (const e of f.evidence.slice(0, 6)) {
      out.push(`  ${e.file}:${e.line}  ${e.text}`);
      for (const m of e.more ?? []) out.push(`  ${' '.repeat(e.file.length + String(e.line).length + 4)}${m}`);
    }
    out.push('  ```', '');
  }
  return out;
}

export function renderMarkdown(inv: Investigation): string {
  const tz = zoneOf(inv);
  const out: string[] = [`# Investigation of \`${inv.bundle}\``, ''];
  out.push(
    `Nodes: ${inv.nodes.join(', ')} · time zone ${inv.tz} · ${Number.isFinite(inv.start) ? `${tz.format(inv.start, 3)} – ${tz.format(inv.end, 3)}` : 'no timed lines'}`,
    '',
  );
  out.push(accounting(inv), '');
  out.push('## Verdict', '');
  if (inv.nothingToJudge) out.push(`**No verdict** — ${mdEscape(inv.nothingToJudge)}.`, '');
  else if (inv.verdicts.length === 0) out.push('No leader failure pattern found.', '');
  for (const v of inv.verdicts) out.push(...mdFinding(tz, v), '');
  out.push('## Findings', '');
  for (const f of inv.findings.sort((a, b) => a.from - b.from || ORDER[a.severity]! - ORDER[b.severity]!)) out.push(...mdFinding(tz, f));
  out.push('', '## Lanes', '', '| lane | lines | first | last |', '| --- | ---: | --- | --- |');
  for (const l of inv.lanes) out.push(`| ${l.id} | ${l.lines} | ${tz.format(l.first, 3)} | ${tz.format(l.last, 3)} |`);
  out.push(
    '',
    '## Files',
    '',
    '| file | node | service | format | lines | unrecognised | year | mtime | note |',
    '| --- | --- | --- | --- | ---: | ---: | --- | --- | --- |',
  );
  for (const f of inv.files) {
    out.push(
      `| ${mdEscape(f.file)} | ${f.node} | ${f.service} | ${f.kind}${f.gzip ? ' (gz)' : ''} | ${f.lines} | ${f.unknown} | ${f.year ? `${f.year} (${mdEscape(f.yearSource ?? '')})` : ''} | ${f.mtime ? `${tz.format(f.mtime, 0)} (${mdEscape(f.mtimeSource ?? '')})` : mdEscape(f.mtimeSource ?? '')} | ${mdEscape(f.note ?? '')} |`,
    );
  }
  if (inv.skipped.length) {
    out.push('', '## Files not read', '', '| file | node | reason | detail |', '| --- | --- | --- | --- |');
    for (const f of inv.skipped) out.push(`| ${mdEscape(f.rel)} | ${f.node} | ${f.reason} | ${mdEscape(f.detail)} |`);
  }
  out.push('', '## Topology', '');
  for (const c of inv.conflicts) out.push(`- **conflict**: ${mdEscape(c)}`);
  for (const s of inv.topology.sources) out.push(`- ${s}`);
  out.push('', '## ZooKeeper data', '', `${inv.data.status}: ${inv.data.note}`);
  for (const d of inv.data.dataDirs)
    out.push(`- ${d.node}: \`${d.rel}\` (${d.snapshots.length} snapshots, ${d.txnLogs.length} transaction logs${d.myid ? `, myid ${d.myid}` : ''})`);
  return out.join('\n') + '\n';
}

/** JSON with the bigints (session ids of the captures) as zk writes them; NaN (a time not read) is null, as JSON.stringify writes every non-finite number. */
export function renderJson(inv: Investigation): string {
  return JSON.stringify(inv, bigintReplacer, 2) + '\n';
}
