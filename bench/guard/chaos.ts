/**
 * Longer chaos runs on demand (src/lab/scenario/chaos.ts): seeds one after another, each a whole
 * lab run of a random sequence of the lab's faults, safety checked at its end. The test suite runs
 * two fixed seeds with few faults (test/guard/chaos.test.ts); this is for the long ones.
 *
 *   npm run bench:chaos -- [--seed 1] [--runs 5] [--faults 10] [--max-hold 6000] [--guard on|off]
 *                          [--kinds disk-stall,cut,…] [--subnet 198.18.77] [--keep DIR] [--json FILE]
 *
 * Prints each run's plan, outcome and safety checks; exits 1 when a run was unsafe or stopped on a
 * step (the seed reproduces the sequence; --keep leaves each run's bundle in DIR/seed-N), 2 on bad
 * input.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CHAOS_FAULTS, ChaosOptionError, chaosPlan, chaosScenario, type ChaosFault } from '../../src/lab/scenario/chaos.ts';
import { runScenario } from '../../src/lab/scenario/index.ts';

class UsageError extends Error {}

function intOpt(values: Record<string, unknown>, name: string, lo: number, hi: number): number {
  const v = String(values[name]);
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < lo || n > hi) throw new UsageError(`--${name}: expected an integer from ${lo} to ${hi}, got ${v}`);
  return n;
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        seed: { type: 'string', default: '1' },
        runs: { type: 'string', default: '5' },
        faults: { type: 'string', default: '10' },
        'max-hold': { type: 'string', default: '6000' },
        guard: { type: 'string', default: 'on' },
        kinds: { type: 'string' },
        subnet: { type: 'string', default: '198.18.77' },
        keep: { type: 'string' },
        json: { type: 'string' },
      },
      strict: true,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  const seed = intOpt(values, 'seed', 0, 0xffffffff);
  const runs = intOpt(values, 'runs', 1, 10_000);
  const faults = intOpt(values, 'faults', 1, 1000);
  const maxHoldMs = intOpt(values, 'max-hold', 1000, 600_000);
  if (values.guard !== 'on' && values.guard !== 'off') throw new UsageError(`--guard: expected on or off, got ${String(values.guard)}`);
  const kinds = values.kinds === undefined ? undefined : (String(values.kinds).split(',') as ChaosFault[]);
  const subnet = String(values.subnet);
  if (!/^198\.(18|19)\.\d{1,3}$/.test(subnet)) throw new UsageError(`--subnet: expected a /24 inside 198.18.0.0/15 such as 198.18.77, got ${subnet}`);
  const opts = (s: number): Parameters<typeof chaosPlan>[0] => ({ seed: s, faults, maxHoldMs, ...(kinds ? { kinds } : {}) });
  try {
    chaosPlan(opts(seed));
  } catch (e) {
    if (e instanceof ChaosOptionError)
      throw new UsageError(
        `--${e.field === 'maxHoldMs' ? 'max-hold' : e.field}: ${e.message.slice(e.field.length + 2)}${e.field === 'kinds' ? ` (known: ${CHAOS_FAULTS.join(', ')})` : ''}`,
      );
    throw e;
  }
  const out: unknown[] = [];
  let bad = 0;
  for (let i = 0; i < runs; i++) {
    const s = seed + i;
    const scenario = chaosScenario(opts(s));
    process.stderr.write(`seed ${s}: ${scenario.description.replace(/^chaos, seed \d+: /, '')} (load ${loadavg()[0]!.toFixed(1)})\n`);
    const t0 = Date.now();
    const r = await runScenario(scenario, { guard: values.guard === 'on', subnet, ...(values.keep ? { keep: join(String(values.keep), `seed-${s}`) } : {}) });
    const ok = r.safety.ok && r.error === null;
    if (!ok) bad++;
    process.stdout.write(
      `seed ${s}: ${r.safety.ok ? 'safe' : 'UNSAFE'}${r.error ? `, stopped: ${r.error}` : ''}; ${r.metrics.acknowledged} acknowledged writes, ${r.metrics.newTerms} new term(s), ${Math.round((Date.now() - t0) / 1000)} s\n` +
        r.safety.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}\n`).join(''),
    );
    out.push({ seed: s, plan: chaosPlan(opts(s)), ok, safety: r.safety, error: r.error, metrics: r.metrics, steps: r.steps });
  }
  process.stdout.write(`${runs - bad}/${runs} run(s) safe and complete (guard ${String(values.guard)}, ${faults} faults each, held at most ${maxHoldMs} ms)\n`);
  if (values.json) writeFileSync(String(values.json), JSON.stringify(out, null, 1));
  return bad > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench:chaos: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 3);
  },
);
