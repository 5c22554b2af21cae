/**
 * The lines that tell how an incident ends, collected while the timeline streams by:
 *  - start banners: a ZooKeeper server starting (`Starting quorum peer`), a service starting
 *    (`<name> starting …`, glog's `Log file created at:` after a silence);
 *  - what services say about themselves: the endpoint they listen on, the ZooKeeper session
 *    they hold, that they joined an election or became leader (with the epoch);
 *  - calls served: a client line naming `local-->remote` without an error code;
 *  - ZooKeeper ending sessions: `Expiring session 0x…` (expired) and
 *    `Submitting global closeSession request for session 0x…` (closed by its client).
 *
 * The vocabulary of service lines is documented in docs/bundle.md ("Service log lines").
 */
import { sessionHex } from '../../zk/records.ts';
import { isLive, type Detector, type DetectorContext } from './detector.ts';
import { evidence, type Entry, type EvidenceLine, type Finding } from './types.ts';

const ADDR = String.raw`\/?(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{2,5})`;
const LISTEN = new RegExp(String.raw`\blisten(?:ing)?(?: on| at)? ${ADDR}`, 'i');
const STARTING = /^(?:[\w.-]+ )?(?:starting|started|start(?:ing)? up)\b/i;
const SESSION = /\bsession(?: id)?[ :=]+(0x[0-9a-fA-F]{1,16})\b/i;
const JOINED = /\bjoined (?:the )?election as (\/\S+)/i;
const BECAME = /\bbecame (?:the )?leader\b(?:.*?\bepoch[ :=]+(0x[0-9a-fA-F]+|\d+))?/i;
const LEADER_IS = new RegExp(String.raw`\bleader (?:is|changed to|is now|now) ${ADDR}`, 'i');
const SOCKET = /(\d{1,3}(?:\.\d{1,3}){3}):(\d+)\s*-->\s*(\d{1,3}(?:\.\d{1,3}){3}):(\d+)/;
const ECODE = /\[E[A-Z][A-Za-z]+\]/;
const ZK_EXPIRE = /^Expiring session (0x[0-9a-fA-F]+)/;
const ZK_CLOSE = /^Submitting (?:global )?closeSession request for session (0x[0-9a-fA-F]+)/;
const ZK_START = /^Starting quorum peer|^Starting server$|^Starting ZooKeeper/;

/** Kept per endpoint: enough to find the first call served after any moment. */
const MAX_SERVED = 50_000;
const MAX_EVENTS = 10_000;
/** A lane pause this long is remembered: the last line before it may be a hang's onset. */
const GAP_MS = 3_000;

export interface Banner {
  node: string;
  service: string;
  ts: number;
  ev: EvidenceLine;
}
export interface SessionEnd {
  session: string;
  ts: number;
  how: 'expired' | 'closed';
  by: string;
  ev: EvidenceLine;
}
export interface LeaderLine {
  node: string;
  service: string;
  ts: number;
  epoch: string | null;
  ev: EvidenceLine;
}

/** Normalises 0x0200… and 0x200… to one spelling. */
export function normSession(s: string): string {
  return sessionHex(BigInt(s));
}

export class StoryDetector implements Detector {
  readonly name = 'story';
  readonly banners: Banner[] = [];
  /** endpoint → [node, service, first line] from "listening on" lines. */
  readonly listens = new Map<string, { node: string; service: string; ev: EvidenceLine }[]>();
  /** session → node that named it (a service saying which session it holds). */
  readonly sessionNode = new Map<string, { node: string; service: string; ev: EvidenceLine }>();
  readonly sessionEnds: SessionEnd[] = [];
  readonly leaderLines: LeaderLine[] = [];
  /** endpoint → times of calls served there (ascending). */
  readonly served = new Map<string, { ts: number; e: Entry }[]>();
  /** client's "leader is X" lines. */
  readonly leaderSeen: { ts: number; endpoint: string; node: string; ev: EvidenceLine }[] = [];
  private readonly lastTs = new Map<string, number>();
  /** Per lane (node\0service): gaps of at least GAP_MS, [last line before, first line after]. */
  readonly gaps = new Map<string, [number, number][]>();

  observe(e: Entry): void {
    if (!isLive(e) || e.fmt === 'mtime') return;
    const lane = `${e.node}\u0000${e.service}`;
    const prev = this.lastTs.get(lane);
    this.lastTs.set(lane, e.ts);
    if (prev !== undefined && e.ts - prev >= GAP_MS) {
      const g = this.gaps.get(lane) ?? [];
      if (g.length < MAX_EVENTS) g.push([prev, e.ts]);
      this.gaps.set(lane, g);
    }
    const msg = e.msg;
    if (e.service === 'zookeeper') {
      let m: RegExpExecArray | null;
      if (ZK_START.test(msg)) this.banner(e);
      else if ((m = ZK_EXPIRE.exec(msg)) || (m = ZK_CLOSE.exec(msg))) {
        if (this.sessionEnds.length < MAX_EVENTS) {
          this.sessionEnds.push({ session: normSession(m[1]!), ts: e.ts, how: msg.startsWith('Expiring') ? 'expired' : 'closed', by: e.node, ev: evidence(e) });
        }
      }
      return;
    }
    // glog writes "Log file created at:" as the first line of a new file: a restart when it
    // follows a silence of the same lane (a rotation follows the lane's last line closely).
    if (e.fmt === 'text' && e.text.startsWith('Log file created at:') && (prev === undefined || e.ts - prev > 5_000)) {
      if (prev !== undefined) this.banner(e);
      return;
    }
    if (e.fmt !== 'glog' && e.fmt !== 'log4j') return;
    if (STARTING.test(msg)) this.banner(e);
    let m = LISTEN.exec(msg);
    if (m) {
      const ep = `${m[1]}:${m[2]}`;
      const arr = this.listens.get(ep) ?? [];
      if (!arr.some((x) => x.node === e.node)) arr.push({ node: e.node, service: e.service, ev: evidence(e) });
      this.listens.set(ep, arr);
    }
    if (msg.indexOf('ession') >= 0 && (m = SESSION.exec(msg)) && !this.sessionNode.has(normSession(m[1]!))) {
      this.sessionNode.set(normSession(m[1]!), { node: e.node, service: e.service, ev: evidence(e) });
    }
    if (msg.indexOf('leader') >= 0 || msg.indexOf('Leader') >= 0) {
      if (JOINED.test(msg)) {
        // nothing more: the session on the same line is what ties it to the node
      } else if ((m = BECAME.exec(msg))) {
        if (this.leaderLines.length < MAX_EVENTS) this.leaderLines.push({ node: e.node, service: e.service, ts: e.ts, epoch: m[1] ?? null, ev: evidence(e) });
      } else if ((m = LEADER_IS.exec(msg))) {
        if (this.leaderSeen.length < MAX_EVENTS) this.leaderSeen.push({ ts: e.ts, endpoint: `${m[1]}:${m[2]}`, node: e.node, ev: evidence(e) });
      }
    }
    if (msg.indexOf('-->') >= 0) {
      const s = SOCKET.exec(msg);
      if (s && !ECODE.test(e.text) && !(e.more ?? []).some((l) => ECODE.test(l)) && e.level !== 'E' && e.level !== 'F') {
        const ep = `${s[3]}:${s[4]}`;
        const arr = this.served.get(ep) ?? [];
        if (arr.length < MAX_SERVED) arr.push({ ts: e.ts, e });
        this.served.set(ep, arr);
      }
    }
  }

  private banner(e: Entry): void {
    if (this.banners.length < MAX_EVENTS) this.banners.push({ node: e.node, service: e.service, ts: e.ts, ev: evidence(e) });
  }

  /** The last line of a lane at or before ts when the lane then paused across ts (or ended). */
  lastBefore(node: string, service: string, ts: number): number | undefined {
    const lane = `${node}\u0000${service}`;
    const g = (this.gaps.get(lane) ?? []).find(([a, b]) => a <= ts && b > ts);
    if (g) return g[0];
    const last = this.lastTs.get(lane);
    return last !== undefined && last <= ts ? last : undefined;
  }

  /** The first call served at `endpoint` at or after `ts`. */
  firstServed(endpoint: string, ts: number): Entry | undefined {
    const arr = this.served.get(endpoint);
    if (!arr) return undefined;
    let lo = 0;
    let hi = arr.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (arr[mid]!.ts < ts) lo = mid + 1;
      else hi = mid;
    }
    return arr[lo]?.e;
  }

  finish(ctx: DetectorContext): Finding[] {
    const out: Finding[] = [];
    for (const b of this.banners) {
      out.push({
        kind: 'process-start',
        severity: 'info',
        from: b.ts,
        to: b.ts,
        node: b.node,
        service: b.service,
        title: `${b.node} ${b.service} started at ${ctx.tz.format(b.ts, 3)}`,
        evidence: [b.ev],
      });
    }
    // Expiries are the quorum detector's (zk-session-expired); closes are told here.
    for (const s of this.sessionEnds) {
      if (s.how === 'expired') continue;
      const owner = this.sessionNode.get(s.session);
      out.push({
        kind: 'zk-session-ended',
        severity: 'info',
        from: s.ts,
        to: s.ts,
        node: s.by,
        service: 'zookeeper',
        title: `ZooKeeper closed session ${s.session}${owner ? ` (${owner.node} ${owner.service})` : ''} at ${ctx.tz.format(s.ts, 3)}`,
        facts: { session: s.session, how: s.how, ownerNode: owner?.node ?? null },
        evidence: [s.ev],
      });
    }
    return out;
  }
}
