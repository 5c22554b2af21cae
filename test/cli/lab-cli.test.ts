import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { portFree } from '../../src/lab/ensemble.ts';
import { processState } from '../../src/lab/proc.ts';
import { until } from '../until.ts';
import { runCli } from './run-cli.ts';

describe('zkwarden lab ensemble up|status|down', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zkwarden-cli-'));
  const subnet = `127.${20 + Math.floor(Math.random() * 200)}.${20 + Math.floor(Math.random() * 200)}`;
  after(() => {
    runCli(['lab', 'ensemble', 'down', '--dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts an ensemble that outlives the command, reports it (a SIGSTOPped server as paused), and stops it', async () => {
    const up = runCli(['lab', 'ensemble', 'up', '--subnet', subnet, '--dir', dir, '--tick-time', '200', '--json']);
    assert.equal(up.status, 0, up.stderr);
    const started = JSON.parse(up.stdout) as { connectString: string; servers: { pid: number; mode: string }[] };
    assert.equal(started.connectString, `${subnet}.101:2181,${subnet}.102:2181,${subnet}.103:2181`);
    assert.equal(started.servers.length, 3);

    const status = runCli(['lab', 'ensemble', 'status', '--dir', dir, '--json']);
    assert.equal(status.status, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { quorum: boolean; leader: number; servers: { pid: number; mode: string }[] };
    assert.equal(s.quorum, true);
    assert.equal(s.servers.filter((x) => x.mode === 'leader').length, 1);
    const pids = s.servers.map((x) => x.pid);
    for (const pid of pids) assert.doesNotThrow(() => process.kill(pid, 0), 'server still runs after up exited');

    const human = runCli(['lab', 'ensemble', 'status', '--dir', dir]);
    assert.match(human.stdout, /quorum: yes, leader is server \d/);

    // Stopped by a signal from anyone (not through the Ensemble): /proc says paused.
    const follower = s.servers.find((x) => x.mode === 'follower')!;
    process.kill(follower.pid, 'SIGSTOP');
    try {
      await until('the follower stopped', () => processState(follower.pid) === 'T', 10_000);
      const frozen = runCli(['lab', 'ensemble', 'status', '--dir', dir, '--json']);
      assert.equal(frozen.status, 0, frozen.stderr);
      const f = JSON.parse(frozen.stdout) as { quorum: boolean; servers: { pid: number; state: string; mode: string | null }[] };
      assert.deepEqual(
        f.servers.map((x) => [x.pid, x.state]),
        pids.map((pid) => [pid, pid === follower.pid ? 'paused' : 'running']),
      );
      assert.equal(f.servers.find((x) => x.pid === follower.pid)!.mode, null);
      assert.equal(f.quorum, true, 'two of three still serve');
      assert.match(runCli(['lab', 'ensemble', 'status', '--dir', dir]).stdout, new RegExp(`paused +pid ${follower.pid} `));
    } finally {
      process.kill(follower.pid, 'SIGCONT');
    }

    const again = runCli(['lab', 'ensemble', 'up', '--subnet', subnet, '--dir', dir]);
    assert.equal(again.status, 2, 'a second up on the same directory is refused');
    assert.match(again.stderr, /already recorded/);

    const down = runCli(['lab', 'ensemble', 'down', '--dir', dir, '--json']);
    assert.equal(down.status, 0, down.stderr);
    assert.deepEqual((JSON.parse(down.stdout) as { stopped: number[] }).stopped, [1, 2, 3]);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0));
  });

  it('says there is nothing to report once it is down', async () => {
    const status = runCli(['lab', 'ensemble', 'status', '--dir', dir]);
    assert.equal(status.status, 3);
    assert.match(status.stderr, /no ensemble recorded/);
    assert.equal(await portFree(`${subnet}.101`, 2181), true);
  });

  it('prints help and rejects bad arguments with exit code 2', () => {
    const help = runCli(['lab', 'ensemble', 'up', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--size <n>/);
    const bad = runCli(['lab', 'ensemble', 'up', '--size', 'three', '--dir', dir]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--size expects a positive integer, got 'three'/);
    // Refused before anything starts: not even the directory is made.
    const fresh = join(dir, 'never-made');
    const refusals: [string[], RegExp][] = [
      [['--size', '4'], /--size expects 1, 3, 5 servers, got 4/],
      [['--size', '7'], /--size expects 1, 3, 5 servers, got 7/],
      [['--subnet', '10.1.88'], /--subnet expects the first three octets of a loopback address, like 127\.0\.88, got '10\.1\.88'/],
      [['--subnet', '127.300.1'], /--subnet expects .* got '127\.300\.1'/],
      [['--subnet', '127.0'], /--subnet expects .* got '127\.0'/],
    ];
    for (const [args, message] of refusals) {
      const r = runCli(['lab', 'ensemble', 'up', ...args, '--dir', fresh]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(existsSync(fresh), false, `${args.join(' ')} made ${fresh}`);
    }
  });
});
