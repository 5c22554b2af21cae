/**
 * Scenarios: declarative steps on a clock, run against the reference cluster (src/lab/cluster).
 * The built-in scenarios (builtin.ts) and users' scenario files (JSON, or YAML by a .yaml/.yml name) are the same objects, read
 * and checked here: a bad file gets one error naming the file and the field
 * (`my.json: steps[2].fault.kind: expected one of …, got "stal"`), exit 2 in the CLI.
 *
 * A node in a step is a name (`node1`) or a role resolved when the step runs: `meta-leader` (the
 * meta ZooKeeper names as leader), `zk-leader` / `zk-follower` (ZooKeeper's own), `fault` (the
 * node of the scenario's first injected fault), and, as the far side of a cut, `others`.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_TIMINGS, type ClusterTimings } from '../cluster/config.ts';
import type { ConnectOrder } from '../cluster/cluster.ts';

export type NodeSel = string;
export type ServiceName = 'meta' | 'chunk' | 'scavenger' | 'zookeeper';
export type OpClassName = 'read' | 'write' | 'fsync' | 'metadata';

export type Fault =
  | { kind: 'disk-stall'; node: NodeSel; ops?: OpClassName[]; path?: string }
  | { kind: 'disk-delay'; node: NodeSel; ms: number; ops?: OpClassName[]; path?: string }
  | { kind: 'disk-error'; node: NodeSel; errno?: string; ops?: OpClassName[]; path?: string }
  | { kind: 'kill'; node: NodeSel; service: ServiceName }
  | { kind: 'pause'; node: NodeSel; service: ServiceName }
  | { kind: 'cut'; from: NodeSel; to: NodeSel; port?: number; oneWay?: boolean }
  | { kind: 'deaf'; node: NodeSel; port?: number }
  | { kind: 'isolate'; node: NodeSel }
  | { kind: 'cpu'; node: NodeSel; percent: number };

export type FaultKind = Fault['kind'];

/**
 * Facts a step can wait for (`until`), each about the time since the scenario's fault:
 * - served: every running chunk is served (its last request answered);
 * - recovered: every chunk was served after the last heal, reboot or remedy;
 * - failover: a chunk was served by a meta leader of a later epoch than the faulted one;
 * - leader-changed: ZooKeeper names a leader of another epoch (or none);
 * - chunks-expired / chunks-timed-out: every chunk off the fault's node went to "Session expired"
 *   / logged a timeout against the faulted leader;
 * - zk-dropped: ZooKeeper's leader dropped the fault node's server (its log);
 * - meta-in-D: the fault node's meta has a thread in uninterruptible disk wait;
 * - late-write-refused: a meta's late write of a term that ended was refused by ZooKeeper;
 * - zk-quorum: ZooKeeper has a leader.
 */
export const FACTS = [
  'served',
  'recovered',
  'failover',
  'leader-changed',
  'chunks-expired',
  'chunks-timed-out',
  'zk-dropped',
  'meta-in-D',
  'late-write-refused',
  'zk-quorum',
] as const;
export type Fact = (typeof FACTS)[number];

export type Step =
  /** Starts ZooKeeper in the nodes and the services; `metaLeader` leads first; ZooKeeper's leader is moved off `zkLeaderNot`. */
  | { do: 'start'; metaLeader?: NodeSel; zkLeaderNot?: NodeSel }
  /** Lets the clock run (a fault's duration, a baseline of traffic). */
  | { do: 'wait'; ms: number }
  /** Waits for a fact; past `timeoutMs` the run fails, or with `else: "continue"` goes on (a bounded hold). */
  | { do: 'until'; fact: Fact; timeoutMs?: number; else?: 'fail' | 'continue' }
  /** Injects a fault; the first one is the scenario's fault, from which times are measured. */
  | { do: 'inject'; fault: Fault; name?: string }
  /** Heals one named fault, or every fault in force. */
  | { do: 'heal'; name?: string }
  /** Hard reboot: every process of the node killed (those in D die when its disk is released), its disk back; `restart` (default true) starts ZooKeeper and the services again. */
  | { do: 'reboot'; node: NodeSel; restart?: boolean }
  /** The explicit remedy: an operator ends the node's meta session from outside (endSession). */
  | { do: 'end-session'; node: NodeSel }
  /** A labelled mark in the timeline with the observer's view at that moment. */
  | { do: 'observe'; note: string };

export type StepKind = Step['do'];

/** What a run must show besides safety (which is always checked); see checkers.ts for each. */
export interface Expectations {
  /**
   * A chunk was served by a later leader within this long of the fault: milliseconds, or a timing
   * plus milliseconds (`"sessionTimeoutMs + 3000"`), resolved with the run's timings.
   */
  failoverWithinMs?: number | string;
  /** No later leader served anyone before the fault ended (heal, reboot or remedy). */
  noFailoverDuringFault?: boolean;
  /** No term began after the fault, for the whole run. */
  noFailover?: boolean;
  /** Exactly this many terms were claimed after the fault. */
  newTerms?: number;
  /** ZooKeeper named the faulted leader (same epoch) in every sample until the fault ended. */
  faultedLeaderKept?: boolean;
  /** ZooKeeper's leader dropped the fault node's server for transaction timeout. */
  zkDropped?: boolean;
  /** ZooKeeper had a leader throughout the fault. */
  zkQuorumKept?: boolean;
  /** The chunks off the fault's node logged timeouts against the faulted leader / went to "Session expired". */
  chunksTimedOut?: boolean;
  chunksExpired?: boolean;
  /** Every chunk was served again after the fault ended. */
  recovered?: boolean;
  /** The fault node's meta was seen with a thread in D. */
  metaInD?: boolean;
  /** A late write of the deposed leader was refused by ZooKeeper's check. */
  lateWriteRefused?: boolean;
}

export const EXPECTATION_KEYS: readonly (keyof Expectations)[] = [
  'failoverWithinMs',
  'noFailoverDuringFault',
  'noFailover',
  'newTerms',
  'faultedLeaderKept',
  'zkDropped',
  'zkQuorumKept',
  'chunksTimedOut',
  'chunksExpired',
  'recovered',
  'metaInD',
  'lateWriteRefused',
];

export interface Scenario {
  name: string;
  description: string;
  timings?: Partial<ClusterTimings>;
  cluster?: { connectOrder?: Record<string, ConnectOrder>; dataWrites?: 'async' | 'sync' };
  steps: Step[];
  /** Expected in both guard modes; `guardOff` / `guardOn` add to or override it. */
  expect?: Expectations & { guardOff?: Expectations; guardOn?: Expectations };
}

/** The expectations of a run in one guard mode. */
export function expectationsFor(s: Scenario, guard: boolean): Expectations {
  const { guardOff, guardOn, ...both } = s.expect ?? {};
  return { ...both, ...(guard ? guardOn : guardOff) };
}

export class ScenarioError extends Error {
  readonly file: string | null;
  readonly field: string;
  constructor(file: string | null, field: string, message: string) {
    super(`${file ? `${file}: ` : ''}${field ? `${field}: ` : ''}${message}`);
    this.name = 'ScenarioError';
    this.file = file;
    this.field = field;
  }
}

// ---------------------------------------------------------------------------------------------
// Checking: one pass over the object, each error naming its field.

const ROLES = ['meta-leader', 'zk-leader', 'zk-follower', 'fault'];
const OPS: OpClassName[] = ['read', 'write', 'fsync', 'metadata'];
const SERVICES: ServiceName[] = ['meta', 'chunk', 'scavenger', 'zookeeper'];
const FAULT_KINDS: FaultKind[] = ['disk-stall', 'disk-delay', 'disk-error', 'kill', 'pause', 'cut', 'deaf', 'isolate', 'cpu'];
const STEP_KINDS: StepKind[] = ['start', 'wait', 'until', 'inject', 'heal', 'reboot', 'end-session', 'observe'];

class Checker {
  constructor(
    private readonly file: string | null,
    private readonly nodes: number,
  ) {}

  fail(field: string, message: string): never {
    throw new ScenarioError(this.file, field, message);
  }

  object(v: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(field, `expected an object, got ${describe(v)}`);
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (expected one of: ${keys.join(', ')})`);
    return v as Record<string, unknown>;
  }

  string(v: unknown, field: string, optional = false): string | undefined {
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v === '') this.fail(field, `expected a non-empty string, got ${describe(v)}`);
    return v;
  }

  int(v: unknown, field: string, min: number, max: number, optional = false): number | undefined {
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(field, `expected an integer from ${min} to ${max}, got ${describe(v)}`);
    return v;
  }

  bool(v: unknown, field: string): boolean | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(field, `expected true or false, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[], optional = false): T | undefined {
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || !allowed.includes(v as T))
      this.fail(field, `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${describe(v)}`);
    return v as T;
  }

  node(v: unknown, field: string, extra: string[] = []): string {
    const names = Array.from({ length: this.nodes }, (_x, i) => `node${i + 1}`);
    return this.oneOf(v, field, [...names, ...ROLES, ...extra])!;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function checkFault(c: Checker, v: unknown, f: string): Fault {
  const kind = c.oneOf(
    c.object(v, f, ['kind', 'node', 'ops', 'path', 'ms', 'errno', 'service', 'from', 'to', 'port', 'oneWay', 'percent']).kind,
    `${f}.kind`,
    FAULT_KINDS,
  )!;
  const o = v as Record<string, unknown>;
  const allow = (keys: string[]): void => {
    for (const k of Object.keys(o))
      if (k !== 'kind' && !keys.includes(k)) c.fail(`${f}.${k}`, `not a field of a ${kind} fault (its fields: ${keys.join(', ')})`);
  };
  const scope = (): { ops?: OpClassName[]; path?: string } => {
    const out: { ops?: OpClassName[]; path?: string } = {};
    if (o.ops !== undefined) {
      if (!Array.isArray(o.ops) || o.ops.length === 0) c.fail(`${f}.ops`, `expected a list of ${OPS.join(', ')}, got ${describe(o.ops)}`);
      out.ops = o.ops.map((x, i) => c.oneOf(x, `${f}.ops[${i}]`, OPS)!);
    }
    if (o.path !== undefined) out.path = c.string(o.path, `${f}.path`);
    return out;
  };
  switch (kind) {
    case 'disk-stall':
      allow(['node', 'ops', 'path']);
      return { kind, node: c.node(o.node, `${f}.node`), ...scope() };
    case 'disk-delay':
      allow(['node', 'ms', 'ops', 'path']);
      return { kind, node: c.node(o.node, `${f}.node`), ms: c.int(o.ms, `${f}.ms`, 1, 600_000)!, ...scope() };
    case 'disk-error':
      allow(['node', 'errno', 'ops', 'path']);
      return {
        kind,
        node: c.node(o.node, `${f}.node`),
        ...(o.errno !== undefined ? { errno: c.oneOf(o.errno, `${f}.errno`, ['EIO', 'ENOSPC'])! } : {}),
        ...scope(),
      };
    case 'kill':
    case 'pause':
      allow(['node', 'service']);
      return { kind, node: c.node(o.node, `${f}.node`), service: c.oneOf(o.service, `${f}.service`, SERVICES)! };
    case 'cut':
      allow(['from', 'to', 'port', 'oneWay']);
      return {
        kind,
        from: c.node(o.from, `${f}.from`),
        to: c.node(o.to, `${f}.to`, ['others']),
        ...(o.port !== undefined ? { port: c.int(o.port, `${f}.port`, 1, 65535)! } : {}),
        ...(o.oneWay !== undefined ? { oneWay: c.bool(o.oneWay, `${f}.oneWay`)! } : {}),
      };
    case 'deaf':
      allow(['node', 'port']);
      return { kind, node: c.node(o.node, `${f}.node`), ...(o.port !== undefined ? { port: c.int(o.port, `${f}.port`, 1, 65535)! } : {}) };
    case 'isolate':
      allow(['node']);
      return { kind, node: c.node(o.node, `${f}.node`) };
    case 'cpu':
      allow(['node', 'percent']);
      return { kind, node: c.node(o.node, `${f}.node`), percent: c.int(o.percent, `${f}.percent`, 1, 100)! };
  }
}

function checkStep(c: Checker, v: unknown, f: string, i: number, names: Set<string>): Step {
  const kind = c.oneOf(
    c.object(v, f, ['do', 'metaLeader', 'zkLeaderNot', 'ms', 'fact', 'timeoutMs', 'else', 'fault', 'name', 'node', 'restart', 'note']).do,
    `${f}.do`,
    STEP_KINDS,
  )!;
  const o = v as Record<string, unknown>;
  const allow = (keys: string[]): void => {
    for (const k of Object.keys(o))
      if (k !== 'do' && !keys.includes(k)) c.fail(`${f}.${k}`, `not a field of a "${kind}" step (its fields: ${keys.join(', ') || 'none'})`);
  };
  if (kind === 'start' && i !== 0) c.fail(`${f}.do`, 'only the first step starts the cluster');
  if (kind !== 'start' && i === 0) c.fail(`${f}.do`, 'the first step must be {"do": "start"}');
  switch (kind) {
    case 'start':
      allow(['metaLeader', 'zkLeaderNot']);
      return {
        do: kind,
        ...(o.metaLeader !== undefined ? { metaLeader: c.node(o.metaLeader, `${f}.metaLeader`) } : {}),
        ...(o.zkLeaderNot !== undefined ? { zkLeaderNot: c.node(o.zkLeaderNot, `${f}.zkLeaderNot`) } : {}),
      };
    case 'wait':
      allow(['ms']);
      return { do: kind, ms: c.int(o.ms, `${f}.ms`, 0, 3_600_000)! };
    case 'until':
      allow(['fact', 'timeoutMs', 'else']);
      return {
        do: kind,
        fact: c.oneOf(o.fact, `${f}.fact`, FACTS)!,
        ...(o.timeoutMs !== undefined ? { timeoutMs: c.int(o.timeoutMs, `${f}.timeoutMs`, 1, 3_600_000)! } : {}),
        ...(o.else !== undefined ? { else: c.oneOf(o.else, `${f}.else`, ['fail', 'continue'] as const)! } : {}),
      };
    case 'inject': {
      allow(['fault', 'name']);
      const name = c.string(o.name, `${f}.name`, true);
      if (name !== undefined) {
        if (names.has(name)) c.fail(`${f}.name`, `"${name}" names an earlier fault already`);
        names.add(name);
      }
      return { do: kind, fault: checkFault(c, o.fault, `${f}.fault`), ...(name !== undefined ? { name } : {}) };
    }
    case 'heal': {
      allow(['name']);
      const name = c.string(o.name, `${f}.name`, true);
      if (name !== undefined && !names.has(name)) c.fail(`${f}.name`, `no earlier fault is named "${name}" (named: ${[...names].join(', ') || 'none'})`);
      return { do: kind, ...(name !== undefined ? { name } : {}) };
    }
    case 'reboot':
      allow(['node', 'restart']);
      return { do: kind, node: c.node(o.node, `${f}.node`), ...(o.restart !== undefined ? { restart: c.bool(o.restart, `${f}.restart`)! } : {}) };
    case 'end-session':
      allow(['node']);
      return { do: kind, node: c.node(o.node, `${f}.node`) };
    case 'observe':
      allow(['note']);
      return { do: kind, note: c.string(o.note, `${f}.note`)! };
  }
}

const TIMING_SUM = /^\s*([a-zA-Z]+)\s*(?:\+\s*(\d+)\s*)?$/;

function checkTimingSum(c: Checker, v: string, f: string): string {
  const m = TIMING_SUM.exec(v);
  if (!m || !(m[1]! in DEFAULT_TIMINGS))
    c.fail(f, `expected milliseconds or "<timing> + <ms>" with a timing of ${Object.keys(DEFAULT_TIMINGS).join(', ')}, got ${describe(v)}`);
  return v;
}

/** A duration of an expectation in milliseconds, with the run's timings. */
export function resolveDuration(v: number | string, timings: ClusterTimings): number {
  if (typeof v === 'number') return v;
  const m = TIMING_SUM.exec(v)!;
  return timings[m[1] as keyof ClusterTimings] + Number(m[2] ?? 0);
}

function checkExpect(c: Checker, v: unknown, f: string, nested: boolean): Expectations & { guardOff?: Expectations; guardOn?: Expectations } {
  const keys = nested ? [...EXPECTATION_KEYS, 'guardOff', 'guardOn'] : [...EXPECTATION_KEYS];
  const o = c.object(v, f, keys);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) {
    if (k === 'guardOff' || k === 'guardOn') out[k] = checkExpect(c, x, `${f}.${k}`, false);
    else if (k === 'failoverWithinMs') out[k] = typeof x === 'string' ? checkTimingSum(c, x, `${f}.${k}`) : c.int(x, `${f}.${k}`, 1, 3_600_000);
    else if (k === 'newTerms') out[k] = c.int(x, `${f}.${k}`, 0, 1000);
    else out[k] = c.bool(x, `${f}.${k}`);
  }
  return out as Expectations;
}

/** Checks a scenario object (from a file or built in); throws ScenarioError naming the field. */
export function checkScenario(v: unknown, file: string | null = null, nodes = 3): Scenario {
  const c = new Checker(file, nodes);
  const o = c.object(v, '', ['name', 'description', 'timings', 'cluster', 'steps', 'expect']);
  const name = c.string(o.name, 'name')!;
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(name)) c.fail('name', `expected lowercase letters, digits and '-' (at most 64), got ${describe(name)}`);
  const description = c.string(o.description, 'description', true) ?? '';
  let timings: Partial<ClusterTimings> | undefined;
  if (o.timings !== undefined) {
    const t = c.object(o.timings, 'timings', Object.keys(DEFAULT_TIMINGS));
    timings = {};
    for (const [k, x] of Object.entries(t)) (timings as Record<string, number>)[k] = c.int(x, `timings.${k}`, 1, 3_600_000)!;
  }
  let cluster: Scenario['cluster'];
  if (o.cluster !== undefined) {
    const cl = c.object(o.cluster, 'cluster', ['connectOrder', 'dataWrites']);
    cluster = {};
    if (cl.connectOrder !== undefined) {
      const co = c.object(
        cl.connectOrder,
        'cluster.connectOrder',
        Array.from({ length: nodes }, (_x, i) => `node${i + 1}`),
      );
      cluster.connectOrder = {};
      for (const [k, x] of Object.entries(co)) cluster.connectOrder[k] = c.oneOf(x, `cluster.connectOrder.${k}`, ['own-first', 'others-first'] as const)!;
    }
    if (cl.dataWrites !== undefined) cluster.dataWrites = c.oneOf(cl.dataWrites, 'cluster.dataWrites', ['async', 'sync'] as const);
  }
  if (!Array.isArray(o.steps) || o.steps.length === 0) c.fail('steps', `expected a list of steps starting with {"do": "start"}, got ${describe(o.steps)}`);
  const names = new Set<string>();
  const steps = (o.steps as unknown[]).map((s, i) => checkStep(c, s, `steps[${i}]`, i, names));
  const expect = o.expect !== undefined ? checkExpect(c, o.expect, 'expect', true) : undefined;
  return { name, description, ...(timings ? { timings } : {}), ...(cluster ? { cluster } : {}), steps, ...(expect ? { expect } : {}) };
}

/** Reads and checks a scenario file: YAML when named .yaml/.yml, JSON otherwise. */
export function readScenarioFile(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError(file, '', `cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let v: unknown;
  if (/\.ya?ml$/i.test(file)) {
    try {
      // One document only: a second one would be a scenario silently ignored.
      v = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
    } catch (e) {
      const pos = (e as { linePos?: { line: number; col: number }[] }).linePos?.[0];
      const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
      throw new ScenarioError(file, '', `not YAML${where}: ${(e as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
    }
  } else {
    try {
      v = JSON.parse(text);
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const where = m ? ` at offset ${m[1]}` : '';
      throw new ScenarioError(file, '', `not JSON${where}: ${(e as Error).message}`);
    }
  }
  return checkScenario(v, file);
}
