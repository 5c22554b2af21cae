/**
 * The verdicts: conclusions drawn from several findings together.
 *
 * Gray failure of a leader (the seed's pattern): clients on other nodes fail against one endpoint
 * while its node is silent (or, with the node still logging, for at least a minute: a hung
 * service), ZooKeeper keeps a quorum (no election among the others) and no client moves to
 * another endpoint of the same role. The leader's ZooKeeper
 * session — and so its election znode — outlived its ability to serve.
 *
 * ZooKeeper leader change: an election whose previous leader went silent or was killed.
 */
import type { DetectorContext } from './detector.ts';
import type { QuorumFacts } from './quorum.ts';
import { formatDuration } from './time.ts';
import type { EvidenceLine, Finding } from './types.ts';

const FAILING = /timed?out|refused|unreach|reset|ETimedOut|Exception/i;
/** Failures against a leader whose node still logs count only when they last this long. */
const SUSTAINED_MS = 60_000;

export function verdicts(ctx: DetectorContext, q: QuorumFacts): Finding[] {
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
    const life = silence ? fs.find((f) => f.kind === 'last-sign-of-life' && f.node === target) : undefined;
    const survivors = ctx.nodes.filter((n) => n !== target);
    const looking = q.lookingTimes.filter((l) => l.node !== target && l.ts >= windowFrom && l.ts <= lastFail);
    const elections = q.elections.filter((el) => el.leader !== target && el.ts >= windowFrom && el.ts <= lastFail);
    const drop = fs.find((f) => f.kind === 'quorum-member-dropped' && f.facts?.peer === target && f.to >= windowFrom - 60_000 && f.to <= lastFail + 60_000);
    const zkLeader = [...q.leading].filter((l) => l.node !== target && l.ts <= (drop?.to ?? lastFail)).sort((a, b) => b.ts - a.ts)[0]?.node
      ?? (drop ? String(drop.facts!.by) : undefined);
    const otherSameRole = calls.filter((f) => f.facts!.remoteRole === role && String(f.facts!.remote) !== remote && f.from >= firstFail);
    const quorumKept = looking.length === 0 && elections.length === 0;
    if (!quorumKept || otherSameRole.length > 0) continue;
    const end = silence?.facts?.resumed ? silence.to : lastFail;
    const from = life && life.facts?.beforeSilence ? life.from : windowFrom;
    const reasons = [
      silence
        ? `${target} stopped: ${life ? life.detail ?? life.title : `silent from ${ctx.tz.format(silence.from, 3)}`}; ${silence.facts?.resumed ? `its logs resume ${ctx.tz.format(silence.to, 3)}` : 'no line after it in the bundle'}.`
        : `${target} itself kept logging: the node is up, its ${role} is not serving (a hung service, not a dead node).`,
      `${observers.join(', ')} failed ${count} call(s) against ${remote} (${target}'s ${role}) from ${ctx.tz.format(firstFail, 3)} to ${ctx.tz.format(lastFail, 3)}.`,
      drop
        ? `ZooKeeper kept a quorum without ${target}: ${drop.title}; no election among ${survivors.join(', ')} in the window.`
        : `ZooKeeper kept a quorum: no election among ${survivors.join(', ')} in the window.`,
      `No leader change seen: clients kept calling ${remote} and no other ${role} endpoint appears; the leader's ZooKeeper session (and its ephemeral election znode) stayed alive — its heartbeats need no disk — so nobody took over.`,
    ];
    const ev: EvidenceLine[] = [
      ...(life ? life.evidence.slice(-3) : []),
      ...(drop ? drop.evidence.slice(-2) : []),
      ...group.flatMap((f) => f.evidence.slice(0, 1)),
    ];
    out.push({
      kind: 'verdict', severity: 'error', from, to: end, node: target,
      title: `Gray failure of the ${role} leader on ${target} (${remote}): alive in ZooKeeper, not serving — ${ctx.tz.format(from, 0)} to ${ctx.tz.format(end, 0)} (${formatDuration(end - from)})`,
      detail: reasons.join('\n'),
      facts: {
        verdict: 'gray-failure', leaderNode: target, endpoint: remote, role, from, to: end, observers,
        failedCalls: count, zkLeader: zkLeader ?? null, zkDropAt: drop ? drop.to : null, quorumKept,
      },
      evidence: ev,
    });
  }

  // ZooKeeper leader changes.
  const elections = fs.filter((f) => f.kind === 'quorum-election' && f.facts?.previousLeader && f.facts.previousLeader !== f.facts.leader);
  for (const el of elections) {
    const prev = String(el.facts!.previousLeader);
    const life = fs.find((f) => f.kind === 'last-sign-of-life' && f.node === prev);
    const silentBefore = life && life.to <= el.to;
    out.push({
      kind: 'verdict', severity: 'warn', from: silentBefore ? life.to : el.from, to: el.to, node: String(el.facts!.leader),
      title: `ZooKeeper leader changed from ${prev} to ${el.facts!.leader} at ${ctx.tz.format(el.to, 3)}${silentBefore ? ` (${prev}'s last sign of life ${ctx.tz.format(life.to, 3)}, ${formatDuration(el.to - life.to)} earlier)` : ''}`,
      facts: { verdict: 'zk-leader-change', previousLeader: prev, leader: String(el.facts!.leader), at: el.to },
      evidence: el.evidence.slice(0, 6),
    });
  }
  return out;
}
