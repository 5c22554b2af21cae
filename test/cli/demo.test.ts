import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './run-cli.ts';

type Step = { step: string } & Record<string, unknown>;

describe('zkwarden demo (the README main job)', () => {
  it('plays the seed incident on a real ensemble and explains the seed logs', () => {
    const r = runCli(['demo', '--json'], 180_000);
    assert.equal(r.status, 0, r.stderr);
    const steps = (JSON.parse(r.stdout) as { steps: Step[] }).steps;
    const by = (name: string): Step => {
      const s = steps.find((x) => x.step === name);
      assert.ok(s, `step ${name} in ${JSON.stringify(steps)}`);
      return s;
    };
    assert.equal(by('elected').leader, 'node1-meta');
    assert.notEqual(by('zk-leader-killed').newZkLeader, by('zk-leader-killed').killed);
    assert.equal(by('zk-leader-killed').metaLeader, 'node1-meta', 'a ZooKeeper leader change moves no meta leader');
    assert.equal(by('zk-leader-killed').epoch, by('elected').epoch);
    assert.equal(by('wedged').zookeeperNames, 'node1-meta', 'ZooKeeper keeps naming the wedged leader');
    assert.equal(by('wedged').sessionAlive, true);
    assert.notEqual(by('deposed').newLeader, 'node1-meta');
    assert.equal(by('deposed').higher, true, "the successor's epoch is higher");
    assert.match(String(by('fenced').write), /^refused \(FencedError/);
    assert.match(String(by('investigate').verdict), /Gray failure of the meta leader on node1/);
  });
});
