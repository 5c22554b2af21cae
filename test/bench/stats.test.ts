// The client benchmark's statistics: what decides whether a row counts as ahead, tied or behind
// (the round-by-round interval), how the clients' turns are ordered, and how the tail is read.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { balancedOrders, medianOf, pairedRatio, percentile, tailEvents } from '../../bench/client/stats.ts';

/** Slice rates around `level` with a deterministic ±spread wobble, `repeats` × `rounds`. */
function rates(level: number, spread: number, repeats: number, rounds: number, phase = 0): number[][] {
  return Array.from({ length: repeats }, (_, r) => Array.from({ length: rounds }, (_, i) => level * (1 + spread * Math.sin(r * 7.1 + i * 1.3 + phase))));
}

describe('bench/client statistics', () => {
  it('over a cycle of orders, each client runs in every position and follows every other one equally often', () => {
    for (const n of [1, 2, 3, 4, 5, 6]) {
      const orders = balancedOrders(n);
      // n orders for an even n, 2n for an odd one (3 clients: all 3! orders).
      assert.equal(orders.length, n === 1 ? 1 : n % 2 ? 2 * n : n);
      assert.equal(new Set(orders.map((o) => o.join(','))).size, orders.length, `n=${n}: orders are distinct`);
      for (const o of orders)
        assert.deepEqual(
          [...o].sort(),
          Array.from({ length: n }, (_, i) => i),
        );
      const count = (m: Map<string, number>, k: string): Map<string, number> => m.set(k, (m.get(k) ?? 0) + 1);
      const positions = new Map<string, number>();
      for (const o of orders) o.forEach((c, k) => count(positions, `${c}@${k}`));
      assert.equal(positions.size, n * n, `n=${n}: every client in every position`);
      assert.equal(new Set(positions.values()).size, 1, `n=${n}: equally often`);
      if (n < 2) continue;
      const follows = new Map<string, number>();
      for (const o of orders) for (let k = 1; k < n; k++) count(follows, `${o[k - 1]}>${o[k]}`);
      assert.equal(follows.size, n * (n - 1), `n=${n}: every client follows every other one`);
      assert.equal(new Set(follows.values()).size, 1, `n=${n}: equally often`);
    }
  });

  it('two identical series are a tie at exactly 1; a 10 % faster series is ahead with an interval above 1', () => {
    const peer = rates(8000, 0.05, 5, 48);
    const same = pairedRatio(peer, peer);
    assert.deepEqual([same.median, same.low, same.high, same.rounds], [1, 1, 1, 240]);

    const faster = pairedRatio(
      peer.map((rounds) => rounds.map((x) => x * 1.1)),
      peer,
    );
    assert.ok(Math.abs(faster.median - 1.1) < 1e-9);
    assert.ok(faster.low > 1 && faster.high >= faster.median && faster.low <= faster.median);
  });

  it('noise of either sign gives an interval that holds 1, and the same input gives the same interval', () => {
    const a = rates(8000, 0.08, 5, 48, 0);
    const b = rates(8000, 0.08, 5, 48, 2.2);
    const r = pairedRatio(a, b);
    assert.ok(r.low < 1 && r.high > 1, `interval ${r.low}–${r.high} holds 1`);
    assert.deepEqual(pairedRatio(a, b), r);
  });

  it('a shift confined to one repeat widens the interval (repeats are resampled, not only rounds)', () => {
    const peer = rates(8000, 0.02, 5, 48);
    const mine = peer.map((rounds, r) => rounds.map((x) => (r === 4 ? x * 1.3 : x * 1.01)));
    const twoLevel = pairedRatio(mine, peer);
    // One-level bootstrap over the same pooled ratios, for comparison.
    const pooled = pairedRatio([mine.flat()], [peer.flat()]);
    assert.ok(twoLevel.high - twoLevel.low > pooled.high - pooled.low, `${twoLevel.low}–${twoLevel.high} vs ${pooled.low}–${pooled.high}`);
  });

  it('mismatched or empty series are paired as far as both go', () => {
    assert.equal(pairedRatio([[1, 2, 3]], [[1, 2]]).rounds, 2);
    assert.equal(pairedRatio([[1], [2]], [[1]]).rounds, 1);
    const none = pairedRatio([], [[1]]);
    assert.equal(none.rounds, 0);
    assert.ok(Number.isNaN(none.median));
  });

  it('medians and percentiles', () => {
    assert.equal(medianOf([3, 1, 2]), 2);
    assert.equal(medianOf([4, 1, 3, 2]), 2.5);
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(sorted, 0.5), 51);
    assert.equal(percentile(sorted, 0.99), 100);
    assert.ok(Number.isNaN(percentile(new Float64Array(0), 0.99)));
  });

  it('slow requests that overlap in time count as one tail event', () => {
    // Three slow requests waiting together (one stall), then one more much later.
    const starts = [0, 1, 2, 3, 100, 200];
    const lats = [50, 49, 48, 1, 1, 40];
    assert.equal(tailEvents(starts, lats, 40), 2);
    assert.equal(tailEvents(starts, lats, 1000), 0);
  });
});
