/**
 * The verdicts: conclusions drawn from several findings together.
 *
 * Gray failure of a leader (the seed's pattern): clients on other nodes fail against one endpoint
 * while its node is silent (or, with the node still logging, for at least a minute: a hung
 * service), ZooKeeper goes on serving without that node and no client moves to another endpoint
 * of the same role. The leader's ZooKeeper session — and so its election znode — outlived its
 * ability to serve. ZooKeeper goes on serving when it keeps its quorum, and also when the hung
 * node was ZooKeeper's own leader and the others elected a new one, as long as the clients still
 * fail after that election (the service's leader survived ZooKeeper's election). It is not a
 * gray failure of the service's leader but a ZooKeeper outage when the others are left without
 * a quorum (LOOKING, no leader among them, when the failures end), when the failures end with
 * ZooKeeper's election, or when the failing clients' own ZooKeeper sessions expire and no
 * ZooKeeper log shows the others serving.
 *
 * ZooKeeper leader change: an election whose previous leader went silent or was killed.
 */
import { hexZxid } from '../zkdata/format.ts';
import type { DataTerm, DataTrail } from './datatrail.ts';
import type { DetectorContext } from './detector.ts';
import type { Lane } from './lanes.ts';
import { stateAt, type QuorumFacts } from './quorum.ts';
import type { StoryDetector } from './story.ts';
import { formatDuration } from './time.ts';
import { evidence, type EvidenceLine, type Finding } from './types.ts';

/** What the verdict reads besides the findings: the story lines, ZooKeeper's data, the lanes. */
export interface StoryInputs {
  story: StoryDetector;
  trail: DataTrail | null;
  lanes: Lane[];
}

/** Per node: which of its lanes went on logging inside a window. */
function laneActivity(lanes: Lane[], node: string, from: number, to: number): { kept: string[]; stopped: string[] } {
  const kept: string[] = [];
  const stopped: string[] = [];
  for (const l of lanes) {
    if (l.node !== node) continue;
    const active = l.buckets.some(([t, n]) => n > 0 && t > from + l.bucketMs && t + l.bucketMs < to);
    (active ? kept : stopped).push(l.service);
  }
  return { kept, stopped };
}

/** ZooKeeper among the surviving nodes while an endpoint failed. */
type ZkDuring =
  | { kind: 'kept' }
  /** The first election among the others (when ZooKeeper served again), how many there were, and when the last one served. */
  | { kind: 'reelected'; leader: string; at: number; servingAt: number; previous: string | null; elections: number; lastServingAt: number }
  | { kind: 'lost'; looking: string[] };

function zookeeperDuring(q: QuorumFacts, survivors: string[], from: number, to: number): ZkDuring {
  const looked = q.states.some((s) => s.state === 'LOOKING' && survivors.includes(s.node) && s.ts >= from && s.ts <= to);
  const elected = q.elections.filter((el) => survivors.includes(el.leader) && el.ts >= from && el.ts <= to);
  if (!looked && elected.length === 0) return { kind: 'kept' };
  const end = survivors.map((n) => stateAt(q, n, to));
  if (!end.includes('LEADING') && end.includes('LOOKING')) return { kind: 'lost', looking: survivors.filter((_n, i) => end[i] === 'LOOKING') };
  // LOOKING, then back to the same leader: a member re-synced, the quorum held.
  const first = elected[0];
  if (!first) return { kind: 'kept' };
  const last = elected[elected.length - 1]!;
  const previous = q.elections.filter((el) => el.ts < first.ts && el.leader !== first.leader).pop()?.leader ?? null;
  return {
    kind: 'reelected',
    leader: first.leader,
    at: first.ts,
    servingAt: first.servingAt ?? first.ts,
    previous,
    elections: elected.length,
    lastServingAt: last.servingAt ?? last.ts,
  };
}

const FAILING = /timed?out|refused|unreach|reset|ETimedOut|Exception/i;
/** Failures against a leader whose node still logs count only when they last this long. */
const SUSTAINED_MS = 60_000;

export function verdicts(ctx: DetectorContext, q: QuorumFacts, inputs: StoryInputs): Finding[] {
  const { story, trail, lanes } = inputs;
  const out: Finding[] = [];
  const fs = ctx.findings;
  const calls = fs.filter((f) => f.kind === 'failed-calls' && f.facts && FAILING.test(String(f.facts.error)));
  const byRemote = new Map<string, Finding[]>();
  for (const f of calls) {
    const rn = f.facts!.remoteNode as string | null;
    const role = (f.facts!.remoteRole as string | null) ?? '';
    if (!rn || rn === f.node || role.startsWith('zookeeper')) continue;
    const k = String(f.facts!.remote);
    byRemote.set(k, [...(byRemote.get(k) ?? []), f]);
  }
  for (const [remote, group] of byRemote) {
    const target = group[0]!.facts!.remoteNode as string;
    const role = (group[0]!.facts!.remoteRole as string | null) ?? 'service';
    const firstFail = Math.min(...group.map((f) => f.from));
    const lastFail = Math.max(...group.map((f) => f.to));
    const count = group.reduce((n, f) => n + Number(f.facts!.count), 0);
    const observers = [...new Set(group.map((f) => `${f.node} ${f.service}`))];
    const silence = fs.find((f) => f.kind === 'silence' && f.node === target && f.from <= firstFail && f.to >= firstFail);
    // Without a silent node, the failures alone must make the case: sustained, not a blip.
    if (!silence && (lastFail - firstFail < SUSTAINED_MS || count < 3)) continue;
    const windowFrom = silence ? silence.from : firstFail;
    // The node's last sign of life is reported before its longest silence; it tells this story
    // only when that silence is the one the failures began in (a rebooted node may fall quiet again).
    const life = silence ? fs.find((f) => f.kind === 'last-sign-of-life' && f.node === target && f.facts?.beforeSilence && f.to === silence.from) : undefined;
    const survivors = ctx.nodes.filter((n) => n !== target);
    const zk = zookeeperDuring(q, survivors, windowFrom, lastFail);
    const drop = fs.find((f) => f.kind === 'quorum-member-dropped' && f.facts?.peer === target && f.to >= windowFrom - 60_000 && f.to <= lastFail + 60_000);
    const zkLeader =
      zk.kind === 'reelected'
        ? zk.leader
        : ([...q.leading].filter((l) => l.node !== target && l.ts <= (drop?.to ?? lastFail)).sort((a, b) => b.ts - a.ts)[0]?.node ??
          (drop ? String(drop.facts!.by) : undefined));
    // ZooKeeper's data: the term this endpoint held at the onset, and the one after it.
    const terms = trail?.terms.filter((t) => t.role === role || t.endpoint === remote) ?? [];
    const held: DataTerm | undefined = terms.filter((t) => t.endpoint === remote && t.from <= firstFail && (t.to === null || t.to >= windowFrom)).pop();
    const nextTerm = held
      ? terms.find((t) => t.electionPath === held.electionPath && t.from >= (held.to ?? Infinity))
      : terms.find((t) => t.from > firstFail && t.endpoint !== remote);
    // Without the data: the services' own "became leader" lines, then clients' "leader is".
    const leaderLine = !nextTerm ? story.leaderLines.find((l) => l.ts > firstFail && l.node !== target) : undefined;
    const seen = !nextTerm && !leaderLine ? story.leaderSeen.find((l) => l.ts > firstFail && l.endpoint !== remote) : undefined;
    const handoverAt = nextTerm?.from ?? leaderLine?.ts ?? seen?.ts;
    const newEndpoint =
      nextTerm?.endpoint ??
      seen?.endpoint ??
      (leaderLine ? [...story.listens].find(([, cs]) => cs.some((c) => c.node === leaderLine.node && c.service === leaderLine.service))?.[0] : undefined) ??
      null;
    const otherSameRole = calls.filter(
      (f) => f.facts!.remoteRole === role && String(f.facts!.remote) !== remote && f.from >= firstFail && (handoverAt === undefined || f.from < handoverAt),
    );
    if (otherSameRole.length > 0) continue;
    // A ZooKeeper outage, not this leader's gray failure (see the head of this file).
    if (zk.kind === 'lost') continue;
    if (zk.kind === 'reelected' && !group.some((f) => f.to > zk.lastServingAt)) continue;
    const observerLanes = new Set(group.map((f) => `${f.node}\u0000${f.service}`));
    const clientsLostZk = fs.some(
      (f) => f.kind === 'service-session-expired' && observerLanes.has(`${f.node}\u0000${f.service}`) && f.to >= windowFrom && f.from <= lastFail,
    );
    if (clientsLostZk && !q.states.some((st) => survivors.includes(st.node))) continue;
    const quorumKept = zk.kind === 'kept';

    // The old leader's session: from the data (the term's owner) or the service's own line.
    const oldSession = held?.session ?? [...story.sessionNode].find(([, o]) => o.node === target)?.[0];
    const zkEnd = oldSession ? story.sessionEnds.find((e) => e.session === oldSession && e.ts >= windowFrom) : undefined;
    const dataEnd = oldSession ? trail?.sessions.get(oldSession) : undefined;
    const sessionEndAt = dataEnd?.ended ?? zkEnd?.ts ?? null;
    const sessionHow = zkEnd?.how ?? (dataEnd?.ended ? 'closed or expired' : null);
    // Restarts of the hung node after the onset, from start banners.
    const restarts = story.banners.filter((b) => b.node === target && b.ts > windowFrom);
    const firstRestart = new Map<string, (typeof restarts)[number]>();
    for (const b of restarts) if (!firstRestart.has(b.service)) firstRestart.set(b.service, b);
    // Service restored: the first call served by the new leader (or by the old one, back).
    const served = newEndpoint ? story.firstServed(newEndpoint, handoverAt ?? firstFail) : story.firstServed(remote, lastFail);
    const restoredAt = served?.ts;
    const silentEnd = silence?.facts?.resumed ? silence.to : lastFail;
    const end = restoredAt ?? silentEnd;
    // Onset: the node's last sign of life before its silence, else the failing service's last
    // line before the first failure (its own lane paused there).
    const svc = story.listens.get(remote)?.[0]?.service;
    const svcLast = svc ? story.lastBefore(target, svc, firstFail) : undefined;
    const from = life ? life.from : silence ? Number(silence.facts?.onset ?? silence.from) : (svcLast ?? windowFrom);
    const back = Math.min(...[...firstRestart.values()].map((b) => b.ts), silence?.facts?.resumed ? silence.to : Infinity, end);
    const activity = laneActivity(lanes, target, from, back);
    const nodeState = activity.kept.length === 0 ? 'silent' : 'hung-service';
    const T = (t: number): string => ctx.tz.format(t, 3);
    const oldEpoch = held ? hexZxid(held.epoch) : null;
    const newEpoch = nextTerm ? hexZxid(nextTerm.epoch) : (leaderLine?.epoch ?? null);
    const reasons = [
      nodeState === 'silent'
        ? `${target} went silent: ${life ? (life.detail ?? life.title) : `every log of ${target} stops after ${T(from)}`}; ${silence?.facts?.resumed ? `its logs resume ${T(silence.to)}` : restarts.length ? `it logs again from ${T(back)}` : 'no line after it in the bundle'}.`
        : `${target} itself kept logging (${activity.kept.join(', ')}): the node is up, its ${role} is not serving (a hung service, not a dead node)${svc ? `; ${svc}'s last line ${T(from)}` : ''}.`,
      `${observers.join(', ')} failed ${count} call(s) against ${remote} (${target}'s ${role}${held ? ' leader' : ''}) from ${T(firstFail)} to ${T(lastFail)}.`,
      zk.kind === 'reelected'
        ? `ZooKeeper elected a new leader without ${target}: ${zk.leader}'s ZooKeeper LEADING at ${T(zk.at)}${zk.previous ? `, replacing ${zk.previous}'s` : ''}, serving from ${T(zk.servingAt)}${zk.elections > 1 ? ` (${zk.elections - 1} more election(s) among them after it, the last serving from ${T(zk.lastServingAt)})` : ''}; ZooKeeper went on serving, yet the calls against ${remote} still failed after it and no other ${role} took over: the ${role} leader's session outlived ZooKeeper's election.`
        : drop
          ? `ZooKeeper kept a quorum without ${target}: ${drop.title}; no election among ${survivors.join(', ')} in the window.`
          : `ZooKeeper kept a quorum: no election among ${survivors.join(', ')} in the window.`,
      sessionEndAt !== null
        ? `ZooKeeper kept the leader's session ${oldSession} (and its ephemeral election znode) alive until ${T(sessionEndAt)}: ${sessionHow === 'expired' ? 'expired by ZooKeeper' : sessionHow === 'closed' ? 'closed by its client' : 'closed or expired (the transaction log does not say which)'}${zkEnd ? ` (${zkEnd.ev.file}:${zkEnd.ev.line})` : ' (transaction log)'}.`
        : handoverAt === undefined
          ? `No leader change seen: clients kept calling ${remote} and no other ${role} endpoint appears; the leader's ZooKeeper session (and its ephemeral election znode) stayed alive — its heartbeats need no disk — so nobody took over.`
          : `The leader's session${oldSession ? ` ${oldSession}` : ''}: its end is not in the bundle.`,
      ...[...firstRestart.values()].map((b) => `${target}'s ${b.service} restarted at ${T(b.ts)} (${b.ev.file}:${b.ev.line}).`),
      ...(handoverAt !== undefined
        ? [
            `Handover: ${remote}${oldEpoch ? ` (epoch ${oldEpoch})` : ''} → ${newEndpoint ?? 'another endpoint'}${newEpoch ? ` (epoch ${newEpoch})` : ''} at ${T(handoverAt)}${nextTerm ? " (ZooKeeper's data)" : leaderLine ? ` (${leaderLine.ev.file}:${leaderLine.ev.line})` : ''}.`,
          ]
        : []),
      ...(served
        ? [
            `Service restored at ${T(served.ts)}: the first call served by ${newEndpoint ?? remote} (${served.node} ${served.service}, ${served.file}:${served.line}); unavailable ${formatDuration(served.ts - firstFail)} from the first failed call.`,
          ]
        : []),
    ];
    const ev: EvidenceLine[] = [
      ...(life ? life.evidence.slice(-3) : []),
      ...(drop ? drop.evidence.slice(-2) : []),
      ...group.flatMap((f) => f.evidence.slice(0, 1)),
      ...(zkEnd ? [zkEnd.ev] : []),
      ...[...firstRestart.values()].map((b) => b.ev),
      ...(leaderLine ? [leaderLine.ev] : []),
      ...(served ? [evidence(served)] : []),
    ];
    const storyFacts = {
      onset: from,
      firstFailure: firstFail,
      nodeState,
      keptLogging: activity.kept,
      oldSession: oldSession ?? null,
      sessionEndedAt: sessionEndAt,
      sessionEnd: sessionHow,
      restarts: [...firstRestart.values()].map((b) => `${b.service} ${b.ts}`),
      restartedAt: restarts[0]?.ts ?? null,
      handoverAt: handoverAt ?? null,
      oldEpoch,
      newEndpoint,
      newEpoch,
      restoredAt: restoredAt ?? null,
      unavailableMs: restoredAt !== undefined ? restoredAt - firstFail : null,
    };
    out.push({
      kind: 'verdict',
      severity: 'error',
      from,
      to: end,
      node: target,
      title: `Gray failure of the ${role} leader on ${target} (${remote}): alive in ZooKeeper, not serving — ${ctx.tz.format(from, 0)} to ${ctx.tz.format(end, 0)} (${formatDuration(end - from)})${handoverAt !== undefined ? `; handed over to ${newEndpoint ?? 'another endpoint'} at ${ctx.tz.format(handoverAt, 0)}` : ''}`,
      detail: reasons.join('\n'),
      facts: {
        verdict: 'gray-failure',
        leaderNode: target,
        endpoint: remote,
        role,
        from,
        to: end,
        observers,
        failedCalls: count,
        zkLeader: zkLeader ?? null,
        zkDropAt: drop ? drop.to : null,
        quorumKept,
        // ZooKeeper's own election among the others while the leader failed (its leader on the hung node, typically).
        zkElectedLeader: zk.kind === 'reelected' ? zk.leader : null,
        zkElectedAt: zk.kind === 'reelected' ? zk.at : null,
        zkServingAt: zk.kind === 'reelected' ? zk.servingAt : null,
        zkPreviousLeader: zk.kind === 'reelected' ? zk.previous : null,
        ...storyFacts,
      },
      evidence: ev,
    });
    // The handover and the restoration are findings of their own (marks on the lanes).
    if (handoverAt !== undefined) {
      fs.push({
        kind: 'handover',
        severity: 'warn',
        from: handoverAt,
        to: handoverAt,
        node: nextTerm?.endpoint ? ctx.topology.endpoint(nextTerm.endpoint).node : leaderLine?.node,
        title: `${role} leadership handed over: ${remote}${oldEpoch ? ` (epoch ${oldEpoch})` : ''} → ${newEndpoint ?? 'another endpoint'}${newEpoch ? ` (epoch ${newEpoch})` : ''} at ${T(handoverAt)}`,
        facts: { from: remote, to: newEndpoint, oldEpoch, newEpoch, at: handoverAt },
        evidence: leaderLine ? [leaderLine.ev] : [],
      });
    }
    if (served) {
      fs.push({
        kind: 'restored',
        severity: 'info',
        from: served.ts,
        to: served.ts,
        node: served.node,
        service: served.service,
        title: `${role} service restored at ${T(served.ts)}: first call served by ${newEndpoint ?? remote} (unavailable ${formatDuration(served.ts - firstFail)})`,
        facts: { endpoint: newEndpoint ?? remote, at: served.ts, unavailableMs: served.ts - firstFail },
        evidence: [evidence(served)],
      });
    }
  }

  // ZooKeeper leader changes.
  const elections = fs.filter((f) => f.kind === 'quorum-election' && f.facts?.previousLeader && f.facts.previousLeader !== f.facts.leader);
  for (const el of elections) {
    const prev = String(el.facts!.previousLeader);
    // The old leader's last sign of life: before the silence the election fell in, else its last line.
    const quiet = fs.find((f) => f.kind === 'silence' && f.node === prev && f.from <= el.to && f.to >= el.to);
    const life = fs.find((f) => f.kind === 'last-sign-of-life' && f.node === prev);
    const lastSign = quiet ? quiet.from : life && life.to <= el.to ? life.to : undefined;
    out.push({
      kind: 'verdict',
      severity: 'warn',
      from: lastSign ?? el.from,
      to: el.to,
      node: String(el.facts!.leader),
      title: `ZooKeeper leader changed from ${prev} to ${el.facts!.leader} at ${ctx.tz.format(el.to, 3)}${lastSign !== undefined ? ` (${prev}'s last sign of life ${ctx.tz.format(lastSign, 3)}, ${formatDuration(el.to - lastSign)} earlier)` : ''}`,
      facts: { verdict: 'zk-leader-change', previousLeader: prev, leader: String(el.facts!.leader), at: el.to },
      evidence: el.evidence.slice(0, 6),
    });
  }
  return out;
}
