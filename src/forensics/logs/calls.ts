/**
 * Failed calls, grouped by observer (node, service), remote endpoint and error:
 * `[ETimedOut]: ... socket: 10.1.88.102:56828-->10.1.88.101:10100` in service logs, and
 * ZooKeeper's own `Cannot open channel to N at election address /IP:PORT` + exception.
 * The remote endpoint is mapped to its node and role at the end, when the topology is known.
 */
import { isLive, type Detector, type DetectorContext } from './detector.ts';
import { evidence, type Entry, type Finding } from './types.ts';

const SOCKET = /(\d{1,3}(?:\.\d{1,3}){3}):(\d+)\s*-->\s*(\d{1,3}(?:\.\d{1,3}){3}):(\d+)/;
const ECODE = /\[(E[A-Z][A-Za-z]+)\]/;
const CHANNEL = /^Cannot open channel to (\d+) at (?:election )?address \/?([\w.-]+):(\d+)/;
const JAVA_EX = /(?:^|\s)(?:[\w$]+\.)*([A-Z]\w*(?:Exception|Error))(?::\s*(.*))?/;

interface Group {
  observerNode: string;
  observerService: string;
  remote: string;
  error: string;
  count: number;
  first: Entry;
  last: Entry;
  samples: Entry[];
  sources: Set<string>;
}

const MAX_GROUPS = 10_000;

export class FailedCallDetector implements Detector {
  readonly name = 'failed-calls';
  readonly groups = new Map<string, Group>();
  /** Failed calls beyond MAX_GROUPS distinct groups. */
  dropped = 0;

  observe(e: Entry): void {
    if (!isLive(e) || e.fmt === 'mtime') return;
    let remote: string | undefined;
    let error: string | undefined;
    let source: string | undefined;
    if (e.service === 'zookeeper') {
      if (!e.msg.startsWith('Cannot open channel')) return;
      const m = CHANNEL.exec(e.msg);
      if (!m) return;
      remote = `${m[2]}:${m[3]}`;
      const ex = e.more?.[0] ? JAVA_EX.exec(e.more[0]) : null;
      error = ex ? ex[1]! : 'cannot open channel';
    } else {
      const lines = e.more ? [e.text, ...e.more] : [e.text];
      for (const l of lines) {
        if (l.indexOf('-->') < 0 && l.indexOf('[E') < 0) continue;
        const s = SOCKET.exec(l);
        if (s && !remote) {
          remote = `${s[3]}:${s[4]}`;
          source = `${s[1]}:${s[2]}`;
        }
        const c = ECODE.exec(l);
        if (c && !error) error = c[1];
      }
      if (!remote || !error) return;
    }
    const key = `${e.node}\u0000${e.service}\u0000${remote}\u0000${error}`;
    let g = this.groups.get(key);
    if (!g) {
      // Bounded: past the cap, new (observer, remote, error) combinations are only counted.
      if (this.groups.size >= MAX_GROUPS) {
        this.dropped++;
        return;
      }
      g = { observerNode: e.node, observerService: e.service, remote, error, count: 0, first: e, last: e, samples: [], sources: new Set() };
      this.groups.set(key, g);
    }
    g.count++;
    if (e.ts >= g.last.ts) g.last = e;
    if (g.samples.length < 3) g.samples.push(e);
    if (source && g.sources.size < 20) g.sources.add(source);
  }

  finish(ctx: DetectorContext): Finding[] {
    const out: Finding[] = [];
    for (const g of this.groups.values()) {
      const ep = ctx.topology.endpoint(g.remote);
      const ev = [...g.samples];
      if (!ev.includes(g.last)) ev.push(g.last);
      const target = ctx.topology.describe(g.remote);
      out.push({
        kind: 'failed-calls',
        severity: /timed?out|refused|unreach/i.test(g.error) ? 'error' : 'warn',
        from: g.first.ts,
        to: g.last.ts,
        node: g.observerNode,
        service: g.observerService,
        title: `${g.observerNode} ${g.observerService} → ${target}: ${g.error} ×${g.count} (${ctx.tz.format(g.first.ts, 3)} – ${ctx.tz.format(g.last.ts, 3)})`,
        facts: {
          observerNode: g.observerNode,
          observerService: g.observerService,
          remote: g.remote,
          error: g.error,
          count: g.count,
          remoteNode: ep.node ?? null,
          remoteRole: ep.role ?? null,
          localSockets: [...g.sources],
        },
        evidence: ev.map((x) => evidence(x)),
      });
    }
    return out;
  }
}
