/**
 * The built-in scenarios whose fault ends a meta leader (or ZooKeeper's): each on a real lab, its
 * expected outcome asserted from the run's own measurements.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertOk, checked, runBuiltin } from './scenario-util.ts';

describe('built-in scenarios: a leader ends', () => {
  it('leader-kill: one election, a chunk served by the successor within the session timeout + 3 s', async () => {
    const r = await runBuiltin('leader-kill');
    assertOk(r);
    checked(r, 'failoverWithinMs');
    assert.equal(r.metrics.newTerms, 1);
    assert.ok(r.metrics.failoverMs! <= r.timings.sessionTimeoutMs + 3000, `failover ${r.metrics.failoverMs} ms`);
    assert.notEqual(r.metrics.failoverBy?.node, r.fault?.leader?.node, 'another node leads');
    assert.ok(r.metrics.failoverBy!.epoch > r.fault!.leader!.epoch, 'in a higher epoch');
  });

  it('leader-pause: SIGSTOP past the session timeout fails over once', async () => {
    const r = await runBuiltin('leader-pause');
    assertOk(r, { overlap: true });
    assert.equal(r.metrics.newTerms, 1);
    assert.ok(r.metrics.failoverMs! <= r.timings.sessionTimeoutMs + 3000, `failover ${r.metrics.failoverMs} ms`);
    assert.notEqual(r.metrics.failoverBy?.node, r.fault?.leader?.node);
  });

  it('leader-pause-short: a 1 s pause causes no failover', async () => {
    const r = await runBuiltin('leader-pause-short');
    assertOk(r);
    checked(r, 'noFailover');
    assert.equal(r.metrics.newTerms, 0);
    assert.equal(r.metrics.failoverMs, null);
  });

  it("zk-leader-kill: ZooKeeper elects a new leader, the metas' sessions and leader stay", async () => {
    const r = await runBuiltin('zk-leader-kill');
    assertOk(r);
    checked(r, 'noFailover');
    assert.equal(r.metrics.newTerms, 0);
    const killed = r.steps.find((s) => s.do === 'inject')!.detail;
    assert.match(killed, /kill -9 of node\d's ZooKeeper server/);
  });

  it('disk-eio: the meta fails stop on EIO and a successor takes over once', async () => {
    const r = await runBuiltin('disk-eio');
    assertOk(r);
    checked(r, 'failoverWithinMs');
    assert.equal(r.metrics.newTerms, 1);
    assert.notEqual(r.metrics.failoverBy?.node, r.fault?.node);
  });
});
