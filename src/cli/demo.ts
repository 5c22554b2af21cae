/**
 * `zkwarden demo`: the seed incident, for real, on a 3-node lab (the lab's short timings).
 *
 * Act 1, no guard (the built-in scenario `hba-hang-remedy`): node1 leads the metas and its disk
 * stops completing I/O. Its meta is seen in D, ZooKeeper keeps naming it, the chunks on the other
 * nodes time out against it and expire. The remedy the guard is built on ends its session from
 * outside (endSession); the successor serves; when node1's disk is released the old leader's
 * late write goes through ZooKeeper and the fenced check refuses it. Then `investigate` reads the
 * run's own bundle, blind, and gives its verdict.
 *
 * Act 2, `--guard on` (`hba-hang`): the same fault, ended by the guard with no manual step.
 */
import type { Command } from 'commander';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { investigate } from '../forensics/logs/investigate.ts';
import { LabEnvironmentError, LabUsageError } from '../lab/host.ts';
import type { Progress, RunResult } from '../lab/scenario/runner.ts';
import { CliError, ExitCode, cliAction, note, printJson } from './output.ts';

const seconds = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
const hex = (n: number | undefined): string => (n === undefined ? '?' : `0x${n.toString(16)}`);

function expectation(r: RunResult, name: string): { ok: boolean; detail: string } {
  const x = r.expectations.find((e) => e.name === name);
  return { ok: x?.ok ?? false, detail: x?.detail ?? `${name} not checked` };
}

function demoCliError(e: unknown): CliError | null {
  if (e instanceof LabEnvironmentError) return new CliError(e.message, ExitCode.environment);
  if (e instanceof LabUsageError) return new CliError(e.message, ExitCode.usage);
  return null;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'the seed incident for real on a 3-node lab: a leader on a hung disk, its remedy, the fenced late write, the verdict of investigate; then the same with the guard on',
    )
    .option('--keep <dir>', "where the runs' bundles and records go (default: a new temporary directory)")
    .option('--subnet <a.b.c>', "the lab's /24 inside 198.18.0.0/15, or 'auto' for any free one", '198.18.88')
    .option('--json', 'machine-readable output (the steps and their facts)')
    .action(
      cliAction(demoCliError, async (o: { keep?: string; subnet: string; json?: boolean }) => {
        const { builtin } = await import('../lab/scenario/builtin.ts');
        const { runScenario } = await import('../lab/scenario/runner.ts');
        const dir = o.keep !== undefined ? resolve(o.keep) : mkdtempSync(join(tmpdir(), 'zkwarden-demo-'));
        const steps: Record<string, unknown>[] = [];
        const say = (m: string): void => {
          if (!o.json) process.stdout.write(`${m}\n`);
        };
        const step = (name: string, facts: Record<string, unknown>, text: string): void => {
          steps.push({ step: name, ...facts });
          say(text);
        };
        const started = Date.now();
        // The steps as they happen (stderr): a minute of silence would look like a hang.
        const progress = (p: Progress): void => {
          if (p.kind !== 'status')
            note(`  ${((p.at - started) / 1000).toFixed(1).padStart(5)} s  ${p.kind === 'step' ? `[${p.step}/${p.steps}] ` : ''}${p.text}`);
        };
        const subnet = o.subnet === 'auto' ? {} : { subnet: o.subnet };

        // Act 1: no guard; the operator's remedy.
        note('act 1: the seed on a 3-node lab, no guard (scenario hba-hang-remedy, about a minute)...');
        const a = await runScenario(builtin('hba-hang-remedy')!, { keep: join(dir, 'act1'), ...subnet, onProgress: progress });
        const f = a.fault;
        const leader = f?.leader;
        step(
          'stalled',
          { node: f?.node ?? null, leader: leader?.node ?? null, epoch: leader?.epoch ?? null, lab: a.lab },
          `1. ${a.lab.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')}: ZooKeeper, meta, chunk and scavenger on each. node1's meta leads (epoch ${hex(leader?.epoch)}); node1's disk stops completing I/O — its CPU and network stay.`,
        );
        const inD = expectation(a, 'metaInD');
        step(
          'meta-in-D',
          { ok: inD.ok, detail: inD.detail },
          `2. ${inD.detail}: its requests hang on the disk, its ZooKeeper client (no disk) keeps heartbeating.`,
        );
        const dropped = expectation(a, 'zkDropped');
        step('zk-dropped', { ok: dropped.ok, detail: dropped.detail }, `3. ZooKeeper: ${dropped.detail}; the quorum goes on without it.`);
        const kept = expectation(a, 'faultedLeaderKept');
        const expired = expectation(a, 'chunksExpired');
        step(
          'named',
          { zookeeperNames: kept.ok ? leader?.node : null, ok: kept.ok, detail: kept.detail, chunksExpired: expired.ok, firstErrorMs: a.metrics.firstErrorMs },
          `4. ${kept.detail}. The chunks time out from T+${seconds(a.metrics.firstErrorMs)} and ${expired.detail.replace(/^node2, node3 /, 'node2 and node3 ')}. This is the seed incident: nothing inside ZooKeeper will end it.`,
        );
        const remedy = a.steps.find((s) => s.do === 'end-session');
        const handoverMs = f?.endAt && a.metrics.failoverMs !== null ? f.at + a.metrics.failoverMs - f.endAt : null;
        step(
          'deposed',
          {
            remedy: remedy?.detail ?? null,
            newLeader: a.metrics.failoverBy?.node ?? null,
            epoch: a.metrics.failoverBy?.epoch ?? null,
            higher: (a.metrics.failoverBy?.epoch ?? 0) > (leader?.epoch ?? Infinity),
            handoverMs,
          },
          `5. the remedy, from outside: ${remedy?.detail.replace(/^end-session node1: /, '') ?? 'not run'}. ${a.metrics.failoverBy?.node}'s meta serves the chunks ${seconds(handoverMs)} later, epoch ${hex(a.metrics.failoverBy?.epoch)}.`,
        );
        const late = expectation(a, 'lateWriteRefused');
        step(
          'fenced',
          { ok: late.ok, write: late.ok ? 'refused' : 'not refused', detail: late.detail },
          `6. node1's disk is released: its meta finishes the requests it held and writes them, late, through ZooKeeper: ${late.detail}.`,
        );
        step(
          'act1',
          { ok: a.ok, safety: a.safety.ok, metrics: a.metrics },
          `7. safety: ${a.safety.checks.map((c) => `${c.ok ? 'ok' : 'FAILED'} ${c.name}`).join('; ')}.`,
        );

        const bundle = a.kept?.bundle ?? join(dir, 'act1', 'bundle');
        const inv = await investigate({ root: bundle });
        const verdict = inv.verdicts[0];
        step(
          'investigate',
          { bundle, verdict: verdict?.title ?? null, findings: inv.findings.length },
          `8. zkwarden investigate on the run's own bundle, blind (no flags):\n   ${verdict?.title ?? 'no verdict'}\n   (${inv.findings.length} findings; run: zkwarden investigate ${bundle})`,
        );

        // Act 2: the guard.
        note('act 2: the same fault with the guard on (scenario hba-hang --guard on)...');
        const b = await runScenario(builtin('hba-hang')!, { guard: true, keep: join(dir, 'act2'), ...subnet, onProgress: progress });
        const manual = b.steps.some((s) => s.do === 'end-session');
        step(
          'guarded',
          {
            ok: b.ok,
            failoverMs: b.metrics.failoverMs,
            newLeader: b.metrics.failoverBy?.node ?? null,
            newTerms: b.metrics.newTerms,
            manualStep: manual,
            safety: b.safety.ok,
          },
          `9. with the guard: node1's disk stalls the same way; the guard ends node1's leadership by itself (no manual step) and ${b.metrics.failoverBy?.node ?? 'no one'}'s meta serves the chunks after ${seconds(b.metrics.failoverMs)} (${b.metrics.newTerms} new term); safety ${b.safety.ok ? 'ok' : 'FAILED'}.`,
        );

        say(`\nbundles and records in ${dir}; every lab removed.`);
        if (o.json) printJson({ ok: a.ok && b.ok, dir, steps });
        if (!a.ok || !b.ok) process.exitCode = ExitCode.finding;
      }),
    );
}
