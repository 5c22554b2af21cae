/**
 * ZooKeeper quorum events from the servers' own logs (3.4 to 3.8 wording): members dropped by the
 * leader (transaction timeout, read timeout, GOODBYE), state changes and elections
 * (LOOKING/LEADING/FOLLOWING, "LEADER ELECTION TOOK"), learner sync (DIFF/SNAP/TRUNC with zxids),
 * followers losing their leader, sessions expired by the server, "Got zxid … expected …".
 */
import { isLive, type Detector, type DetectorContext } from './detector.ts';
import { evidence, type Entry, type EvidenceLine, type Finding } from './types.ts';

/** Each kind of event is kept up to this many times: memory stays bounded on any bundle. */
const MAX_EVENTS = 10_000;

export type PeerState = 'LOOKING' | 'LEADING' | 'FOLLOWING' | 'OBSERVING';

interface StateEvent {
  e: Entry;
  state: PeerState;
  tookMs?: number;
}
interface Drop {
  e: Entry;
  reasons: Entry[];
  peerAddr?: string;
  peerSid?: number;
}

const GOODBYE = /GOODBYE \/?([\w.:-]+)/;
const TOOK = /^(LEADING|FOLLOWING|OBSERVING) - LEADER ELECTION TOOK - (\d+)/;
const LEARNER_SYNC = /^(Getting a diff from the leader|Getting a snapshot from leader|Truncating log to get in sync with the leader) (0x[0-9a-fA-F]+)/;
const LEADER_SYNC = /^Sending (DIFF|SNAP|TRUNC) zxid=(0x[0-9a-fA-F]+) +for peer sid: ?(\d+)/;
const LEADER_SNAP = /^Sending snapshot last zxid of peer is (0x[0-9a-fA-F]+), zxid of leader is (0x[0-9a-fA-F]+)/;
const LEADER_TRUNC = /^Sending TRUNC to follower zxidToSend=(0x[0-9a-fA-F]+) for peer sid: ?(\d+)/;
const EXPIRE = /^Expiring session (0x[0-9a-fA-F]+), timeout of (\d+)ms exceeded/;
const GOT_ZXID = /^Got zxid (0x[0-9a-fA-F]+) expected (0x[0-9a-fA-F]+)/;
const SUPPORTERS = /^Have quorum of supporters, sids: \[\[?([\d, ]*)\]?\]; starting up and setting last processed zxid: (0x[0-9a-fA-F]+)/;
const CLOSING_LEARNER = /^Synchronously closing socket to learner (\d+)/;
const FOLLOWER_SID = /^Follower sid: (\d+) :/;

export interface QuorumFacts {
  /** node → times it started leading (LEADING lines, or first LearnerHandler activity). */
  leading: { node: string; ts: number }[];
  /** LEADING lines; `servingAt`: when the new leader had its quorum ("Have quorum of supporters"), when logged. */
  elections: { ts: number; leader: string; servingAt: number | null }[];
  /** Every state change of every server, in time order: what each was doing at any moment. */
  states: { node: string; ts: number; state: PeerState }[];
  drops: { ts: number; by: string; peer?: string }[];
}

/** The state a server was last seen in at or before `ts` (undefined: no state line by then). */
export function stateAt(q: QuorumFacts, node: string, ts: number): PeerState | undefined {
  let out: PeerState | undefined;
  for (const s of q.states) if (s.node === node && s.ts <= ts) out = s.state;
  return out;
}

export class QuorumDetector implements Detector {
  readonly name = 'quorum';
  private readonly states: StateEvent[] = [];
  private readonly lastState = new Map<string, PeerState>();
  private readonly pendingReason = new Map<string, Entry[]>();
  private readonly threadSid = new Map<string, number>();
  private readonly drops: Drop[] = [];
  private readonly syncs: { e: Entry; kind: string; zxid: string; peerSid?: number }[] = [];
  private readonly expiries = new Map<string, { first: Entry; last: Entry; sessions: string[]; count: number; ev: Entry[] }[]>();
  private readonly zxidGot: Entry[] = [];
  private readonly lostLeader: Entry[] = [];
  private readonly supporters: { e: Entry; sids: number[]; zxid: string }[] = [];
  private readonly learnerHandlerSeen = new Map<string, Entry>();

  readonly facts: QuorumFacts = { leading: [], elections: [], states: [], drops: [] };

  observe(e: Entry): void {
    if (!isLive(e) || e.service !== 'zookeeper' || e.fmt !== 'log4j') return;
    const msg = e.msg;
    const th = e.thread ?? '';
    const c = msg.charCodeAt(0);
    if (th.startsWith('LearnerHandler-') && !this.learnerHandlerSeen.has(e.node)) this.learnerHandlerSeen.set(e.node, e);
    // State lines are the bare words.
    if ((c === 76 || c === 70 || c === 79) && (msg === 'LOOKING' || msg === 'LEADING' || msg === 'FOLLOWING' || msg === 'OBSERVING')) {
      this.state(e, msg);
      return;
    }
    let m: RegExpExecArray | null;
    if (
      msg.startsWith('Closing connection to peer due to transaction timeout') ||
      msg.startsWith('Unexpected exception in LearnerHandler') ||
      msg.startsWith('Unexpected exception causing shutdown')
    ) {
      const key = `${e.node}\u0000${th}`;
      const arr = this.pendingReason.get(key) ?? [];
      arr.push(e);
      this.pendingReason.set(key, arr.slice(-3));
      // The leader's main thread logs the timeout; the handler thread logs GOODBYE.
      const any = this.pendingReason.get(`${e.node}\u0000*`) ?? [];
      any.push(e);
      this.pendingReason.set(`${e.node}\u0000*`, any.slice(-3));
      return;
    }
    if (this.threadSid.size > 50_000) this.threadSid.clear();
    if (this.pendingReason.size > 50_000) this.pendingReason.clear();
    if ((m = CLOSING_LEARNER.exec(msg))) {
      this.threadSid.set(`${e.node}\u0000${th}`, Number(m[1]));
      return;
    }
    if ((m = FOLLOWER_SID.exec(msg))) {
      this.threadSid.set(`${e.node}\u0000${th}`, Number(m[1]));
      return;
    }
    if (msg.indexOf('GOODBYE') >= 0 && (m = GOODBYE.exec(msg))) {
      const reasons = [...(this.pendingReason.get(`${e.node}\u0000${th}`) ?? []), ...(this.pendingReason.get(`${e.node}\u0000*`) ?? [])].filter(
        (r, i, a) => e.ts - r.ts <= 2000 && e.ts >= r.ts - 5 && a.indexOf(r) === i,
      );
      const d: Drop = { e, reasons, peerAddr: m[1]! };
      const sid = this.threadSid.get(`${e.node}\u0000${th}`);
      if (sid !== undefined) d.peerSid = sid;
      if (this.drops.length < MAX_EVENTS) this.drops.push(d);
      this.pendingReason.delete(`${e.node}\u0000${th}`);
      this.pendingReason.delete(`${e.node}\u0000*`);
      return;
    }
    if ((m = TOOK.exec(msg))) {
      const last = [...this.states].reverse().find((s) => s.e.node === e.node);
      if (last && last.state === m[1] && e.ts - last.e.ts < 60_000) last.tookMs = Number(m[2]);
      return;
    }
    if ((m = LEARNER_SYNC.exec(msg))) {
      const kind = m[1]!.startsWith('Getting a diff') ? 'DIFF' : m[1]!.startsWith('Getting a snapshot') ? 'SNAP' : 'TRUNC';
      if (this.syncs.length < MAX_EVENTS) this.syncs.push({ e, kind, zxid: m[2]! });
      return;
    }
    if ((m = LEADER_SYNC.exec(msg))) {
      if (this.syncs.length < MAX_EVENTS) this.syncs.push({ e, kind: m[1]!, zxid: m[2]!, peerSid: Number(m[3]) });
      return;
    }
    if (msg.startsWith('Sending ') && (m = LEADER_SNAP.exec(msg))) {
      const sid = this.threadSid.get(`${e.node}\u0000${th}`);
      if (this.syncs.length < MAX_EVENTS) this.syncs.push({ e, kind: 'SNAP', zxid: m[2]!, ...(sid !== undefined ? { peerSid: sid } : {}) });
      return;
    }
    if (msg.startsWith('Sending TRUNC') && (m = LEADER_TRUNC.exec(msg))) {
      if (this.syncs.length < MAX_EVENTS) this.syncs.push({ e, kind: 'TRUNC', zxid: m[1]!, peerSid: Number(m[2]) });
      return;
    }
    if ((m = EXPIRE.exec(msg))) {
      const arr = this.expiries.get(e.node) ?? [];
      const g = arr[arr.length - 1];
      if (g && e.ts - g.last.ts <= 10_000) {
        g.last = e;
        g.count++;
        if (g.sessions.length < 50) g.sessions.push(m[1]!);
        if (g.ev.length < 5) g.ev.push(e);
      } else if (arr.length < MAX_EVENTS) arr.push({ first: e, last: e, sessions: [m[1]!], count: 1, ev: [e] });
      this.expiries.set(e.node, arr);
      return;
    }
    if ((m = GOT_ZXID.exec(msg))) {
      if (this.zxidGot.length < 1000) this.zxidGot.push(e);
      return;
    }
    if (msg.startsWith('Exception when following the leader') || msg.startsWith('Exception when observing the leader')) {
      if (this.lostLeader.length < 1000) this.lostLeader.push(e);
      return;
    }
    if ((m = SUPPORTERS.exec(msg))) {
      if (this.supporters.length < MAX_EVENTS) this.supporters.push({ e, sids: m[1]!.split(/[ ,]+/).filter(Boolean).map(Number), zxid: m[2]! });
    }
  }

  private state(e: Entry, s: PeerState): void {
    if (this.lastState.get(e.node) === s && s !== 'LOOKING') return;
    this.lastState.set(e.node, s);
    if (this.states.length < MAX_EVENTS) this.states.push({ e, state: s });
  }

  finish(ctx: DetectorContext): Finding[] {
    const topo = ctx.topology;
    const out: Finding[] = [];
    const nodeOfSid = (sid: number | undefined): string | undefined => (sid === undefined ? undefined : topo.myidNode.get(sid));

    for (const d of this.drops) {
      const addr = d.peerAddr ?? '';
      const ip = addr.replace(/:\d+$/, '');
      const peer = nodeOfSid(d.peerSid) ?? topo.nodeOfAddress(ip);
      const reasonText = d.reasons.map((r) => {
        if (r.msg.startsWith('Closing connection to peer due to transaction timeout')) return 'transaction timeout (no ACK within syncLimit)';
        const ex = r.more?.[0]?.trim();
        return ex ? ex : r.msg;
      });
      // 3.8's handler thread logs its SocketException before GOODBYE, after the leader's own
      // "transaction timeout": the timeout is the cause, the exception its consequence.
      const reason = reasonText.find((r) => r.startsWith('transaction timeout')) ?? reasonText[0] ?? 'connection closed';
      this.facts.drops.push({ ts: d.e.ts, by: d.e.node, ...(peer ? { peer } : {}) });
      out.push({
        kind: 'quorum-member-dropped',
        severity: 'warn',
        from: d.reasons[0]?.ts ?? d.e.ts,
        to: d.e.ts,
        node: d.e.node,
        service: 'zookeeper',
        title: `${d.e.node}'s ZooKeeper dropped ${peer ? `${peer}'s ZooKeeper` : 'a learner'} (${addr}${d.peerSid !== undefined ? `, sid ${d.peerSid}` : ''}) at ${ctx.tz.format(d.e.ts, 3)}: ${reason}`,
        facts: { by: d.e.node, peer: peer ?? null, peerAddress: addr, peerSid: d.peerSid ?? null, reason },
        evidence: [...d.reasons.map((r) => evidence(r)), evidence(d.e)],
      });
    }

    // States and elections.
    let lastLeader: string | undefined;
    for (const s of this.states) {
      const { e, state } = s;
      this.facts.states.push({ node: e.node, ts: e.ts, state });
      const took = s.tookMs !== undefined ? ` (election took ${s.tookMs} ms)` : '';
      if (state === 'LEADING') {
        this.facts.leading.push({ node: e.node, ts: e.ts });
        const sup = this.supporters.find((x) => x.e.node === e.node && x.e.ts >= e.ts && x.e.ts - e.ts < 120_000);
        this.facts.elections.push({ ts: e.ts, leader: e.node, servingAt: sup ? sup.e.ts : null });
        const supNodes = sup ? sup.sids.map((sid) => nodeOfSid(sid) ?? `sid ${sid}`) : [];
        // The election began when the nodes that ended it went LOOKING: for each node, the start
        // of its run of LOOKING states right before this LEADING (a node that went LOOKING and
        // rejoined the old leader meanwhile is not part of it).
        const lookFrom: number[] = [];
        const seenNodes = new Set<string>();
        for (let k = this.states.indexOf(s) - 1; k >= 0; k--) {
          const x = this.states[k]!;
          if (e.ts - x.e.ts > 120_000) break;
          if (seenNodes.has(x.e.node)) continue;
          if (x.state !== 'LOOKING') {
            seenNodes.add(x.e.node);
            continue;
          }
          const prev = this.states
            .slice(0, k)
            .reverse()
            .find((y) => y.e.node === x.e.node);
          if (!prev || prev.state !== 'LOOKING') {
            lookFrom.push(x.e.ts);
            seenNodes.add(x.e.node);
          }
        }
        const from = lookFrom.length ? Math.min(...lookFrom) : e.ts;
        const ev: EvidenceLine[] = this.states
          .filter((x) => x.e.ts >= from && x.e.ts <= (sup ? sup.e.ts : e.ts) + 500)
          .slice(0, 10)
          .map((x) => evidence(x.e));
        if (sup) ev.push(evidence(sup.e));
        out.push({
          kind: 'quorum-election',
          severity: 'warn',
          from,
          to: sup ? sup.e.ts : e.ts,
          node: e.node,
          service: 'zookeeper',
          title: `ZooKeeper election: ${e.node} LEADING at ${ctx.tz.format(e.ts, 3)}${took}${lastLeader && lastLeader !== e.node ? `, replacing ${lastLeader}` : ''}${sup ? `; quorum ${supNodes.join(', ')} at zxid ${sup.zxid}` : ''}`,
          facts: { leader: e.node, previousLeader: lastLeader ?? null, tookMs: s.tookMs ?? null, quorum: supNodes, epochZxid: sup?.zxid ?? null },
          evidence: ev,
        });
        lastLeader = e.node;
      } else {
        out.push({
          kind: 'quorum-state',
          severity: state === 'LOOKING' ? 'warn' : 'info',
          from: e.ts,
          to: e.ts,
          node: e.node,
          service: 'zookeeper',
          title: `${e.node}'s ZooKeeper ${state}${took}`,
          facts: { state, tookMs: s.tookMs ?? null },
          evidence: [evidence(e)],
        });
      }
    }
    // A leader seen only through its learner handlers (the seed's node2).
    for (const [node, e] of this.learnerHandlerSeen) {
      if (!this.facts.leading.some((l) => l.node === node)) this.facts.leading.push({ node, ts: e.ts });
    }

    for (const s of this.syncs) {
      const peer = s.peerSid !== undefined ? (nodeOfSid(s.peerSid) ?? `sid ${s.peerSid}`) : undefined;
      const leaderSide = s.peerSid !== undefined || (s.e.thread ?? '').startsWith('LearnerHandler');
      const title = leaderSide
        ? `${s.e.node}'s ZooKeeper (leader) syncs ${peer ?? 'a learner'} by ${s.kind} at zxid ${s.zxid}`
        : `${s.e.node}'s ZooKeeper syncs from its leader by ${s.kind} (leader zxid ${s.zxid})`;
      out.push({
        kind: 'quorum-sync',
        severity: s.kind === 'DIFF' ? 'info' : 'warn',
        from: s.e.ts,
        to: s.e.ts,
        node: s.e.node,
        service: 'zookeeper',
        title,
        facts: { type: s.kind, zxid: s.zxid, peer: peer ?? null, side: leaderSide ? 'leader' : 'learner' },
        evidence: [evidence(s.e)],
      });
    }
    for (const [node, groups] of this.expiries) {
      for (const g of groups) {
        out.push({
          kind: 'zk-session-expired',
          severity: 'warn',
          from: g.first.ts,
          to: g.last.ts,
          node,
          service: 'zookeeper',
          title: `${node}'s ZooKeeper expired ${g.count} session(s) (${g.sessions.slice(0, 3).join(', ')}${g.sessions.length > 3 ? ', …' : ''})`,
          facts: { count: g.count, sessions: g.sessions },
          evidence: g.ev.map((x) => evidence(x)),
        });
      }
    }
    for (const e of this.zxidGot) {
      const m = GOT_ZXID.exec(e.msg)!;
      out.push({
        kind: 'zk-zxid-mismatch',
        severity: 'info',
        from: e.ts,
        to: e.ts,
        node: e.node,
        service: 'zookeeper',
        title: `${e.node}'s ZooKeeper: "Got zxid ${m[1]} expected ${m[2]}" (a learner's first txn after a sync; a gap in its history if it is not the start of an epoch)`,
        facts: { got: m[1]!, expected: m[2]! },
        evidence: [evidence(e)],
      });
    }
    for (const e of this.lostLeader) {
      const why = e.more?.[0]?.trim() ?? '';
      out.push({
        kind: 'zk-follower-lost-leader',
        severity: 'warn',
        from: e.ts,
        to: e.ts,
        node: e.node,
        service: 'zookeeper',
        title: `${e.node}'s ZooKeeper lost its leader${why ? `: ${why}` : ''}`,
        evidence: [evidence(e)],
      });
    }
    return out;
  }
}
