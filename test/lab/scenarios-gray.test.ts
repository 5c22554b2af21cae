/**
 * The built-in scenarios whose fault leaves the meta leader alive in ZooKeeper (cut from its
 * clients, deaf, slow, starved): without the guard nothing fails over, each asserted from the run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertOk, checked, runBuiltin } from './scenario-util.ts';

describe('built-in scenarios: the leader stays in ZooKeeper', () => {
  for (const name of ['partition-leader-from-clients', 'leader-deaf']) {
    it(`${name}: the chunks elsewhere time out, ZooKeeper keeps naming the leader, no failover without the guard`, async () => {
      const r = await runBuiltin(name);
      assertOk(r);
      checked(r, 'chunksTimedOut');
      checked(r, 'faultedLeaderKept');
      checked(r, 'noFailoverDuringFault');
      assert.ok(r.metrics.requests.failed > 0);
    });
  }

  it('disk-slow: 500 ms per disk request for 5 s is slow, not a failover', async () => {
    const r = await runBuiltin('disk-slow');
    assertOk(r);
    checked(r, 'noFailover');
    assert.equal(r.metrics.newTerms, 0);
  });

  it('cpu-starve: node1 at 20 % of a core for 5 s is slower, not a failover', async () => {
    const r = await runBuiltin('cpu-starve');
    assertOk(r);
    checked(r, 'noFailover');
    assert.equal(r.metrics.newTerms, 0);
  });
});
