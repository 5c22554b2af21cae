/**
 * The health gate: runs the probes on a tick and turns their answers into one verdict.
 *
 * It judges on a short tick (JUDGE_MS, at most a quarter of probeIntervalMs), so that a deadline
 * is noticed within that much of passing, while checks start only every probeIntervalMs: each
 * tick starts a check of every probe that has none in flight and whose last check began that long
 * ago, and judges every check in flight by its age (for a probe that reports progress, the age of
 * its current step). A check older than probeTimeoutMs (or the probe's own timeoutMs) fails its
 * probe without being waited for; a check that answers later is taken as it comes. The tick's
 * own lateness is the event-loop probe.
 *
 * Verdicts: 'unknown' until every probe has answered once; 'healthy'; 'failing' from the first
 * failure; 'unhealthy' once failing has lasted graceMs (emitted once: the guard resigns then).
 * A healthy answer from every probe ends a failure at once.
 *
 * Pauses: when the whole process stalls (a GC pause, SIGSTOP), every age measured across the
 * stall includes it, and the answers that came in meanwhile are not yet processed. A tick that
 * finds the loop was stalled therefore counts ages from the end of the stall, so one pause shows
 * as one failing tick (the event loop's), which graceMs > probeIntervalMs rides out. A disk that
 * hung before or during the pause is still seen: its step makes no progress after it.
 */
import { EventEmitter } from 'node:events';
import type { GuardTiming } from './timing.ts';
import { GuardConfigError } from './errors.ts';
import type { Probe, ProbeVerdict } from './probes.ts';

export type GateState = 'unknown' | 'healthy' | 'failing' | 'unhealthy';

export interface ProbeFailure {
  probe: string;
  detail: string;
}

export interface GateEvents {
  /** Failing for graceMs: resign now. */
  unhealthy: [failures: ProbeFailure[]];
  /** Every probe answers healthy again (after unknown, failing or unhealthy). */
  healthy: [];
  /** Every change of state. */
  state: [state: GateState, previous: GateState, failures: ProbeFailure[]];
}

export interface HealthGateOptions {
  probes: readonly Probe[];
  timing: Pick<GuardTiming, 'probeIntervalMs' | 'probeTimeoutMs' | 'graceMs'>;
  /** Judge the event loop's delay (a tick later than probeTimeoutMs fails); default true. */
  eventLoop?: boolean;
}

interface Slot {
  probe: Probe;
  inFlight: boolean;
  startedAt: number;
  verdict: ProbeVerdict | null;
  /** A failure seen by age while the check is still in flight. */
  overdue: string | null;
}

export const EVENT_LOOP_PROBE = 'event loop';

/** The judging tick: a quarter of the probe interval, at most 50 ms. */
export function judgeIntervalMs(probeIntervalMs: number): number {
  return Math.max(10, Math.min(50, Math.floor(probeIntervalMs / 4)));
}

export class HealthGate extends EventEmitter<GateEvents> {
  private readonly slots: Slot[];
  private readonly timing: HealthGateOptions['timing'];
  private readonly eventLoop: boolean;
  private readonly tickMs: number;
  private _state: GateState = 'unknown';
  private failingSince: number | null = null;
  private _healthySince: number | null = null;
  private _failures: ProbeFailure[] = [];
  private loopVerdict: ProbeVerdict = { ok: true };
  private resumedAt = 0;
  private expectedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private _lastLoopDelayMs = 0;

  constructor(o: HealthGateOptions) {
    super();
    this.timing = o.timing;
    this.eventLoop = o.eventLoop ?? true;
    this.tickMs = judgeIntervalMs(o.timing.probeIntervalMs);
    const names = new Set<string>();
    this.slots = o.probes.map((probe) => {
      if (names.has(probe.name)) throw new GuardConfigError('probes', `two probes are named '${probe.name}'`);
      names.add(probe.name);
      const own = probe.timeoutMs;
      if (own !== undefined && (!Number.isInteger(own) || own <= o.timing.probeIntervalMs)) {
        throw new GuardConfigError(`probes['${probe.name}'].timeoutMs`, `expected an integer above probeIntervalMs (${o.timing.probeIntervalMs}), got ${own}`);
      }
      return { probe, inFlight: false, startedAt: -Infinity, verdict: null, overdue: null };
    });
  }

  get state(): GateState {
    return this._state;
  }

  /** What fails now (empty unless failing or unhealthy). */
  get failures(): ProbeFailure[] {
    return [...this._failures];
  }

  /** performance.now() time since which every probe has answered healthy, or null. */
  get healthySince(): number | null {
    return this._state === 'healthy' ? this._healthySince : null;
  }

  get lastLoopDelayMs(): number {
    return this._lastLoopDelayMs;
  }

  /** Opens the probes (a disk probe starts its thread) and starts ticking; the first checks start at once. */
  async start(): Promise<void> {
    if (this.running) return;
    for (const s of this.slots) await s.probe.open?.();
    this.running = true;
    const now = performance.now();
    this.resumedAt = now;
    this.expectedAt = now;
    this.tick();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const s of this.slots) s.probe.close?.();
  }

  /** Resolves when the gate is healthy (at once if it is), rejects after timeoutMs. */
  whenHealthy(timeoutMs: number): Promise<void> {
    if (this._state === 'healthy') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('healthy', ok);
        reject(new Error(`not healthy within ${timeoutMs} ms: ${this.describeFailures() || this._state}`));
      }, timeoutMs);
      const ok = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.once('healthy', ok);
    });
  }

  describeFailures(): string {
    return this._failures.map((f) => `${f.probe}: ${f.detail}`).join('; ');
  }

  private tick(): void {
    if (!this.running) return;
    const now = performance.now();
    const lateMs = Math.max(0, now - this.expectedAt);
    this._lastLoopDelayMs = lateMs;
    const { probeIntervalMs, probeTimeoutMs } = this.timing;
    if (lateMs > probeTimeoutMs) this.resumedAt = now;
    this.loopVerdict = lateMs > probeTimeoutMs ? { ok: false, detail: `a tick ran ${Math.round(lateMs)} ms late` } : { ok: true };
    for (const s of this.slots) {
      if (s.inFlight) {
        const progress = Math.max(s.probe.lastProgressAt?.() ?? s.startedAt, this.resumedAt);
        const age = now - progress;
        if (age > (s.probe.timeoutMs ?? probeTimeoutMs)) {
          const step = s.probe.currentStep?.();
          s.overdue = `${step ? `${step} ` : ''}no answer for ${Math.round(now - (s.probe.lastProgressAt?.() ?? s.startedAt))} ms`;
        }
      } else if (now - s.startedAt >= probeIntervalMs) {
        this.startCheck(s, now);
      }
    }
    this.judge(now);
    this.expectedAt = now + this.tickMs;
    this.timer = setTimeout(() => this.tick(), this.tickMs);
  }

  private startCheck(s: Slot, now: number): void {
    s.inFlight = true;
    s.startedAt = now;
    let p: Promise<ProbeVerdict | boolean>;
    try {
      p = s.probe.check({ timeoutMs: s.probe.timeoutMs ?? this.timing.probeTimeoutMs });
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (v) => this.answered(s, typeof v === 'boolean' ? { ok: v } : v),
      (e: unknown) => this.answered(s, { ok: false, detail: e instanceof Error ? e.message : String(e) }),
    );
  }

  private answered(s: Slot, v: ProbeVerdict): void {
    s.inFlight = false;
    s.overdue = null;
    s.verdict = v;
    // A healthy answer can end a failure now rather than at the next tick.
    if (this.running) this.judge(performance.now());
  }

  private judge(now: number): void {
    const failures: ProbeFailure[] = [];
    let unknown = false;
    if (this.eventLoop && !this.loopVerdict.ok) failures.push({ probe: EVENT_LOOP_PROBE, detail: this.loopVerdict.detail ?? 'late' });
    for (const s of this.slots) {
      if (s.overdue !== null) failures.push({ probe: s.probe.name, detail: s.overdue });
      else if (s.verdict === null) unknown = true;
      else if (!s.verdict.ok) failures.push({ probe: s.probe.name, detail: s.verdict.detail ?? 'failed' });
    }
    this._failures = failures;
    let next: GateState;
    if (failures.length > 0) {
      this.failingSince ??= now;
      next = now - this.failingSince >= this.timing.graceMs ? 'unhealthy' : this._state === 'unhealthy' ? 'unhealthy' : 'failing';
    } else {
      this.failingSince = null;
      next = unknown ? (this._state === 'unhealthy' ? 'unhealthy' : 'unknown') : 'healthy';
    }
    const prev = this._state;
    if (next === prev) return;
    this._state = next;
    if (next === 'healthy') this._healthySince = now;
    this.emit('state', next, prev, failures);
    if (next === 'unhealthy') this.emit('unhealthy', failures);
    if (next === 'healthy') this.emit('healthy');
  }
}
