/** Shared by the scenario tests: run a built-in scenario and say what failed in one message. */
import assert from 'node:assert/strict';
import { builtin, runScenario, type RunOptions, type RunResult } from '../../src/lab/scenario/index.ts';

export async function runBuiltin(name: string, opts: RunOptions = {}): Promise<RunResult> {
  const s = builtin(name);
  assert.ok(s, `built-in scenario ${name}`);
  return runScenario(s, opts);
}

/**
 * The run finished every step, is safe, and met every expectation of its scenario. `overlap`: a
 * frozen leader still believes it leads while its successor serves (a SIGSTOP), which is what the
 * fencing is for; otherwise never two metas act as leader at once.
 */
export function assertOk(r: RunResult, opts: { overlap?: boolean } = {}): void {
  const failed = [...r.expectations.filter((x) => !x.ok), ...r.safety.checks.filter((c) => !c.ok)];
  assert.equal(r.error, null, `${r.scenario}: ${r.error}`);
  assert.deepEqual(failed, [], `${r.scenario}: ${JSON.stringify(failed)}`);
  assert.equal(r.ok, true);
  assert.deepEqual(r.leftovers, [], `${r.scenario}: the lab's clean-up left something`);
  assert.ok(r.metrics.acknowledged > 0, 'the chunks wrote through the run');
  if (!opts.overlap) assert.equal(r.metrics.maxLeaders, 1, 'never two metas acting as leader');
}

/** The expectation of this name was checked (and held). */
export function checked(r: RunResult, name: string): void {
  const x = r.expectations.find((e) => e.name === name);
  assert.ok(x, `${r.scenario} checks ${name}: ${JSON.stringify(r.expectations)}`);
  assert.ok(x.ok, `${r.scenario}: ${name}: ${x.detail}`);
}
