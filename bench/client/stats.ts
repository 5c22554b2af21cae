/** Statistics of the client benchmark (bench/client/run.ts), kept apart so that they can be tested. */

/**
 * The requests at or above p99 grouped into moments: requests whose [start, end] intervals
 * overlap were waiting at the same time, so one stall (a server's GC pause, a descheduled
 * process) that holds up every request in flight counts once. At N outstanding, few events
 * mean p99 is the size of the few worst stalls, not a property of the steady state.
 */
export function tailEvents(starts: number[], lats: number[], p99: number): number {
  const slow: [number, number][] = [];
  for (let i = 0; i < lats.length; i++) if (lats[i] >= p99) slow.push([starts[i], starts[i] + lats[i]]);
  slow.sort((x, y) => x[0] - y[0]);
  let events = 0;
  let end = -Infinity;
  for (const [s, e] of slow) {
    if (s > end) events++;
    end = Math.max(end, e);
  }
  return events;
}

export function medianOf(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Throughput of zkwarden over a peer, round by round: in every round each client ran one slice
 * of the same requests moments apart, so the ratio of two slices cancels most of what the
 * machine was doing at the time. The estimate is the median of all rounds' ratios; the 95 %
 * interval comes from a two-level bootstrap (repeats drawn with replacement, then rounds within
 * each drawn repeat), because rounds of one repeat share that repeat's state of the ensemble and
 * are not independent of each other. Fixed seed: the same slices give the same interval.
 */
export function pairedRatio(mine: number[][], peer: number[][]): { median: number; low: number; high: number; rounds: number } {
  const perRepeat: number[][] = [];
  for (let r = 0; r < Math.min(mine.length, peer.length); r++) {
    const n = Math.min(mine[r].length, peer[r].length);
    if (n > 0) perRepeat.push(Array.from({ length: n }, (_, i) => mine[r][i] / peer[r][i]));
  }
  const all = perRepeat.flat();
  if (all.length === 0) return { median: NaN, low: NaN, high: NaN, rounds: 0 };
  let seed = 0x2545f491;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(v: T[]): T => v[Math.floor(random() * v.length)];
  const medians: number[] = [];
  for (let b = 0; b < 2000; b++) {
    const sample: number[] = [];
    for (let r = 0; r < perRepeat.length; r++) {
      const rounds = pick(perRepeat);
      for (let i = 0; i < rounds.length; i++) sample.push(pick(rounds));
    }
    medians.push(medianOf(sample));
  }
  medians.sort((a, b) => a - b);
  return { median: medianOf(all), low: medians[Math.floor(0.025 * medians.length)], high: medians[Math.floor(0.975 * medians.length)], rounds: all.length };
}

export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * The orders in which the clients take their turns, one per round, cycled: a Williams design, so
 * every client runs in every position and follows every other one equally often over a cycle (n
 * orders for an even n, 2n for an odd n; every order of n! would need 24 rounds for 4 clients).
 * A plain rotation would give each client a fixed predecessor, and whatever a slice leaves behind
 * on the servers (the other members still applying its commits, its garbage) would always be
 * charged to the same client.
 */
export function balancedOrders(n: number): number[][] {
  if (n <= 1) return [Array.from({ length: n }, (_, i) => i)];
  // First order 0, 1, n-1, 2, n-2, ...; the others are its shifts. For an odd n the shifts alone
  // leave some pairs adjacent twice and others never, and their mirror images make up for it.
  const first = Array.from({ length: n }, (_, k) => (k === 0 ? 0 : k % 2 ? (k + 1) / 2 : n - k / 2));
  const shifts = Array.from({ length: n }, (_, r) => first.map((c) => (c + r) % n));
  return n % 2 ? [...shifts, ...shifts.map((o) => [...o].reverse())] : shifts;
}
