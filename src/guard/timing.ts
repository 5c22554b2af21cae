/**
 * The guard's timing model: every deadline of the three defences, their defaults, and the
 * relations between them, checked before anything starts (docs/guard.md, "Timing model").
 *
 * The order that makes the defences work together, fastest first:
 *
 *   probeIntervalMs < probeTimeoutMs          a stuck probe is seen on a later tick
 *   probeIntervalMs < graceMs                 one late tick (a GC pause, a SIGSTOP) never resigns
 *   graceMs + probeIntervalMs < watchdogDeadlineMs
 *                                             a process that can run its code resigns by itself
 *                                             before its watchdog acts: its beats say "ill" from
 *                                             the first failing verdict, it resigns graceMs
 *                                             later, the watchdog would act only a deadline later
 *   3 * heartbeatIntervalMs <= watchdogDeadlineMs
 *                                             the watchdog acts only after three missed beats
 *   watchdogDeadlineMs < sessionTimeoutMs     the watchdog acts before ZooKeeper would expire a
 *                                             frozen process's session on its own (and is the
 *                                             only defence when a wedged process keeps its
 *                                             session alive, as the seed's meta did)
 */
import { GuardConfigError } from './errors.ts';
import { judgeIntervalMs } from './health.ts';

export interface GuardTiming {
  /** How often each probe is started (at most one in flight per probe). */
  probeIntervalMs: number;
  /**
   * A probe in flight longer than this fails; for the disk probe, one step (open, write, fsync,
   * close, unlink) without progress for this long; for the event loop, a tick this late. A probe
   * may set its own (`Probe.timeoutMs`).
   */
  probeTimeoutMs: number;
  /** Failing continuously this long resigns (closes the session). */
  graceMs: number;
  /** Healthy continuously this long before standing again after a resignation. */
  recoverMs: number;
  /** How often the service tells its watchdog it lives (and how it is). */
  heartbeatIntervalMs: number;
  /** No heartbeat (or only ill ones, while a session is registered) for this long: the watchdog ends the session. */
  watchdogDeadlineMs: number;
  /** The ZooKeeper session timeout the guarded service asks for. */
  sessionTimeoutMs: number;
}

/**
 * Defaults that fail over in about 3 s (docs/guard.md shows the arithmetic). probeTimeoutMs is
 * 2 s because one system call can be several disk requests: on a disk that takes 500 ms per
 * request, creating the probe's file (lookup, create, getattr) takes 1.5 s, and that is a slow
 * disk, not a dead one.
 */
export const DEFAULT_TIMING: Readonly<GuardTiming> = Object.freeze({
  probeIntervalMs: 200,
  probeTimeoutMs: 2000,
  graceMs: 500,
  recoverMs: 1000,
  heartbeatIntervalMs: 100,
  watchdogDeadlineMs: 2000,
  sessionTimeoutMs: 4000,
});

/** What a timing means in practice: the bounds docs/guard.md explains. */
export interface TimingBounds {
  /** Fault → the in-process gate has closed the session (the process can still run its code). */
  inProcessResignMs: number;
  /** Freeze → the watchdog starts ending the session (the process runs no code at all). */
  watchdogActsMs: number;
  /** Freeze → ZooKeeper would expire the session by itself (a Node service: no pings either). */
  naturalExpiryMs: number;
  /** The longest single stall of the whole process (GC, SIGSTOP) that fails nothing over. */
  ridesOutPauseMs: number;
  /** The slowest single disk operation (one system call) the disk probe accepts as progress. */
  ridesOutDiskOpMs: number;
}

const FIELDS: readonly (keyof GuardTiming)[] = [
  'probeIntervalMs',
  'probeTimeoutMs',
  'graceMs',
  'recoverMs',
  'heartbeatIntervalMs',
  'watchdogDeadlineMs',
  'sessionTimeoutMs',
];

/**
 * The defaults overridden by `partial`, validated. Throws GuardConfigError naming the first
 * field that is not a positive integer or the first relation of the model that fails;
 * `prefix` is how the caller names the timing (`timing`, or a CLI's `--`).
 */
export function resolveTiming(partial: Partial<GuardTiming> = {}, prefix = 'timing.'): GuardTiming {
  const t: GuardTiming = { ...DEFAULT_TIMING };
  for (const k of FIELDS) {
    const v = partial[k];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v <= 0) throw new GuardConfigError(`${prefix}${k}`, `expected a positive integer of milliseconds, got ${String(v)}`);
    t[k] = v;
  }
  const need = (ok: boolean, field: keyof GuardTiming, why: string): void => {
    if (!ok) throw new GuardConfigError(`${prefix}${field}`, why);
  };
  need(
    t.probeIntervalMs < t.probeTimeoutMs,
    'probeTimeoutMs',
    `must exceed probeIntervalMs (${t.probeIntervalMs}), got ${t.probeTimeoutMs}: a stuck probe is seen on a later tick`,
  );
  need(t.probeIntervalMs < t.graceMs, 'graceMs', `must exceed probeIntervalMs (${t.probeIntervalMs}), got ${t.graceMs}: one late tick must not resign`);
  const resign = t.graceMs + t.probeIntervalMs;
  need(
    resign < t.watchdogDeadlineMs,
    'watchdogDeadlineMs',
    `must exceed graceMs + probeIntervalMs (${resign}), got ${t.watchdogDeadlineMs}: a process that runs resigns before its watchdog acts on its ill beats`,
  );
  checkWatchdogTiming(t, {
    watchdogDeadlineMs: `${prefix}watchdogDeadlineMs`,
    heartbeatIntervalMs: `${prefix}heartbeatIntervalMs`,
    sessionTimeoutMs: `${prefix}sessionTimeoutMs`,
  });
  return t;
}

/**
 * The watchdog's side of the model (what `zkwarden guard run` can check on its own): three
 * beats per deadline, and a deadline shorter than the session timeout. `names` are the
 * caller's names for the fields (option names on a command line).
 */
export function checkWatchdogTiming(
  t: Pick<GuardTiming, 'watchdogDeadlineMs' | 'heartbeatIntervalMs'> & { sessionTimeoutMs?: number },
  names: Record<'watchdogDeadlineMs' | 'heartbeatIntervalMs' | 'sessionTimeoutMs', string>,
): void {
  if (3 * t.heartbeatIntervalMs > t.watchdogDeadlineMs) {
    throw new GuardConfigError(
      names.heartbeatIntervalMs,
      `at most a third of the watchdog deadline (${t.watchdogDeadlineMs}), got ${t.heartbeatIntervalMs}: the watchdog acts after three missed beats, not one`,
    );
  }
  if (t.sessionTimeoutMs !== undefined && t.watchdogDeadlineMs >= t.sessionTimeoutMs) {
    throw new GuardConfigError(
      names.sessionTimeoutMs,
      `must exceed the watchdog deadline (${t.watchdogDeadlineMs}), got ${t.sessionTimeoutMs}: the watchdog must act before the session would expire on its own`,
    );
  }
}

/** Checks the session timeout ZooKeeper granted (it clamps to [2, 20] × tickTime) against the model. */
export function checkNegotiatedTimeout(t: GuardTiming, negotiatedMs: number): void {
  if (negotiatedMs <= t.watchdogDeadlineMs) {
    throw new GuardConfigError(
      'timing.sessionTimeoutMs',
      `ZooKeeper granted a session timeout of ${negotiatedMs} ms (asked ${t.sessionTimeoutMs}), not above watchdogDeadlineMs (${t.watchdogDeadlineMs}): raise the servers' minSessionTimeout/maxSessionTimeout or lower the deadline`,
    );
  }
}

export function timingBounds(t: GuardTiming): TimingBounds {
  const tick = judgeIntervalMs(t.probeIntervalMs);
  return {
    // Worst case: the fault begins just after a check answered; the next starts a probe interval
    // later, fails once it has been stuck probeTimeoutMs (seen within a judging tick), and the
    // gate waits out its grace (seen within another).
    inProcessResignMs: t.probeIntervalMs + t.probeTimeoutMs + tick + t.graceMs + tick,
    // The last beat may have left just before the freeze.
    watchdogActsMs: t.watchdogDeadlineMs,
    naturalExpiryMs: t.sessionTimeoutMs,
    // A stall shows as one late tick (no resignation while graceMs > probeIntervalMs); the
    // watchdog tolerates silence up to its deadline, counted from a beat up to one interval old.
    ridesOutPauseMs: t.watchdogDeadlineMs - t.heartbeatIntervalMs,
    ridesOutDiskOpMs: t.probeTimeoutMs,
  };
}
