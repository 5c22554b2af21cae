/**
 * A run told for people: the timeline (steps, what the observer saw change, what the services
 * and ZooKeeper said), times relative to the fault (T), then the numbers, safety and expectations.
 */
import type { ServiceEvent } from '../cluster/wire.ts';
import type { Metrics, RunData } from './checkers.ts';
import type { Sample } from './observer.ts';
import type { RunResult, StepRecord } from './runner.ts';

export interface TimelineEntry {
  at: number;
  source: string;
  what: string;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

export function relative(at: number, t0: number | null | undefined): string {
  if (t0 === null || t0 === undefined) return new Date(at).toISOString().slice(11, 23);
  const d = (at - t0) / 1000;
  return `T${d < 0 ? '-' : '+'}${Math.abs(d).toFixed(1)}s`;
}

export function seconds(ms: number | null): string {
  if (ms === null) return '—';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** One line of what the observer sees: ZooKeeper's view, the metas, the chunks. */
export function describeSample(s: Sample, t0?: number | null): string {
  const named = s.named ? `${s.named.node ?? s.named.endpoint} (epoch ${hex(s.named.epoch)})${s.namedFresh ? '' : ' (last read)'}` : 'no meta leader';
  const metas = Object.entries(s.metas)
    .map(([n, m]) => `${n} ${m.role === 'leader' ? 'leader' : m.role === 'down' ? 'down' : 'cand.'} ${m.proc}`)
    .join(', ');
  const chunks = Object.entries(s.chunks)
    .map(([n, c]) => `${n} ${c.state}`)
    .join(', ');
  return `${relative(s.at, t0)} ZooKeeper names ${named}; ZooKeeper leader ${s.zkLeader === null ? 'none' : `server ${s.zkLeader}`} · metas: ${metas} · chunks: ${chunks}`;
}

function serviceEntry(node: string, kind: string, e: ServiceEvent): string | null {
  switch (e.ev) {
    case 'elected':
      return `${node}'s meta leads, epoch ${hex(e.epoch)}${e.resumed ? ' (resumed)' : ''}`;
    case 'deposed':
      return `${node}'s meta no longer leads epoch ${hex(e.epoch)}: ${e.reason}`;
    case 'lateWrite':
      return `${node}'s meta: late write of epoch ${hex(e.epoch)} (${e.key}) ${e.outcome === 'refused' ? `refused by ZooKeeper's check (${e.reason})` : e.outcome}`;
    case 'fatal':
      return `${node}'s ${kind} stops: ${e.message}`;
    case 'state':
      if (kind === 'meta' && e.state.startsWith('guard:')) {
        const d = e.state.slice(6);
        return d === 'resign' ? `${node}'s guard: unhealthy, resigns` : d === 'deposition' ? null : null;
      }
      return null;
    default:
      return null;
  }
}

/** The run's timeline, oldest first. */
export function timeline(data: RunData, steps: StepRecord[], notes: TimelineEntry[], m: Metrics): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  for (const s of steps) out.push({ at: s.at, source: 'step', what: `${s.index + 1}. ${s.detail}` });
  out.push(...notes);
  for (const svc of data.services) {
    for (const e of svc.events) {
      const what = serviceEntry(svc.node.name, svc.kind, e);
      if (what) out.push({ at: e.at, source: svc.node.name, what });
    }
  }
  // The first failed request of each chunk after the fault, and its first "Session expired".
  const f = data.fault;
  if (f) {
    for (const svc of data.services) {
      if (svc.kind !== 'chunk') continue;
      const fail = svc.events.find((e) => e.ev === 'request' && !e.ok && e.at >= f.at);
      if (fail && fail.ev === 'request')
        out.push({
          at: fail.at,
          source: svc.node.name,
          what: `${svc.node.name}'s chunk: first failed request since the fault (${fail.error} against ${fail.endpoint})`,
        });
      const exp = svc.events.find((e) => e.ev === 'state' && e.state === 'expired' && e.at >= f.at);
      if (exp) out.push({ at: exp.at, source: svc.node.name, what: `${svc.node.name}'s chunk: Session expired, stops serving` });
    }
    if (m.failoverMs !== null && m.failoverBy)
      out.push({
        at: f.at + m.failoverMs,
        source: 'observer',
        what: `first chunk request served by a later leader: ${m.failoverBy.node ?? '?'}'s meta, epoch ${hex(m.failoverBy.epoch)}`,
      });
  }
  for (const d of data.drops)
    out.push({ at: d.at, source: `zk${d.by}`, what: `ZooKeeper's leader (server ${d.by}) drops ${d.peer ?? 'a peer'}'s server: ${d.reason}` });
  // What the observer saw change.
  let prev: Sample | null = null;
  for (const s of data.samples) {
    if (prev) {
      if (s.namedFresh && (s.named?.epoch ?? null) !== (prev.named?.epoch ?? null)) {
        out.push({
          at: s.at,
          source: 'observer',
          what: s.named
            ? `ZooKeeper names ${s.named.node}'s meta, epoch ${hex(s.named.epoch)}${s.named.claimed ? '' : ' (not claimed yet)'}`
            : 'ZooKeeper names no meta leader',
        });
      }
      if (s.zkLeader !== prev.zkLeader)
        out.push({ at: s.at, source: 'observer', what: s.zkLeader === null ? 'ZooKeeper has no leader' : `ZooKeeper's leader is server ${s.zkLeader}` });
      for (const [n, mv] of Object.entries(s.metas)) {
        const was = prev.metas[n]?.proc;
        if (was !== undefined && was !== mv.proc && (mv.proc === 'D' || mv.proc === 'T' || mv.proc === '-' || was === 'D' || was === 'T')) {
          out.push({
            at: s.at,
            source: 'observer',
            what: `${n}'s meta process: ${was} → ${mv.proc}${mv.proc === 'D' ? ` (${mv.threadsInD} thread(s) in uninterruptible disk wait)` : ''}`,
          });
        }
      }
      if (s.leaders > 1 && prev.leaders <= 1) out.push({ at: s.at, source: 'observer', what: `${s.leaders} metas act as leader` });
    } else if (s.named) {
      out.push({ at: s.at, source: 'observer', what: `ZooKeeper names ${s.named.node}'s meta, epoch ${hex(s.named.epoch)}` });
    }
    prev = s;
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The human report of a run. */
export function formatResult(r: RunResult): string {
  const t0 = r.fault?.at ?? null;
  const L: string[] = [];
  L.push(
    `${r.scenario} (guard ${r.guard}${
      r.defences && r.guard === 'on'
        ? `: ${
            Object.entries(r.defences)
              .filter(([, v]) => v)
              .map(([k]) => k)
              .join(', ') || 'no defence'
          }`
        : ''
    }): ${r.ok ? 'OK' : 'FAILED'}`,
  );
  L.push(`  ${r.description}`);
  const t = r.timings;
  L.push(
    `  lab ${r.lab.id} ${r.lab.subnet}; tickTime ${t.tickTimeMs} ms, meta session ${t.sessionTimeoutMs} ms, chunk timeout ${t.chunkTimeoutMs} ms, chunk session expires after ${t.chunkSessionExpireMs} ms`,
  );
  if (r.error) L.push(`  stopped early: ${r.error}`);
  if (r.leftovers.length > 0) L.push(`  the lab's clean-up left: ${r.leftovers.join('; ')} (\`zkwarden lab clean\` removes them)`);
  L.push('');
  L.push(`timeline${t0 !== null ? ' (T = the fault)' : ''}`);
  for (const e of r.timeline) L.push(`  ${relative(e.at, t0).padStart(8)}  ${e.source.padEnd(8)} ${e.what}`);
  L.push('');
  const m = r.metrics;
  L.push('measured');
  if (r.fault) {
    L.push(
      `  fault                ${r.fault.kind} on ${r.fault.node ?? '-'}; meta leader then: ${r.fault.leader ? `${r.fault.leader.node} (epoch ${hex(r.fault.leader.epoch)})` : 'none'}; lasted ${seconds((r.fault.endAt ?? r.endedAt) - r.fault.at)}`,
    );
    L.push(`  time to detect       ${m.detectMs === null ? '— (ZooKeeper kept naming the faulted leader)' : seconds(m.detectMs)}`);
    L.push(
      `  time to fail over    ${m.failoverMs === null ? '— (no chunk served by a later leader)' : `${seconds(m.failoverMs)} (${m.failoverBy?.node ?? '?'}'s meta, epoch ${hex(m.failoverBy!.epoch)})`}`,
    );
    L.push(`  first failed request ${m.firstErrorMs === null ? '—' : relative(r.fault.at + m.firstErrorMs, t0)}`);
    L.push(
      `  unavailable          ${m.unavailableMs === null ? '—' : `${seconds(m.unavailableMs)} (no chunk request served from ${relative(m.unavailable!.from, t0)} to ${m.unavailable!.to === null ? 'the end' : relative(m.unavailable!.to, t0)})`}`,
    );
    L.push(`  terms after fault    ${m.newTerms}`);
  }
  L.push(
    `  overlapping leaders  ${m.maxLeaders > 1 ? `${m.maxLeaders} metas acted as leader at once, ${seconds(m.overlapMs)} in all` : 'none (at most one meta acted as leader)'}`,
  );
  L.push(`  requests             ${m.requests.ok} served, ${m.requests.failed} failed; ${m.acknowledged} acknowledged writes`);
  L.push('');
  L.push('safety');
  for (const c of r.safety.checks) L.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  if (r.expectations.length) {
    L.push('');
    L.push('expected');
    for (const x of r.expectations) L.push(`  ${x.ok ? 'ok  ' : 'MISS'} ${x.name}${x.expected === true ? '' : ` ${JSON.stringify(x.expected)}`}: ${x.detail}`);
  }
  if (r.kept) {
    L.push('');
    L.push(`bundle   ${r.kept.bundle}   (zkwarden investigate ${r.kept.bundle})`);
    L.push(`record   ${r.kept.injections}, ${r.kept.observer}, ${r.kept.result}`);
  }
  return L.join('\n');
}
