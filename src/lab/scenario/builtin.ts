/**
 * The built-in scenarios (`zkwarden lab list`). Each is a plain Scenario (spec.ts), checked like a
 * user's file; their timings are the cluster's defaults (src/lab/cluster/config.ts: tickTime
 * 200 ms, session timeout 4 s, chunk timeout 2 s) unless they say otherwise.
 *
 * hba-hang holds its fault for 34 s before the reboot: `zkwarden investigate` calls a node silent
 * from 30 s of silence on (its default), and the run's bundle must read like the seed's with no
 * flags. With the guard on, the hold ends as soon as a chunk is served by another leader.
 */
import { checkScenario, type Scenario, type Step } from './spec.ts';

const settle: Step[] = [{ do: 'until', fact: 'served', timeoutMs: 60_000 }];
const recover = (ms = 60_000): Step[] => [
  { do: 'until', fact: 'recovered', timeoutMs: ms },
  { do: 'wait', ms: 1000 },
];

const raw: Scenario[] = [
  {
    name: 'hba-hang',
    description:
      "the seed: node1 leads the metas and its disk stops completing I/O (every operation); CPU and network stay. ZooKeeper drops node1's server, keeps its quorum, and names node1's meta for the whole fault; the chunks time out and expire. Then node1 is rebooted.",
    cluster: { connectOrder: { node1: 'others-first' } },
    steps: [
      { do: 'start', metaLeader: 'node1', zkLeaderNot: 'node1' },
      ...settle,
      { do: 'wait', ms: 2000 },
      { do: 'inject', fault: { kind: 'disk-stall', node: 'node1' }, name: 'hba' },
      { do: 'until', fact: 'failover', timeoutMs: 34_000, else: 'continue' },
      { do: 'observe', note: 'end of the hold' },
      { do: 'wait', ms: 2000 },
      { do: 'reboot', node: 'node1' },
      ...recover(),
    ],
    expect: {
      recovered: true,
      zkDropped: true,
      zkQuorumKept: true,
      guardOff: { faultedLeaderKept: true, noFailoverDuringFault: true, chunksTimedOut: true, chunksExpired: true, metaInD: true },
      guardOn: { failoverWithinMs: 'sessionTimeoutMs + 4000', newTerms: 1 },
    },
  },
  {
    name: 'hba-hang-remedy',
    description:
      "hba-hang ended by an operator: after 32 s of the dead leader, its session is ended from outside (endSession); the successor serves; node1's disk is released and the old leader's late write goes through ZooKeeper, whose fenced check refuses it. (The demo's first act.)",
    cluster: { connectOrder: { node1: 'others-first' } },
    // The chunks' first timeout comes after node1's ZooKeeper has logged its drop (about 2.5 s into
    // the stall): the disk is released here, not failed by a reboot, so the lines node1's threads
    // made in the stall's first seconds (stuck in its logger until then) land in its log, and the
    // silence `investigate` reads must still cover the first failed call, as in the seed (10 s).
    timings: { chunkTimeoutMs: 5000, chunkSessionExpireMs: 7000 },
    steps: [
      { do: 'start', metaLeader: 'node1', zkLeaderNot: 'node1' },
      ...settle,
      { do: 'wait', ms: 2000 },
      { do: 'inject', fault: { kind: 'disk-stall', node: 'node1' }, name: 'hba' },
      { do: 'until', fact: 'meta-in-D', timeoutMs: 15_000 },
      { do: 'until', fact: 'chunks-expired', timeoutMs: 30_000, else: 'continue' },
      { do: 'until', fact: 'failover', timeoutMs: 32_000, else: 'continue' },
      { do: 'observe', note: "ZooKeeper still names node1's meta: nothing inside ZooKeeper will change that" },
      { do: 'end-session', node: 'node1' },
      { do: 'until', fact: 'failover', timeoutMs: 20_000 },
      { do: 'heal', name: 'hba' },
      { do: 'until', fact: 'late-write-refused', timeoutMs: 20_000 },
      ...recover(),
    ],
    expect: {
      recovered: true,
      zkDropped: true,
      metaInD: true,
      guardOff: { faultedLeaderKept: true, noFailoverDuringFault: true, chunksExpired: true, newTerms: 1, lateWriteRefused: true },
    },
  },
  {
    name: 'leader-kill',
    description:
      'kill -9 of the meta leader: its session expires, one election, the next candidate serves (with the guard, its watchdog ends the session at once).',
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'kill', node: 'meta-leader', service: 'meta' }, name: 'kill' },
      { do: 'until', fact: 'failover', timeoutMs: 30_000 },
      { do: 'heal', name: 'kill' },
      ...recover(),
    ],
    expect: { failoverWithinMs: 'sessionTimeoutMs + 3000', newTerms: 1, recovered: true },
  },
  {
    name: 'leader-pause',
    description:
      'SIGSTOP of the meta leader past its session timeout: the session expires, the next candidate serves; the old leader, continued, finds itself deposed.',
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'pause', node: 'meta-leader', service: 'meta' }, name: 'pause' },
      { do: 'until', fact: 'failover', timeoutMs: 30_000 },
      { do: 'wait', ms: 1000 },
      { do: 'heal', name: 'pause' },
      ...recover(),
    ],
    expect: { failoverWithinMs: 'sessionTimeoutMs + 3000', newTerms: 1, recovered: true },
  },
  {
    name: 'leader-pause-short',
    description: 'a 1 s SIGSTOP of the meta leader (a GC pause): must cause nothing — no failover, the same leader serves again.',
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'pause', node: 'meta-leader', service: 'meta' }, name: 'pause' },
      { do: 'wait', ms: 1000 },
      { do: 'heal', name: 'pause' },
      ...recover(30_000),
      { do: 'wait', ms: 2000 },
    ],
    expect: { noFailover: true, recovered: true },
  },
  {
    name: 'zk-leader-kill',
    description: "kill -9 of ZooKeeper's leader: the others elect a new one and the metas' sessions survive — a ZooKeeper failover is not a meta failover.",
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'kill', node: 'zk-leader', service: 'zookeeper' }, name: 'zk' },
      { do: 'wait', ms: 3000 },
      { do: 'until', fact: 'zk-quorum', timeoutMs: 30_000 },
      { do: 'until', fact: 'served', timeoutMs: 30_000 },
      { do: 'heal', name: 'zk' },
      ...recover(),
    ],
    expect: { noFailover: true, recovered: true },
  },
  {
    name: 'partition-leader-from-clients',
    description:
      "the meta port (10100) cut between the meta leader's node and the others, ZooKeeper reachable: the leader passes its own checks and keeps its session, the chunks elsewhere cannot reach it. Without the guard nothing fails over; with it, the chunks' suspicions depose it.",
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 3000 },
      { do: 'inject', fault: { kind: 'cut', from: 'meta-leader', to: 'others', port: 10100 }, name: 'cut' },
      { do: 'until', fact: 'failover', timeoutMs: 12_000, else: 'continue' },
      { do: 'wait', ms: 2000 },
      { do: 'heal', name: 'cut' },
      ...recover(),
    ],
    expect: {
      recovered: true,
      guardOff: { noFailoverDuringFault: true, faultedLeaderKept: true, chunksTimedOut: true },
      guardOn: { failoverWithinMs: 'chunkTimeoutMs + 6000', newTerms: 1 },
    },
  },
  {
    name: 'leader-deaf',
    description: 'the meta leader hears its clients but its answers are dropped (port 10100, every peer): a gray failure only its clients can see.',
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 3000 },
      { do: 'inject', fault: { kind: 'deaf', node: 'meta-leader', port: 10100 }, name: 'deaf' },
      { do: 'until', fact: 'failover', timeoutMs: 12_000, else: 'continue' },
      { do: 'wait', ms: 2000 },
      { do: 'heal', name: 'deaf' },
      ...recover(),
    ],
    expect: {
      recovered: true,
      guardOff: { noFailoverDuringFault: true, faultedLeaderKept: true, chunksTimedOut: true },
      guardOn: { failoverWithinMs: 'chunkTimeoutMs + 6000', newTerms: 1 },
    },
  },
  {
    name: 'disk-slow',
    description: "every request to the meta leader's data directory takes 500 ms for 5 s: slow, not dead — no failover.",
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'disk-delay', node: 'meta-leader', ms: 500, path: 'meta' }, name: 'slow' },
      { do: 'wait', ms: 5000 },
      { do: 'heal', name: 'slow' },
      ...recover(30_000),
    ],
    expect: { noFailover: true, recovered: true },
  },
  {
    name: 'disk-eio',
    description:
      "the meta leader's disk fails every request with EIO: the meta stops (fail-stop) and a successor takes over; the node is then rebooted with its disk replaced.",
    steps: [
      { do: 'start' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'disk-error', node: 'meta-leader', errno: 'EIO' }, name: 'eio' },
      { do: 'until', fact: 'failover', timeoutMs: 30_000 },
      { do: 'wait', ms: 1000 },
      { do: 'reboot', node: 'fault' },
      ...recover(),
    ],
    expect: { failoverWithinMs: 'sessionTimeoutMs + 4000', newTerms: 1, recovered: true },
  },
  {
    name: 'cpu-starve',
    description: "the meta leader's node gets 20 % of one core for 5 s (every process of it: ZooKeeper, meta, chunk): slower, not dead — no failover.",
    steps: [
      { do: 'start', metaLeader: 'node1', zkLeaderNot: 'node1' },
      ...settle,
      { do: 'wait', ms: 1500 },
      { do: 'inject', fault: { kind: 'cpu', node: 'node1', percent: 20 }, name: 'cpu' },
      { do: 'wait', ms: 5000 },
      { do: 'heal', name: 'cpu' },
      ...recover(30_000),
    ],
    expect: { noFailover: true, recovered: true },
  },
];

/** The built-in scenarios, checked (a mistake here is a bug caught at load). */
export const BUILTIN: readonly Scenario[] = raw.map((s) => checkScenario(s, `built-in ${s.name}`));

export function builtin(name: string): Scenario | undefined {
  return BUILTIN.find((s) => s.name === name);
}
