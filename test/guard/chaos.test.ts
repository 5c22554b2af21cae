/**
 * The chaos run (src/lab/scenario/chaos.ts): a seed names one sequence of faults; two fixed seeds
 * run in the lab with the guard on, and every safety check holds after each. Longer runs:
 * `npm run bench:chaos`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHAOS_FAULTS, ChaosOptionError, chaosPlan, chaosScenario } from '../../src/lab/scenario/chaos.ts';
import { runScenario } from '../../src/lab/scenario/index.ts';

describe('chaos plans', () => {
  it('one seed, one sequence; other seeds, other sequences; every fault drawn over a few seeds', () => {
    assert.deepEqual(chaosPlan({ seed: 7, faults: 8 }), chaosPlan({ seed: 7, faults: 8 }));
    assert.notDeepEqual(chaosPlan({ seed: 7, faults: 8 }), chaosPlan({ seed: 8, faults: 8 }));
    const seen = new Set(Array.from({ length: 20 }, (_, s) => chaosPlan({ seed: s, faults: 10 }).map((p) => p.kind)).flat());
    assert.deepEqual([...seen].sort(), [...CHAOS_FAULTS].sort());
    for (const p of chaosPlan({ seed: 3, faults: 50, maxHoldMs: 2500 })) assert.ok(p.holdMs <= 2500, `${p.kind} held ${p.holdMs} ms`);
    assert.deepEqual(new Set(chaosPlan({ seed: 3, faults: 30, kinds: ['cut', 'cpu'] }).map((p) => p.kind)), new Set(['cut', 'cpu']));
  });

  it('a plan is a valid scenario: each fault injected, held, repaired, then every chunk served again', () => {
    const s = chaosScenario({ seed: 23, faults: 4 });
    assert.equal(s.steps.filter((x) => x.do === 'inject').length, 4);
    assert.equal(s.steps.filter((x) => x.do === 'heal' || x.do === 'reboot').length, 4);
    assert.equal(s.steps.filter((x) => x.do === 'until' && x.fact === 'recovered').length, 4);
  });

  it('bad options are named', () => {
    assert.throws(
      () => chaosPlan({ seed: -1 }),
      (e: unknown) => e instanceof ChaosOptionError && e.field === 'seed',
    );
    assert.throws(
      () => chaosPlan({ seed: 1, faults: 0 }),
      (e: unknown) => e instanceof ChaosOptionError && e.field === 'faults',
    );
    assert.throws(
      () => chaosPlan({ seed: 1, maxHoldMs: 10 }),
      (e: unknown) => e instanceof ChaosOptionError && e.field === 'maxHoldMs',
    );
    assert.throws(
      () => chaosPlan({ seed: 1, kinds: ['melt' as never] }),
      (e: unknown) => e instanceof ChaosOptionError && /unknown fault 'melt'/.test(e.message),
    );
  });
});

describe('chaos in the lab, guard on', () => {
  // 13: the leader's disk stalls, the meta leader is killed twice, the leader's port is cut from
  // the chunks. 23: the leader killed, a meta paused past the watchdog's deadline (rebooted), a
  // disk stall, a disk failing with EIO (the meta fail-stops; rebooted).
  for (const seed of [13, 23]) {
    it(`seed ${seed}: every step runs and every safety check holds`, async () => {
      const scenario = chaosScenario({ seed, faults: 4, maxHoldMs: 3000 });
      const r = await runScenario(scenario, { guard: true });
      const why = `${r.error ?? ''}\n${r.safety.checks.map((c) => `${c.name}: ${c.detail}`).join('\n')}\n${r.timeline.map((e) => `${e.source} ${e.what}`).join('\n')}`;
      assert.equal(r.error, null, `the run went to the end: ${why}`);
      assert.equal(r.steps.length, scenario.steps.length);
      assert.ok(r.safety.checks.length >= 3);
      for (const c of r.safety.checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
      assert.ok(r.metrics.acknowledged > 0, 'the chunks had writes acknowledged');
    });
  }
});
