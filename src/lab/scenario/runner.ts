/**
 * The scenario runner: makes a lab (three nodes), runs the reference cluster in it, plays a
 * scenario's steps on the clock while the observer watches, then heals what is left, reads the
 * final state and ZooKeeper's history, checks safety and the scenario's expectations, optionally
 * leaves the bundle, and removes the lab. Whatever happens — a failed step, an exception, SIGINT —
 * the lab is removed (its own clean-up hooks cover the signals).
 *
 * Hooks for benchmarks (bench/guard): `runScenario(builtin('hba-hang')!, { guard: { defences:
 * { gate: true, watchdog: false, deposition: false } } })` measures one defence alone; the
 * result's `metrics.failoverMs` is fault → first chunk request served by the new leader; `cluster`
 * passes other cluster options (e.g. `dataWrites: 'sync'`, a meta whose whole process wedges).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '../../zk/index.ts';
import { Cluster, type ClusterOptions, type ServiceProc } from '../cluster/cluster.ts';
import { PATHS, resolveTimings, type ClusterTimings, type GuardSettings } from '../cluster/config.ts';
import { LabError, LabUsageError } from '../host.ts';
import { Lab } from '../lab.ts';
import type { NetFault } from '../netfaults.ts';
import type { Node } from '../node.ts';
import { captureServers, checkKeepDir, writeBundle, writeRecord, type Captures } from './bundle.ts';
import {
  checkExpectations,
  checkSafety,
  measure,
  readZkHistory,
  type Check,
  type ExpectationResult,
  type FaultInfo,
  type Metrics,
  type RunData,
} from './checkers.ts';
import { backingPath, Observer, type Sample } from './observer.ts';
import { expectationsFor, type Fact, type Fault, type NodeSel, type Scenario, type Step, type StepKind } from './spec.ts';
import { describeSample, timeline, type TimelineEntry } from './report.ts';

export interface RunOptions {
  /** The guard in the metas: off (default), on (every defence), or settings (defences one by one, timing). */
  guard?: boolean | GuardSettings;
  /** Timing overrides over the scenario's (the CLI's --timings FILE). */
  timings?: Partial<ClusterTimings>;
  /** Leave the bundle and the run's record here. */
  keep?: string;
  /** The lab's /24 ('198.18.88'); default a free one. */
  subnet?: string;
  labId?: string;
  /** Other cluster options (hooks for benchmarks). */
  cluster?: Pick<ClusterOptions, 'dataWrites' | 'connectOrder'>;
  onProgress?: (p: Progress) => void;
  /** How often a status line is reported while a step waits; default 1000 ms. */
  statusEveryMs?: number;
  /**
   * Ends the run early (the CLI's SIGINT, a test): the step under way stops at its next check,
   * nothing is collected, the lab is removed, and runScenario rejects with a RunAbortedError.
   */
  signal?: AbortSignal;
}

/** The run was ended by its abort signal; its lab is gone. */
export class RunAbortedError extends LabError {
  constructor(step: string) {
    super(`the run was interrupted during ${step}; its lab was removed`);
    this.name = 'RunAbortedError';
  }
}

export interface Progress {
  kind: 'step' | 'status' | 'note';
  at: number;
  text: string;
  step?: number;
  steps?: number;
}

export interface StepRecord {
  index: number;
  do: StepKind;
  at: number;
  endAt: number;
  detail: string;
  /** A bounded hold that ended by its timeout (`until … else continue`). */
  continued?: boolean;
}

export interface RunResult {
  scenario: string;
  description: string;
  guard: 'off' | 'on';
  defences: GuardSettings['defences'] | null;
  /** Safe, every expectation met, every step done. */
  ok: boolean;
  /** Why the run stopped early (a step that failed), if it did. */
  error: string | null;
  startedAt: number;
  endedAt: number;
  lab: { id: string; subnet: string; nodes: { name: string; ip: string }[] };
  timings: ClusterTimings;
  fault: FaultInfo | null;
  metrics: Metrics;
  safety: { ok: boolean; checks: Check[] };
  expectations: ExpectationResult[];
  steps: StepRecord[];
  timeline: TimelineEntry[];
  /** Where --keep put the bundle and the records. */
  kept: { bundle: string; injections: string; observer: string; result: string } | null;
  /** What the lab's clean-up could not remove after the run (empty when the lab is gone); `zkwarden lab clean` retries it. */
  leftovers: string[];
}

interface Injected {
  name: string;
  fault: Fault;
  nodes: Node[];
  describe: string;
  undo: () => Promise<void>;
}

export const ALL_DEFENCES: GuardSettings['defences'] = { gate: true, watchdog: true, deposition: true };

function guardSettings(g: RunOptions['guard']): GuardSettings | null {
  if (!g) return null;
  if (g === true) return { defences: { ...ALL_DEFENCES } };
  return g;
}

class Run {
  readonly steps: StepRecord[] = [];
  readonly notes: TimelineEntry[] = [];
  fault: FaultInfo | null = null;
  repairedAt: number | null = null;
  private readonly injected: Injected[] = [];
  /** The scenario's fault (the first injected). */
  private primary: Injected | null = null;
  private unnamed = 0;
  observer: Observer | null = null;
  cluster: Cluster | null = null;

  constructor(
    readonly lab: Lab,
    readonly scenario: Scenario,
    readonly options: ClusterOptions,
    readonly progress: (p: Omit<Progress, 'at'>) => void,
    readonly statusEveryMs: number,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** Throws once the run's abort signal fired (checked by every wait of a step). */
  checkAborted(): void {
    if (this.signal?.aborted)
      throw new RunAbortedError(this.steps.length ? `step ${this.steps.length} (${this.steps[this.steps.length - 1]!.do})` : 'the start');
  }

  /** A pause that ends at once when the run is aborted. */
  private async pause(ms: number): Promise<void> {
    this.checkAborted();
    await sleep(ms, undefined, this.signal ? { signal: this.signal } : {}).catch(() => undefined);
    this.checkAborted();
  }

  get obs(): Observer {
    if (!this.observer) throw new LabError('the cluster is not started (the first step starts it)');
    return this.observer;
  }

  get cl(): Cluster {
    if (!this.cluster) throw new LabError('the cluster is not started (the first step starts it)');
    return this.cluster;
  }

  /** A node selector, resolved now. */
  async resolve(sel: NodeSel, field: string): Promise<Node> {
    if (/^node\d+$/.test(sel)) return this.lab.node(sel);
    const cl = this.cl;
    switch (sel) {
      case 'meta-leader': {
        const named = await this.freshNamed(10_000);
        const n = named?.node ? this.lab.node(named.node) : null;
        if (!n) throw new LabError(`${field}: ZooKeeper names no meta leader now`);
        return n;
      }
      case 'zk-leader':
        return this.lab.node(await cl.ensemble.leaderId());
      case 'zk-follower': {
        const f = await cl.ensemble.followerIds();
        if (f.length === 0) throw new LabError(`${field}: no ZooKeeper follower now`);
        return this.lab.node(f[0]!);
      }
      case 'fault':
        if (!this.fault?.node) throw new LabError(`${field}: no fault with a node was injected before this step`);
        return this.lab.node(this.fault.node);
    }
    throw new LabUsageError(`${field}: unknown node '${sel}'`);
  }

  /** The leader ZooKeeper names, from a read made after now. */
  async freshNamed(timeoutMs: number): Promise<Sample['named']> {
    const since = Date.now();
    const deadline = since + timeoutMs;
    for (;;) {
      const s = this.obs.samples.filter((x) => x.at > since + 150 && x.namedFresh).pop();
      if (s) return s.named;
      if (Date.now() > deadline) return this.obs.latest().named;
      await this.pause(50);
    }
  }

  async step(step: Step, index: number): Promise<void> {
    const at = Date.now();
    const rec: StepRecord = { index, do: step.do, at, endAt: at, detail: '' };
    this.steps.push(rec);
    const say = (detail: string): void => {
      rec.detail = detail;
      this.progress({ kind: 'step', text: detail, step: index + 1, steps: this.scenario.steps.length });
    };
    try {
      switch (step.do) {
        case 'start':
          await this.start(step, say);
          break;
        case 'wait':
          say(`wait ${step.ms} ms`);
          await this.hold(step.ms);
          break;
        case 'until': {
          say(`until ${step.fact}${step.else === 'continue' ? ` (at most ${step.timeoutMs ?? 30_000} ms)` : ''}`);
          const held = await this.until(step.fact, step.timeoutMs ?? 30_000);
          if (!held) {
            if (step.else === 'continue') rec.continued = true;
            else
              throw new LabError(
                `step ${index + 1} (until ${step.fact}): not within ${step.timeoutMs ?? 30_000} ms; the observer saw: ${describeSample(this.obs.latest(), this.fault?.at)}`,
              );
          }
          rec.detail = `until ${step.fact}: ${held ? `held after ${Date.now() - at} ms` : `not within ${step.timeoutMs ?? 30_000} ms, continued`}`;
          break;
        }
        case 'inject':
          await this.inject(step.fault, step.name, say);
          break;
        case 'heal':
          await this.heal(step.name, say);
          break;
        case 'reboot':
          await this.reboot(step.node, step.restart ?? true, say, index);
          break;
        case 'end-session':
          await this.endSession(step.node, say, index);
          break;
        case 'observe': {
          const s = this.obs.latest();
          say(`observe: ${step.note}`);
          this.notes.push({ at: s.at, source: 'observer', what: `${step.note} — ${describeSample(s, this.fault?.at)}` });
          break;
        }
      }
    } finally {
      rec.endAt = Date.now();
    }
  }

  private async start(step: Extract<Step, { do: 'start' }>, say: (d: string) => void): Promise<void> {
    say('start: ZooKeeper in the nodes');
    this.cluster = await Cluster.create(this.lab, this.options);
    const cl = this.cluster;
    if (step.zkLeaderNot) {
      const avoid = this.lab.node(step.zkLeaderNot);
      for (let i = 0; i < 3 && (await cl.ensemble.leaderId()) === avoid.index; i++) {
        // Restarting it hands ZooKeeper's leadership to another server.
        await cl.ensemble.kill(avoid.index);
        await cl.ensemble.waitForQuorum({ timeoutMs: 60_000 });
        await cl.ensemble.startServer(avoid.index, { waitMs: 60_000 });
        await cl.ensemble.waitForQuorum({ timeoutMs: 60_000 });
      }
      if ((await cl.ensemble.leaderId()) === avoid.index) throw new LabError(`ZooKeeper's leader stays on ${avoid.name} after three restarts of its server`);
    }
    this.observer = new Observer(cl);
    this.observer.start();
    say(
      `start: the services (meta, chunk, scavenger on ${cl.nodes.map((n) => n.name).join(', ')})${step.metaLeader ? `, ${step.metaLeader}'s meta first` : ''}`,
    );
    await cl.startServices(step.metaLeader ? { metaFirst: step.metaLeader } : {});
    const zk = await cl.ensemble.leaderId();
    say(`start: ZooKeeper's leader is server ${zk} (${this.lab.node(zk).name}); services up`);
  }

  /** Holds for `ms`, reporting the observer's view every statusEveryMs. */
  private async hold(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      await this.pause(Math.min(this.statusEveryMs, end - Date.now()));
      this.status();
    }
  }

  status(): void {
    if (!this.observer) return;
    this.progress({ kind: 'status', text: describeSample(this.obs.latest(), this.fault?.at) });
  }

  private async until(fact: Fact, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let nextStatus = Date.now() + this.statusEveryMs;
    for (;;) {
      if (this.holds(fact)) return true;
      if (Date.now() > deadline) return false;
      if (Date.now() >= nextStatus) {
        this.status();
        nextStatus += this.statusEveryMs;
      }
      await this.pause(100);
    }
  }

  private since(): number {
    return this.fault?.at ?? 0;
  }

  private chunkEvents(node?: string): { s: ServiceProc; e: ServiceProc['events'][number] }[] {
    return this.cl.history.filter((s) => s.kind === 'chunk' && (node === undefined || s.node.name === node)).flatMap((s) => s.events.map((e) => ({ s, e })));
  }

  /** Whether a fact holds now (see spec.ts, FACTS). */
  holds(fact: Fact): boolean {
    const s = this.obs.latest();
    const cl = this.cl;
    const f = this.fault;
    const others = cl.nodes.filter((n) => n.name !== f?.node).map((n) => n.name);
    switch (fact) {
      case 'served':
        return cl.nodes.every((n) => {
          const c = cl.current(n, 'chunk');
          return !c || s.chunks[n.name]?.state === 'serving';
        });
      case 'recovered': {
        const since = this.repairedAt ?? f?.endAt ?? this.since();
        return cl.nodes.every((n) => this.chunkEvents(n.name).some(({ e }) => e.ev === 'ack' && e.at >= since));
      }
      case 'failover': {
        const epoch = f?.leader?.epoch;
        if (epoch === undefined) return false;
        return this.chunkEvents().some(({ e }) => e.ev === 'ack' && e.at >= f!.at && e.epoch > epoch);
      }
      case 'leader-changed':
        return !!f?.leader && s.namedFresh && s.named?.epoch !== f.leader.epoch;
      case 'chunks-expired':
        return others.length > 0 && others.every((n) => this.chunkEvents(n).some(({ e }) => e.ev === 'state' && e.state === 'expired' && e.at >= this.since()));
      case 'chunks-timed-out':
        return (
          others.length > 0 &&
          others.every((n) => this.chunkEvents(n).some(({ e }) => e.ev === 'request' && !e.ok && e.error === 'ETimedOut' && e.at >= this.since()))
        );
      case 'zk-dropped':
        return !!f?.node && this.obs.drops.some((d) => d.peer === f.node && d.at >= this.since() - 1000);
      case 'meta-in-D':
        return !!f?.node && s.metas[f.node]?.proc === 'D';
      case 'late-write-refused':
        return cl.history.some((m) => m.kind === 'meta' && m.events.some((e) => e.ev === 'lateWrite' && e.outcome === 'refused' && e.at >= this.since()));
      case 'zk-quorum':
        return s.zkLeader !== null;
    }
  }

  private async inject(fault: Fault, name: string | undefined, say: (d: string) => void): Promise<void> {
    const lab = this.lab;
    const cl = this.cl;
    const label = name ?? `fault${++this.unnamed}`;
    // The leader ZooKeeper names as the fault begins: the term the fault is measured against.
    const leader = this.fault ? null : await this.freshNamed(10_000);
    let inj: Injected;
    const scopeText = (f: { ops?: string[]; path?: string }): string => `${f.ops ? f.ops.join(',') : 'every operation'}${f.path ? ` under ${f.path}` : ''}`;
    switch (fault.kind) {
      case 'disk-stall':
      case 'disk-delay':
      case 'disk-error': {
        const n = await this.resolve(fault.node, 'fault.node');
        const scope = { ...(fault.ops ? { ops: fault.ops } : {}), ...(fault.path ? { path: fault.path } : {}) };
        if (fault.kind === 'disk-stall') await n.disk.stall(scope);
        else if (fault.kind === 'disk-delay') await n.disk.delay(fault.ms, scope);
        else await n.disk.error(fault.errno ?? 'EIO', scope);
        const what = fault.kind === 'disk-stall' ? 'stalls' : fault.kind === 'disk-delay' ? `delays ${fault.ms} ms` : `fails (${fault.errno ?? 'EIO'})`;
        inj = { name: label, fault, nodes: [n], describe: `${n.name}'s disk ${what}: ${scopeText(fault)}`, undo: async () => void (await n.disk.heal()) };
        break;
      }
      case 'kill':
      case 'pause': {
        const n = await this.resolve(fault.node, 'fault.node');
        if (fault.service === 'zookeeper') {
          const id = n.index;
          if (fault.kind === 'kill') {
            await cl.ensemble.kill(id);
            inj = {
              name: label,
              fault,
              nodes: [n],
              describe: `kill -9 of ${n.name}'s ZooKeeper server`,
              undo: () => cl.ensemble.startServer(id, { waitMs: 60_000 }),
            };
          } else {
            await cl.ensemble.pause(id);
            inj = { name: label, fault, nodes: [n], describe: `SIGSTOP of ${n.name}'s ZooKeeper server`, undo: () => cl.ensemble.resume(id) };
          }
          lab.events.push({ at: Date.now(), kind: 'zookeeper', action: fault.kind, target: n.name, detail: { server: id } });
          break;
        }
        const s = cl.current(n, fault.service);
        const p = s?.process();
        if (!s || !p) throw new LabError(`fault: ${n.name} runs no ${fault.service}`);
        if (fault.kind === 'kill') {
          lab.signal(p.pid, 'SIGKILL');
          const service = fault.service;
          inj = {
            name: label,
            fault,
            nodes: [n],
            describe: `kill -9 of ${n.name}'s ${service} (pid ${p.pid})`,
            undo: async () => {
              await s.launcher.waitExit(15_000).catch(() => undefined);
              await cl.start(n, service);
            },
          };
        } else {
          await p.stop();
          lab.events.push({ at: Date.now(), kind: 'process', action: 'SIGSTOP', target: n.name, detail: { pid: p.pid, service: fault.service } });
          inj = {
            name: label,
            fault,
            nodes: [n],
            describe: `SIGSTOP of ${n.name}'s ${fault.service} (pid ${p.pid})`,
            undo: async () => {
              await p.cont();
              lab.events.push({ at: Date.now(), kind: 'process', action: 'SIGCONT', target: n.name, detail: { pid: p.pid, service: fault.service } });
            },
          };
        }
        break;
      }
      case 'cut': {
        const a = await this.resolve(fault.from, 'fault.from');
        const bs = fault.to === 'others' ? cl.nodes.filter((n) => n !== a) : [await this.resolve(fault.to, 'fault.to')];
        const made: NetFault[] = [];
        for (const b of bs)
          made.push(await lab.net.cut(a, b, { ...(fault.port !== undefined ? { port: fault.port } : {}), ...(fault.oneWay ? { oneWay: true } : {}) }));
        inj = {
          name: label,
          fault,
          nodes: [a],
          describe: `${a.name} cut ${fault.oneWay ? '→' : '↔'} ${bs.map((b) => b.name).join(', ')}${fault.port ? ` on port ${fault.port}` : ''}`,
          undo: async () => {
            for (const m of made) await lab.net.heal(m);
          },
        };
        break;
      }
      case 'deaf': {
        const n = await this.resolve(fault.node, 'fault.node');
        const made = await lab.net.deaf(n, fault.port !== undefined ? { port: fault.port } : {});
        inj = {
          name: label,
          fault,
          nodes: [n],
          describe: `${n.name} deaf${fault.port ? ` on port ${fault.port}` : ''} (its answers dropped)`,
          undo: async () => void (await lab.net.heal(made)),
        };
        break;
      }
      case 'isolate': {
        const n = await this.resolve(fault.node, 'fault.node');
        const made = await lab.net.isolate(n, { keepHost: true });
        inj = { name: label, fault, nodes: [n], describe: `${n.name} isolated from the other nodes`, undo: async () => void (await lab.net.heal(made)) };
        break;
      }
      case 'cpu': {
        const n = await this.resolve(fault.node, 'fault.node');
        n.cpu.limit(fault.percent / 100);
        inj = { name: label, fault, nodes: [n], describe: `${n.name} limited to ${fault.percent} % of one core`, undo: async () => n.cpu.unlimit() };
        break;
      }
    }
    this.injected.push(inj);
    if (!this.primary) this.primary = inj;
    if (!this.fault) this.fault = { at: Date.now(), endAt: null, kind: fault.kind, node: inj.nodes[0]?.name ?? null, leader };
    say(`inject ${label}: ${inj.describe}`);
  }

  private endFault(): void {
    if (this.fault && this.fault.endAt === null) this.fault.endAt = Date.now();
  }

  private async heal(name: string | undefined, say: (d: string) => void): Promise<void> {
    const which = name === undefined ? [...this.injected].reverse() : this.injected.filter((i) => i.name === name);
    if (name !== undefined && which.length === 0) {
      say(`heal ${name}: not in force (healed already, or gone with a reboot)`);
      return;
    }
    for (const i of which) {
      await i.undo();
      this.injected.splice(this.injected.indexOf(i), 1);
      if (i === this.primary) this.endFault();
    }
    this.repairedAt = Date.now();
    say(`heal ${which.map((i) => `${i.name} (${i.describe})`).join(', ') || 'nothing (no fault in force)'}`);
  }

  /** Heals every fault still in force (the end of a run), quietly. */
  async healAll(): Promise<void> {
    for (const i of [...this.injected].reverse()) {
      await i.undo().catch(() => undefined);
      this.injected.splice(this.injected.indexOf(i), 1);
    }
  }

  private async reboot(sel: NodeSel, restart: boolean, say: (d: string) => void, index: number): Promise<void> {
    const n = await this.resolve(sel, `steps[${index}].node`);
    say(`reboot ${n.name}: kill -9 of every process, its disk back`);
    const r = await this.lab.reboot(n, 30_000);
    // Its disk faults and processes went with the reboot.
    for (const i of [...this.injected]) if (i.nodes.includes(n) && i.fault.kind.startsWith('disk-')) this.injected.splice(this.injected.indexOf(i), 1);
    if (this.fault?.node === n.name) this.endFault();
    if (restart) {
      say(`reboot ${n.name}: ${r.killed.length} process(es) killed, ${r.released} disk request(s) failed; starting ZooKeeper and the services again`);
      await this.cl.restartNode(n, 90_000);
    }
    this.repairedAt = Date.now();
    say(
      `reboot ${n.name}: ${r.killed.length} process(es) killed, ${r.released} disk request(s) failed${restart ? '; ZooKeeper and the services started again' : ''}`,
    );
  }

  private async endSession(sel: NodeSel, say: (d: string) => void, index: number): Promise<void> {
    const n = await this.resolve(sel, `steps[${index}].node`);
    const named = await this.freshNamed(5000);
    if (named?.node !== n.name) {
      say(`end-session ${n.name}: nothing to do, its meta does not lead (ZooKeeper names ${named ? `${named.node}'s meta` : 'no leader'})`);
      return;
    }
    if (this.cl.guard) {
      say(`end-session ${n.name}: skipped, the guard owns the metas' sessions`);
      return;
    }
    const r = await this.cl.endMetaSession(n);
    this.lab.events.push({
      at: Date.now(),
      kind: 'zookeeper',
      action: 'end-session',
      target: n.name,
      detail: { outcome: r.outcome, confirmedBy: r.confirmedBy.length },
    });
    if (this.fault?.node === n.name) this.endFault();
    this.repairedAt = Date.now();
    say(`end-session ${n.name}: its meta's session ended from outside (${r.outcome}, confirmed by ${r.confirmedBy.length} server(s))`);
  }
}

/** The journal as ZooKeeper holds it at the end: key → epoch. */
async function readJournal(connectString: string): Promise<Map<string, number>> {
  const c = createClient(connectString, { sessionTimeoutMs: 10_000 });
  await c.connect({ timeoutMs: 30_000 });
  try {
    await c.sync(PATHS.journal, { timeoutMs: 10_000 });
    const { children } = await c.getChildren(PATHS.journal, { timeoutMs: 10_000 });
    const out = new Map<string, number>();
    for (let i = 0; i < children.length; i += 200) {
      const batch = children.slice(i, i + 200);
      const got = await Promise.all(batch.map((k) => c.getData(`${PATHS.journal}/${k}`, { timeoutMs: 10_000 })));
      got.forEach((g, j) => {
        try {
          out.set(batch[j]!, Number((JSON.parse(g.data.toString('utf8')) as { epoch: number }).epoch));
        } catch {
          out.set(batch[j]!, NaN);
        }
      });
    }
    return out;
  } finally {
    await c.close({ timeoutMs: 3000 }).catch(() => undefined);
  }
}

/** Runs one scenario from start to clean-up. Throws only for bad input or a missing capability; a failed step is a result with ok=false. */
export async function runScenario(scenario: Scenario, opts: RunOptions = {}): Promise<RunResult> {
  const guard = guardSettings(opts.guard);
  const timings = resolveTimings({ ...scenario.timings, ...opts.timings });
  if (opts.keep) checkKeepDir(opts.keep);
  const startedAt = Date.now();
  const emit = (p: Omit<Progress, 'at'>): void => opts.onProgress?.({ ...p, at: Date.now() });
  const lab = await Lab.create({ nodes: 3, ...(opts.subnet ? { subnet: opts.subnet } : {}), ...(opts.labId ? { id: opts.labId } : {}) });
  emit({ kind: 'note', text: `lab ${lab.id} on ${lab.subnet}.0/24: ${lab.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')}` });
  const run = new Run(
    lab,
    scenario,
    {
      timings,
      guard,
      connectOrder: { ...scenario.cluster?.connectOrder, ...opts.cluster?.connectOrder },
      dataWrites: opts.cluster?.dataWrites ?? scenario.cluster?.dataWrites ?? 'async',
    },
    emit,
    opts.statusEveryMs ?? 1000,
    opts.signal,
  );
  let error: string | null = null;
  let captures: Captures = {};
  let finalJournal = new Map<string, number>();
  let endedAt = Date.now();
  let returned: RunResult | null = null;
  try {
    for (const [i, step] of scenario.steps.entries()) {
      try {
        run.checkAborted();
        await run.step(step, i);
        run.checkAborted();
      } catch (e) {
        if (opts.signal?.aborted && !(e instanceof RunAbortedError)) throw new RunAbortedError(`step ${i + 1} (${step.do})`);
        if (e instanceof LabUsageError || e instanceof RunAbortedError || !(e instanceof Error)) throw e;
        error = e.message;
        emit({ kind: 'note', text: `stopped: ${e.message}` });
        break;
      }
    }
    endedAt = Date.now();
    if (!run.cluster) throw new LabError(error ?? 'the cluster never started');
    const cl = run.cluster;
    emit({ kind: 'note', text: 'collecting: healing what is left, reading the final state' });
    await run.healAll();
    // The services stop first: every acknowledgement heard is then one the journal read below must hold.
    await run.observer?.stop();
    await cl.stopServices();
    await cl.ensemble.waitForQuorum({ timeoutMs: 60_000 }).catch(() => undefined);
    try {
      finalJournal = await readJournal(cl.ensemble.connectString);
    } catch (e) {
      error ??= `the final journal could not be read: ${(e as Error).message}`;
    }
    captures = await captureServers(cl);
    const history = await readZkHistory(cl.ensemble.servers.map((s) => backingPath(lab.node(s.id), s.dataDir)));
    const data: RunData = {
      timings,
      samples: run.observer?.samples ?? [],
      drops: run.observer?.drops ?? [],
      services: cl.history,
      fault: run.fault,
      repairedAt: run.repairedAt,
      history,
      finalJournal,
      endedAt,
    };
    const metrics = measure(data);
    const safety = checkSafety(data);
    const expectations = checkExpectations(expectationsFor(scenario, guard !== null), data, metrics);
    const result: RunResult = {
      scenario: scenario.name,
      description: scenario.description,
      guard: guard ? 'on' : 'off',
      defences: guard?.defences ?? null,
      ok: error === null && safety.every((c) => c.ok) && expectations.every((x) => x.ok),
      error,
      startedAt,
      endedAt,
      lab: { id: lab.id, subnet: `${lab.subnet}.0/24`, nodes: lab.nodes.map((n) => ({ name: n.name, ip: n.ip })) },
      timings,
      fault: run.fault,
      metrics,
      safety: { ok: safety.every((c) => c.ok), checks: safety },
      expectations,
      steps: run.steps,
      timeline: timeline(data, run.steps, run.notes, metrics),
      kept: null,
      leftovers: [],
    };
    returned = result;
    if (opts.keep) {
      mkdirSync(opts.keep, { recursive: true });
      const bundle = await writeBundle(cl, opts.keep, captures);
      const injections = writeRecord(opts.keep, 'injections.json', {
        scenario: scenario.name,
        guard: result.guard,
        lab: result.lab,
        fault: run.fault,
        steps: run.steps,
        events: lab.events,
        drops: data.drops,
        claims: history.claims,
      });
      const observer = writeRecord(opts.keep, 'observer.json', { samples: data.samples });
      result.kept = { bundle, injections, observer, result: join(opts.keep, 'result.json') };
      writeRecord(opts.keep, 'result.json', result);
    }
    return result;
  } finally {
    await run.observer?.stop().catch(() => undefined);
    const cleanup = await lab.close();
    if (returned) returned.leftovers = cleanup.leftovers;
  }
}
