/**
 * The guard in the lab: each defence alone fails the seed's cluster over (the others disabled),
 * and a 1 s SIGSTOP of the leader with every defence on fails nothing over. One scenario run
 * each (src/lab/scenario: a lab of three nodes, a real ensemble in them, meta/chunk/scavenger
 * per node); every run also checks safety. Behaviour only: how fast is bench/guard's business.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { builtin, runScenario, type RunOptions, type RunResult } from '../../src/lab/scenario/index.ts';

const alone = (gate: boolean, watchdog: boolean, deposition: boolean): RunOptions['guard'] => ({ defences: { gate, watchdog, deposition } });

function explain(r: RunResult): string {
  return `${r.error ?? ''}\n${r.expectations
    .filter((x) => !x.ok)
    .map((x) => `${x.name}: ${x.detail}`)
    .join('\n')}\n${r.safety.checks
    .filter((c) => !c.ok)
    .map((c) => `${c.name}: ${c.detail}`)
    .join('\n')}\n${r.timeline.map((e) => `${e.source} ${e.what}`).join('\n')}`;
}

/** Ran to the end, safe, every expectation of the scenario met, and a later leader served a chunk. */
function failedOver(r: RunResult): void {
  assert.ok(r.ok, `the run is ok: ${explain(r)}`);
  assert.ok(r.safety.ok && r.safety.checks.length >= 3, 'every safety check held');
  assert.notEqual(r.metrics.failoverMs, null, 'a chunk was served by a later leader');
  assert.equal(r.metrics.newTerms, 1, 'exactly one new term');
  assert.equal(r.fault?.leader?.node, r.fault?.node, "the fault hit the leader's node");
  assert.notEqual(r.metrics.failoverBy?.node, r.fault?.node, 'another node took over');
}

const deposedFor = (r: RunResult, node: string): string[] =>
  r.timeline
    .filter((e) => e.source === node)
    .map((e) => /no longer leads epoch \S+: (\S+)/.exec(e.what)?.[1])
    .filter((x): x is string => x !== undefined);

describe('the guard in the lab: each defence alone', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('(a) the in-process gate alone resigns the leader whose data disk stalls (hba-hang)', async () => {
    const r = await runScenario(builtin('hba-hang')!, { guard: alone(true, false, false) });
    failedOver(r);
    assert.ok(
      r.timeline.some((e) => e.source === 'node1' && e.what === "node1's guard: unhealthy, resigns"),
      `node1's gate resigned: ${explain(r)}`,
    );
    assert.deepEqual(deposedFor(r, 'node1'), ['unhealthy'], "node1's term ended by its own verdict");
  });

  it('(b) the watchdog alone ends the session of a meta wedged in a disk write (no code of it runs), before ZooKeeper would expire it', async () => {
    const keep = mkdtempSync(join(tmpdir(), 'zkwarden-guard-lab-'));
    dirs.push(keep);
    const r = await runScenario(builtin('hba-hang')!, { guard: alone(false, true, false), cluster: { dataWrites: 'sync' }, keep: join(keep, 'run') });
    failedOver(r);
    const bundle = join(keep, 'run', 'bundle');
    // The first incarnation's candidacy session (the reboot starts another).
    const joined = readFileSync(join(bundle, 'node1', 'zbs-metad.INFO'), 'utf8')
      .split('\n')
      .find((l) => l.includes('joined election as'));
    const session = / session (0x[0-9a-f]+)/.exec(joined ?? '')?.[1];
    assert.ok(session, `node1's meta logged its candidacy session: ${joined}`);
    const zkLogs = readdirSync(bundle)
      .filter((n) => /^node\d$/.test(n))
      .map((n) => readFileSync(join(bundle, n, 'zookeeper', 'zookeeper.log'), 'utf8'))
      .join('\n');
    // The session ended (its znode went: a successor leads) and ZooKeeper's leader, which expires
    // sessions, never expired it: it was closed, and nothing but the watchdog held its credentials.
    assert.match(zkLogs, /Expiring session 0x/, "the servers' logs are there (other sessions expired: the wedged meta's membership session)");
    assert.doesNotMatch(zkLogs, new RegExp(`Expiring session ${session}\\b`), 'closed by the watchdog, not expired by its timeout');
  });

  it("(c) deposition alone: the chunks' evidence deposes a leader cut from them that still reaches ZooKeeper", async () => {
    const r = await runScenario(builtin('partition-leader-from-clients')!, { guard: alone(false, false, true) });
    failedOver(r);
    assert.deepEqual(deposedFor(r, r.fault!.node!), ['znodeGone'], 'its election znode was deleted under its live session (the deposing multi)');
  });

  it('a 1 s SIGSTOP of the leader with every defence on fails nothing over', async () => {
    const r = await runScenario(builtin('leader-pause-short')!, { guard: true });
    assert.ok(r.ok, `the run is ok: ${explain(r)}`);
    assert.equal(r.metrics.newTerms, 0, 'no new term');
    assert.equal(r.metrics.failoverMs, null);
    assert.ok(r.safety.ok);
  });
});
