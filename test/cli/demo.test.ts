import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCliAsync } from './run-cli.ts';

type Step = { step: string } & Record<string, unknown>;

describe('zkwarden demo (the README main job)', () => {
  it('plays the seed incident for real on a lab, ends it from outside, fences the late write, explains its own bundle; then the guard ends it alone', async () => {
    const keep = mkdtempSync(join(tmpdir(), 'zkwarden-demo-test-'));
    try {
      // Any free lab subnet: the demo's default (198.18.88) may be in use by someone's lab.
      const r = await runCliAsync(['demo', '--json', '--subnet', 'auto', '--keep', keep], { timeoutMs: 400_000 });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { ok: boolean; steps: Step[] };
      const by = (name: string): Step => {
        const s = out.steps.find((x) => x.step === name);
        assert.ok(s, `step ${name} in ${JSON.stringify(out.steps)}`);
        return s;
      };
      assert.equal(out.ok, true);
      assert.equal(by('stalled').leader, 'node1', "node1's meta led when its disk stalled");
      assert.equal(by('meta-in-D').ok, true, String(by('meta-in-D').detail));
      assert.equal(by('zk-dropped').ok, true);
      assert.equal(by('named').zookeeperNames, 'node1', 'ZooKeeper kept naming the stuck leader');
      assert.equal(by('named').chunksExpired, true);
      assert.match(String(by('deposed').remedy), /session ended from outside/);
      assert.notEqual(by('deposed').newLeader, 'node1');
      assert.equal(by('deposed').higher, true, "the successor's epoch is higher");
      assert.equal(by('fenced').write, 'refused', String(by('fenced').detail));
      assert.equal(by('act1').safety, true);
      assert.match(String(by('investigate').verdict), /Gray failure of the meta leader on node1/);
      assert.equal(by('guarded').ok, true);
      assert.equal(by('guarded').manualStep, false);
      assert.notEqual(by('guarded').newLeader, 'node1');
      assert.equal(by('guarded').newTerms, 1);
    } finally {
      rmSync(keep, { recursive: true, force: true });
    }
  });
});
