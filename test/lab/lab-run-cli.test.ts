/** `zkwarden lab run` / `lab list` input handling: each bad input is one line naming it, exit 2, before any lab starts. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readScenarioFile } from '../../src/lab/scenario/index.ts';
import { runCli } from '../cli/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'zkwarden-lab-run-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('zkwarden lab run: bad input', () => {
  it('an unknown scenario names the argument and lists the built-in ones', () => {
    const r = runCli(['lab', 'run', 'hba-hnag']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /<scenario>: 'hba-hnag' is neither a built-in scenario \(hba-hang, .*leader-kill.*\) nor a file/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  });

  it('a scenario file with a bad field names the file and the field', () => {
    const f = file(
      'bad.json',
      JSON.stringify({ name: 'x', description: 'd', steps: [{ do: 'start' }, { do: 'inject', fault: { kind: 'stal', node: 'node1' } }] }),
    );
    const r = runCli(['lab', 'run', f]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${f}: steps[1].fault.kind: expected one of "disk-stall"`), r.stderr);
    assert.match(r.stderr, /got "stal"/);
  });

  it('a scenario file that is not JSON names the file and the offset; under --json the error is JSON', () => {
    const f = file('broken.json', '{"name": "x",, }');
    const r = runCli(['lab', 'run', f, '--json']);
    assert.equal(r.status, 2, r.stderr);
    const e = JSON.parse(r.stdout) as { error: { message: string; exitCode: number } };
    assert.equal(e.error.exitCode, 2);
    assert.ok(e.error.message.startsWith(`${f}: not JSON at offset 13`), e.error.message);
  });

  it('a YAML scenario file reads as the same scenario as its JSON twin; a bad one names the line and column, or the field', () => {
    const scenario = {
      name: 'y',
      description: 'd',
      steps: [{ do: 'start' }, { do: 'inject', fault: { kind: 'disk-stall', node: 'node1' }, name: 'hba' }, { do: 'heal', name: 'hba' }],
    };
    const yaml = file(
      'good.yaml',
      'name: y\ndescription: d\nsteps:\n  - do: start\n  - do: inject\n    fault: { kind: disk-stall, node: node1 }\n    name: hba\n  - do: heal\n    name: hba\n',
    );
    assert.deepEqual(readScenarioFile(yaml), readScenarioFile(file('good.json', JSON.stringify(scenario))));
    const broken = file('broken.yml', 'name: x\nsteps: [\n  - do: start\n');
    const r = runCli(['lab', 'run', broken]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${broken}: not YAML at line 3, column 3: `), r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    const bad = file('bad.yaml', 'name: x\ndescription: d\nsteps:\n  - do: start\n  - do: inject\n    fault: { kind: stal, node: node1 }\n');
    const b = runCli(['lab', 'run', bad]);
    assert.equal(b.status, 2, b.stderr);
    assert.ok(b.stderr.includes(`${bad}: steps[1].fault.kind: expected one of "disk-stall"`), b.stderr);
  });

  it('a bad --timings file, a --keep directory holding a bundle and a bad --guard are named', () => {
    const t = file('timings.json', JSON.stringify({ sessionTimeoutMs: 1 }));
    const r = runCli(['lab', 'run', 'leader-kill', '--timings', t]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.includes(`${t}: timings.sessionTimeoutMs: 1 ms is outside what ZooKeeper grants`), r.stderr);
    const u = file('unknown.json', JSON.stringify({ sessionTimeout: 6000 }));
    assert.match(runCli(['lab', 'run', 'leader-kill', '--timings', u]).stderr, /timings\.sessionTimeout: unknown timing/);
    const kept = join(dir, 'kept');
    mkdirSync(join(kept, 'bundle'), { recursive: true });
    writeFileSync(join(kept, 'bundle', 'bundle.json'), '{}');
    const k = runCli(['lab', 'run', 'leader-kill', '--keep', kept]);
    assert.equal(k.status, 2, k.stderr);
    assert.ok(k.stderr.includes(`--keep ${kept}: ${join(kept, 'bundle')} already holds a bundle`), k.stderr);
    const g = runCli(['lab', 'run', 'leader-kill', '--guard', 'maybe']);
    assert.equal(g.status, 2);
    assert.match(g.stderr, /--guard expects 'off' or 'on', got 'maybe'/);
  });
});

describe('zkwarden lab list', () => {
  it('lists every built-in scenario, as text and as JSON', () => {
    const r = runCli(['lab', 'list', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const names = (JSON.parse(r.stdout) as { scenarios: { name: string }[] }).scenarios.map((s) => s.name);
    for (const n of [
      'hba-hang',
      'hba-hang-remedy',
      'leader-kill',
      'leader-pause',
      'leader-pause-short',
      'zk-leader-kill',
      'partition-leader-from-clients',
      'leader-deaf',
      'disk-slow',
      'disk-eio',
      'cpu-starve',
    ])
      assert.ok(names.includes(n), n);
    const text = runCli(['lab', 'list']);
    assert.match(text.stdout, /^hba-hang +the seed/m);
  });
});
