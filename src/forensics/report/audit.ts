/** The offline audit's terminal report: the verdict first, then members, transactions, trees, signatures. */
import { describeRelog } from '../zkdata/history.ts';
import { type AuditReport, describeTail, reachedZxid, type TxnConflict } from '../zkdata/audit.ts';
import { hexZxid, isoTime } from '../zkdata/format.ts';

export function renderAudit(r: AuditReport): string {
  const out: string[] = [r.verdict, ''];
  out.push('Members:');
  for (const m of r.members) {
    const end = m.logEnd ? (m.logEnd.kind === 'torn' ? `, last log TORN at offset ${m.logEnd.offset}` : '') : '';
    out.push(
      `  ${m.name.padEnd(10)} ${m.status.padEnd(10)} last zxid ${hexZxid(m.lastZxid)}${m.uncommitted.some((t) => t.supersededBy === null && t.to === m.lastZxid) ? `, last committed ${hexZxid(reachedZxid(m))}` : ''}${m.behindBy ? ` (${m.behindBy} txns behind)` : ''}, ${m.snapshots} snapshot(s), ${m.logs} log(s), ${m.nodeCount ?? '?'} znodes / ${m.sessionCount ?? '?'} sessions at ${hexZxid(r.comparedAt ?? 0)}${end}${m.suspect ? ', SUSPECT (checksum)' : ''}  [${m.dir}]`,
    );
  }
  out.push('', `Transactions: ${r.txnsCompared} compared across members, ${r.conflictCount} conflict(s).`);
  // Runs of conflicts of one kind on the same members read as one entry: the first in full.
  let shown = 0;
  for (let k = 0; k < r.conflicts.length && shown < 10; shown++) {
    const c = r.conflicts[k]!;
    let end = k;
    const sameRun = (d: TxnConflict): boolean => d.kind === c.kind && d.odd.join() === c.odd.join();
    while (end + 1 < r.conflicts.length && sameRun(r.conflicts[end + 1]!)) end++;
    const run = end > k ? `${hexZxid(c.zxid)}…${hexZxid(r.conflicts[end]!.zxid)} (${end - k + 1} transactions)` : hexZxid(c.zxid);
    out.push(`  ${run} ${c.kind === 'missing' ? 'missing from' : 'different on'} ${c.odd.join(', ')}; the first:`);
    c.txns.forEach((t, i) => {
      if (t !== undefined) out.push(`    ${r.members[i]!.name}: ${t ?? '— missing —'}`);
    });
    k = end + 1;
  }
  const tails = r.members.flatMap((m) => m.uncommitted.map((t) => describeTail(m.name, t)));
  if (tails.length > 0) {
    out.push('', 'Uncommitted proposals (logged by one member, never committed: the others moved on to a newer epoch without them; not divergence):');
    for (const t of tails) out.push(`  ${t}`);
  }
  const relogged = r.members.filter((m) => m.relogs.length > 0);
  if (relogged.length > 0) {
    out.push('', 'Re-logged transactions (one run per re-sync; the first copy is the one compared):');
    for (const m of relogged) {
      for (const run of m.relogs) {
        out.push(`  ${m.name}: ${describeRelog(run)}`);
        for (const d of run.differences) {
          out.push(`    ${hexZxid(d.zxid)} first at offset ${d.first.offset} of ${d.first.file}: ${d.first.text}`);
          out.push(`    ${hexZxid(d.zxid)} again at offset ${d.again.offset} of ${d.again.file}: ${d.again.text}`);
        }
        if (run.differing > run.differences.length) out.push(`    … and ${run.differing - run.differences.length} more that differ`);
      }
    }
  }
  out.push(
    '',
    `Trees at ${hexZxid(r.comparedAt ?? 0)}${r.alsoComparedAt !== null ? ` (and, among the members ahead, at ${hexZxid(r.alsoComparedAt)})` : ''}: ${r.nodesCompared} znodes compared, ${r.diffCount} differ.`,
  );
  for (const f of r.findings.slice(0, 30)) {
    out.push(`  - ${f.text}`);
    for (const v of f.example) {
      out.push(
        v.exists
          ? `      ${v.member}: ${f.paths[0]} cZxid ${hexZxid(v.czxid!)} ctime ${isoTime(v.ctime!)} mZxid ${hexZxid(v.mzxid!)} version ${v.version} pZxid ${hexZxid(v.pzxid!)} cversion ${v.cversion} ephemeralOwner ${v.ephemeralOwner}${v.sessionAlive === undefined ? '' : v.sessionAlive ? ' (session alive)' : ' (session NOT in the session table)'}`
          : `      ${v.member}: ${f.paths[0]} absent`,
      );
    }
  }
  if (r.signatures.length > 0) {
    out.push('', 'Known signatures:');
    for (const s of r.signatures) {
      out.push(`  ${s.id} on ${s.member} (${s.source}): ${s.title}`);
      for (const e of s.evidence) out.push(`    ${e}`);
    }
  }
  // Re-log runs have their own section above.
  const runs = new Set(r.members.flatMap((m) => m.relogs.map(describeRelog)));
  const warn = [...r.warnings, ...r.members.flatMap((m) => m.warnings.filter((w) => !runs.has(w)).map((w) => `${m.name}: ${w}`))];
  if (warn.length > 0) {
    out.push('', 'Warnings:');
    for (const w of warn.slice(0, 30)) out.push(`  ${w}`);
  }
  return out.join('\n') + '\n';
}
