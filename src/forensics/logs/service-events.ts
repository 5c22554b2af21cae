/**
 * Service-side events: sessions the services report expired ("Session expired", the chunks'
 * state in the seed), and error bursts per lane (many E/F lines close together).
 */
import { isLive, type Detector, type DetectorContext } from './detector.ts';
import { evidence, type Entry, type Finding } from './types.ts';

interface Cluster {
  first: Entry;
  last: Entry;
  count: number;
  ev: Entry[];
}

function cluster(map: Map<string, Cluster[]>, key: string, e: Entry, joinMs: number, maxEv: number): void {
  const arr = map.get(key) ?? [];
  const c = arr[arr.length - 1];
  if (c && e.ts - c.last.ts <= joinMs) {
    c.last = e;
    c.count++;
    if (c.ev.length < maxEv) c.ev.push(e);
  } else {
    arr.push({ first: e, last: e, count: 1, ev: [e] });
    if (arr.length > 1000) arr.shift();
  }
  map.set(key, arr);
}

const SESSION_EXPIRED = /session[ _-]?expired|SESSIONEXPIRED|SessionExpired/i;

export class ServiceSessionDetector implements Detector {
  readonly name = 'service-sessions';
  private readonly groups = new Map<string, Cluster[]>();

  observe(e: Entry): void {
    if (!isLive(e) || e.service === 'zookeeper' || e.fmt === 'mtime') return;
    if (e.msg.indexOf('xpired') < 0 && e.msg.indexOf('EXPIRED') < 0) return;
    if (!SESSION_EXPIRED.test(e.msg)) return;
    cluster(this.groups, `${e.node}\u0000${e.service}`, e, 60_000, 5);
  }

  finish(ctx: DetectorContext): Finding[] {
    const out: Finding[] = [];
    for (const arr of this.groups.values()) {
      for (const c of arr) {
        out.push({
          kind: 'service-session-expired',
          severity: 'error',
          from: c.first.ts,
          to: c.last.ts,
          node: c.first.node,
          service: c.first.service,
          title: `${c.first.node} ${c.first.service}: session expired (${c.count} line(s), ${ctx.tz.format(c.first.ts, 3)}${c.count > 1 ? ` – ${ctx.tz.format(c.last.ts, 3)}` : ''})`,
          facts: { count: c.count },
          evidence: c.ev.map((x) => evidence(x)),
        });
      }
    }
    return out;
  }
}

export class ErrorBurstDetector implements Detector {
  readonly name = 'error-bursts';
  private readonly groups = new Map<string, Cluster[]>();
  constructor(
    private readonly joinMs = 10_000,
    private readonly minCount = 5,
  ) {}

  observe(e: Entry): void {
    if (!isLive(e) || (e.level !== 'E' && e.level !== 'F')) return;
    cluster(this.groups, `${e.node}\u0000${e.service}`, e, this.joinMs, 4);
  }

  finish(ctx: DetectorContext): Finding[] {
    const out: Finding[] = [];
    for (const arr of this.groups.values()) {
      for (const c of arr) {
        if (c.count < this.minCount) continue;
        const ev = [...c.ev];
        if (!ev.includes(c.last)) ev.push(c.last);
        out.push({
          kind: 'error-burst',
          severity: 'error',
          from: c.first.ts,
          to: c.last.ts,
          node: c.first.node,
          service: c.first.service,
          title: `${c.first.node} ${c.first.service}: burst of ${c.count} error lines ${ctx.tz.format(c.first.ts, 3)} – ${ctx.tz.format(c.last.ts, 3)}`,
          facts: { count: c.count },
          evidence: ev.map((x) => evidence(x)),
        });
      }
    }
    return out;
  }
}
