/**
 * The chaos run: a random sequence of the lab's faults (Jepsen's nemesis, on the seed's cluster in
 * miniature), drawn from a seeded PRNG so that a seed names one sequence, bounded in time (a
 * number of faults, each held at most `maxHoldMs`), with safety checked at the end by the same
 * checkers as every scenario (checkers.ts): no acknowledged write lost, epochs only increase, no
 * write of a deposed leader accepted after its successor's claim.
 *
 * A chaos run is an ordinary Scenario (spec.ts) built from the seed, so it runs through
 * runScenario, leaves the same bundle with --keep, and reads the same in a report. Faults come
 * one after another, each followed by its repair and by every chunk being served again (the
 * `recovered` fact), so a sequence never takes the ensemble below its quorum by itself; what
 * overlaps is what a fault leaves behind (an election still running, a session not yet expired,
 * a meta standing again after its disk came back).
 *
 * Each fault is repaired the way it would be in production: healed (network, CPU, a disk that
 * comes back and completes its pending requests, SIGCONT, a killed process started again), or,
 * where a process cannot go on (a disk that failed writes makes the meta fail-stop; a pause that
 * outlasted the guard's deadline was ended by the watchdog's SIGKILL), by a reboot of the node.
 */
import { checkScenario, type Fault, type Scenario, type Step } from './spec.ts';
import { prng } from './prng.ts';

export const CHAOS_FAULTS = [
  'kill-meta',
  'kill-zookeeper',
  'pause-meta',
  'pause-meta-long',
  'pause-zookeeper',
  'disk-stall',
  'disk-delay',
  'disk-eio',
  'cut',
  'cpu',
] as const;
export type ChaosFault = (typeof CHAOS_FAULTS)[number];

export interface ChaosOptions {
  /** The PRNG's seed: one seed, one sequence. */
  seed: number;
  /** How many faults, one after another; default 6. */
  faults?: number;
  /** The longest a fault is held before its repair; default 6000 ms. */
  maxHoldMs?: number;
  /** The faults to draw from; default all of CHAOS_FAULTS. */
  kinds?: readonly ChaosFault[];
}

export class ChaosOptionError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ChaosOptionError';
    this.field = field;
  }
}

/** One planned fault: what is injected, how long it is held, how it is repaired. */
export interface ChaosStep {
  kind: ChaosFault;
  fault: Fault;
  holdMs: number;
  repair: 'heal' | 'reboot';
}

function checkOptions(o: ChaosOptions): Required<ChaosOptions> {
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff)
    throw new ChaosOptionError('seed', `expected an integer from 0 to 4294967295, got ${String(o.seed)}`);
  const faults = o.faults ?? 6;
  if (!Number.isInteger(faults) || faults < 1 || faults > 1000)
    throw new ChaosOptionError('faults', `expected an integer from 1 to 1000, got ${String(faults)}`);
  const maxHoldMs = o.maxHoldMs ?? 6000;
  if (!Number.isInteger(maxHoldMs) || maxHoldMs < 1000 || maxHoldMs > 600_000)
    throw new ChaosOptionError('maxHoldMs', `expected an integer from 1000 to 600000, got ${String(maxHoldMs)}`);
  const kinds = o.kinds ?? CHAOS_FAULTS;
  if (kinds.length === 0) throw new ChaosOptionError('kinds', 'expected at least one fault');
  for (const k of kinds)
    if (!(CHAOS_FAULTS as readonly string[]).includes(k)) throw new ChaosOptionError('kinds', `unknown fault '${k}' (known: ${CHAOS_FAULTS.join(', ')})`);
  return { seed: o.seed, faults, maxHoldMs, kinds };
}

/** The sequence a seed names (pure: the same options give the same plan). */
export function chaosPlan(options: ChaosOptions): ChaosStep[] {
  const o = checkOptions(options);
  const rand = prng(o.seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  // Faults aimed at the meta leader most of the time (that is where failover happens), at any node
  // otherwise; those repaired by a reboot at a node named in the plan.
  const target = (): string => (rand() < 0.7 ? 'meta-leader' : `node${int(1, 3)}`);
  /** A hold from lo to hi ms (hi default: maxHoldMs), never past maxHoldMs. */
  const hold = (lo: number, hi = o.maxHoldMs): number => int(Math.min(lo, o.maxHoldMs), Math.min(hi, o.maxHoldMs));
  const out: ChaosStep[] = [];
  for (let i = 0; i < o.faults; i++) {
    const kind = pick(o.kinds);
    switch (kind) {
      case 'kill-meta':
        out.push({ kind, fault: { kind: 'kill', node: target(), service: 'meta' }, holdMs: hold(200, 2000), repair: 'heal' });
        break;
      case 'kill-zookeeper':
        out.push({ kind, fault: { kind: 'kill', node: rand() < 0.5 ? 'zk-leader' : 'zk-follower', service: 'zookeeper' }, holdMs: hold(1000), repair: 'heal' });
        break;
      case 'pause-meta':
        // Shorter than the guard's watchdog deadline (2 s): SIGCONT finds it alive.
        out.push({ kind, fault: { kind: 'pause', node: target(), service: 'meta' }, holdMs: hold(200, 1200), repair: 'heal' });
        break;
      case 'pause-meta-long':
        // Past the deadline: the watchdog (guard on) ends its session and SIGKILLs it; the node is rebooted.
        out.push({ kind, fault: { kind: 'pause', node: `node${int(1, 3)}`, service: 'meta' }, holdMs: hold(3000), repair: 'reboot' });
        break;
      case 'pause-zookeeper':
        out.push({ kind, fault: { kind: 'pause', node: `node${int(1, 3)}`, service: 'zookeeper' }, holdMs: hold(500), repair: 'heal' });
        break;
      case 'disk-stall':
        out.push({ kind, fault: { kind: 'disk-stall', node: target() }, holdMs: hold(1000), repair: 'heal' });
        break;
      case 'disk-delay':
        out.push({ kind, fault: { kind: 'disk-delay', node: target(), ms: int(50, 500) }, holdMs: hold(1000), repair: 'heal' });
        break;
      case 'disk-eio':
        out.push({ kind, fault: { kind: 'disk-error', node: `node${int(1, 3)}`, errno: 'EIO' }, holdMs: hold(500, 3000), repair: 'reboot' });
        break;
      case 'cut':
        out.push({ kind, fault: { kind: 'cut', from: 'meta-leader', to: 'others', port: 10100 }, holdMs: hold(1000), repair: 'heal' });
        break;
      case 'cpu':
        out.push({ kind, fault: { kind: 'cpu', node: target(), percent: int(10, 50) }, holdMs: hold(1000), repair: 'heal' });
        break;
    }
  }
  return out;
}

/** The plan as a Scenario: start, then each fault, its hold, its repair and the chunks served again. */
export function chaosScenario(options: ChaosOptions): Scenario {
  const o = checkOptions(options);
  const plan = chaosPlan(o);
  const steps: Step[] = [{ do: 'start' }, { do: 'until', fact: 'served', timeoutMs: 60_000 }, { do: 'wait', ms: 1000 }];
  plan.forEach((p, i) => {
    const name = `f${i + 1}`;
    steps.push({ do: 'inject', fault: p.fault, name }, { do: 'wait', ms: p.holdMs });
    // Faults repaired by a reboot name their node in the plan ('fault' would be the run's first fault's node).
    const node = 'node' in p.fault ? p.fault.node : null;
    steps.push(p.repair === 'reboot' && node ? { do: 'reboot', node } : { do: 'heal', name });
    steps.push({ do: 'until', fact: 'recovered', timeoutMs: 90_000 }, { do: 'wait', ms: 500 });
  });
  return checkScenario(
    {
      name: `chaos-${o.seed}`,
      description: `chaos, seed ${o.seed}: ${plan.map((p) => `${p.kind} ${p.holdMs} ms`).join(', ')}`,
      steps,
      expect: { recovered: true },
    },
    `chaos seed ${o.seed}`,
  );
}
