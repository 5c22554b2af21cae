import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { listNetns } from '../../src/lab/network.ts';

const root = join(import.meta.dirname, '..', '..');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The real `zkwarden` command, as a user runs it (with `env` added to this process's). */
function zkwarden(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function json<T>(r: Run): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`not JSON (exit ${r.status}): ${r.stdout}\n${r.stderr}`);
  }
}

describe('zkwarden lab node|net|cpu|disk|clean', () => {
  const id = `c${Math.random().toString(36).slice(2, 7)}`;
  let subnet = '';
  const lab = ['--lab', id];
  after(() => {
    zkwarden(['lab', 'node', 'down', ...lab]);
  });

  it('brings up nodes with ZooKeeper inside them, which outlive the command', () => {
    // An explicit subnet, as a user gives it; another lab may hold the one picked: then another.
    let up: Run | undefined;
    for (let attempt = 0; attempt < 10; attempt++) {
      subnet = `198.19.${200 + Math.floor(Math.random() * 50)}`;
      up = zkwarden(['lab', 'node', 'up', '--id', id, '--subnet', subnet, '--zookeeper', '--tick-time', '200', '--json']);
      if (!(up.status === 2 && /is in use/.test(up.stdout))) break;
    }
    assert.equal(up!.status, 0, up!.stderr);
    const s = json<{ id: string; nodes: { name: string; ip: string }[]; zookeeper: { connectString: string; servers: { mode: string | null }[] } }>(up!);
    assert.equal(s.id, id);
    assert.deepEqual(
      s.nodes.map((n) => `${n.name} ${n.ip}`),
      [1, 2, 3].map((i) => `node${i} ${subnet}.${100 + i}`),
    );
    assert.equal(s.zookeeper.connectString, [1, 2, 3].map((i) => `${subnet}.${100 + i}:2181`).join(','));
    assert.equal(s.zookeeper.servers.filter((x) => x.mode === 'leader').length, 1);

    const list = zkwarden(['lab', 'node', 'list', ...lab, '--json']);
    assert.equal(list.status, 0, list.stderr);
    const l = json<{ owner: { alive: boolean }; nodes: { processes: { command: string }[] }[]; zookeeper: { servers: { mode: string | null }[] } }>(list);
    assert.equal(l.owner.alive, true, 'a keeper process owns the lab');
    assert.ok(
      l.nodes.every((n) => n.processes.some((p) => p.command.includes('QuorumPeerMain'))),
      'each node runs its ZooKeeper server',
    );
    assert.equal(l.zookeeper.servers.filter((x) => x.mode !== null).length, 3);
    assert.match(zkwarden(['lab', 'node', 'list', ...lab]).stdout, new RegExp(`lab ${id} +${subnet.replace(/\./g, '\\.')}\\.0/24`));
  });

  it('cuts one port between two nodes, reads it back, checks it with real connections, and heals it', () => {
    const cut = zkwarden(['lab', 'net', 'cut', 'node1', 'node2', '--port', '10100', ...lab, '--json']);
    assert.equal(cut.status, 0, cut.stderr);
    const f = json<{ id: string; kind: string; port: number }>(cut);
    assert.equal(f.kind, 'cut');
    const faults = json<{ faults: { id: string }[] }>(zkwarden(['lab', 'net', 'list', ...lab, '--json'])).faults;
    assert.deepEqual(
      faults.map((x) => x.id),
      [f.id],
    );
    const blocked = zkwarden(['lab', 'net', 'check', 'node1', 'node2', '--port', '10100', ...lab, '--json']);
    assert.equal(blocked.status, 1, 'a connection that is not open is a finding');
    assert.equal(json<{ outcome: string }>(blocked).outcome, 'dropped');
    const other = zkwarden(['lab', 'net', 'check', 'node1', 'node2', '--port', '10101', ...lab]);
    assert.equal(other.status, 0, other.stderr);
    assert.match(other.stdout, new RegExp(`node1 → node2:10101 +open \\(from ${subnet.replace(/\./g, '\\.')}\\.101:`));
    const heal = zkwarden(['lab', 'net', 'heal', ...lab, '--json']);
    assert.deepEqual(
      json<{ healed: { id: string }[] }>(heal).healed.map((x) => x.id),
      [f.id],
    );
    assert.equal(zkwarden(['lab', 'net', 'check', 'node1', 'node2', '--port', '10100', ...lab]).status, 0);
  });

  it('limits and frees a node’s CPU', () => {
    const limit = zkwarden(['lab', 'cpu', 'limit', 'node2', '--percent', '10', ...lab, '--json']);
    assert.equal(limit.status, 0, limit.stderr);
    assert.equal(json<{ fraction: number }>(limit).fraction, 0.1);
    const show = json<{ nodes: { node: string; fraction: number | null }[] }>(zkwarden(['lab', 'cpu', 'show', ...lab, '--json']));
    assert.deepEqual(
      show.nodes.map((n) => [n.node, n.fraction]),
      [
        ['node1', null],
        ['node2', 0.1],
        ['node3', null],
      ],
    );
    assert.equal(zkwarden(['lab', 'cpu', 'unlimit', 'node2', ...lab]).status, 0);
    const timed = zkwarden(['lab', 'cpu', 'limit', 'node3', '--percent', '25', '--for', '300ms', ...lab, '--json']);
    assert.equal(timed.status, 0, timed.stderr);
    assert.ok(json<{ heldMs: number }>(timed).heldMs >= 300);
    assert.equal(
      json<{ nodes: { fraction: number | null }[] }>(zkwarden(['lab', 'cpu', 'show', ...lab, '--json'])).nodes[2]!.fraction,
      null,
      'lifted when the time was up',
    );
  });

  it('runs, lists, stops and kills processes on a node, and refuses any other process', () => {
    const exec = zkwarden(['lab', 'node', 'exec', 'node1', '--detach', ...lab, '--json', '--', 'sleep', '600']);
    assert.equal(exec.status, 0, exec.stderr);
    const { pid } = json<{ pid: number }>(exec);
    const ps = json<{ processes: { pid: number; state: string }[] }>(zkwarden(['lab', 'node', 'ps', 'node1', ...lab, '--json']));
    assert.ok(
      ps.processes.some((p) => p.pid === pid),
      'the process is on node1',
    );
    const stop = zkwarden(['lab', 'node', 'kill', 'node1', String(pid), '--signal', 'STOP', ...lab, '--json']);
    assert.equal(json<{ state: string }>(stop).state, 'T');
    const kill = zkwarden(['lab', 'node', 'kill', 'node1', String(pid), ...lab, '--json']);
    assert.equal(kill.status, 0, kill.stderr);
    assert.equal(json<{ state: string | null }>(kill).state, null);
    const foreign = zkwarden(['lab', 'node', 'kill', 'node1', String(process.pid), ...lab]);
    assert.equal(foreign.status, 2);
    assert.match(foreign.stderr, new RegExp(`pid ${process.pid} is not a process of node1`));
    // A foreground command runs in the node and its exit code is the command's.
    const addr = zkwarden(['lab', 'node', 'exec', 'node3', ...lab, '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.equal(addr.status, 0, addr.stderr);
    assert.match(addr.stdout, new RegExp(`inet ${subnet.replace(/\./g, '\\.')}\\.103/24`));
    assert.equal(zkwarden(['lab', 'node', 'exec', 'node3', ...lab, '--', 'sh', '-c', 'exit 7']).status, 7);
  });

  it("stalls a node's disk and heals it", () => {
    const stall = zkwarden(['lab', 'disk', 'node1', 'stall', '--ops', 'fsync', ...lab, '--json']);
    assert.equal(stall.status, 0, stall.stderr);
    const status = json<{ rules: { mode: string; ops: string[] }[] }>(zkwarden(['lab', 'disk', 'node1', 'status', ...lab, '--json']));
    assert.deepEqual(status.rules, [{ mode: 'stall', ops: ['fsync'] }]);
    assert.equal(zkwarden(['lab', 'disk', 'node1', 'healthy', ...lab]).status, 0);
    assert.deepEqual(json<{ rules: unknown[] }>(zkwarden(['lab', 'disk', 'node1', 'status', ...lab, '--json'])).rules, []);
    const bad = zkwarden(['lab', 'disk', 'node1', 'delay', 'soon', ...lab]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /delay: expected a number of milliseconds, got "soon"/);
  });

  it('refuses bad input with exit 2 and a JSON error under --json', () => {
    const foreign = zkwarden(['lab', 'net', 'cut', 'node1', '10.0.0.1', ...lab, '--json']);
    assert.equal(foreign.status, 2);
    assert.match(json<{ error: { message: string; exitCode: number } }>(foreign).error.message, /10\.0\.0\.1 is not an address of lab/);
    const subnetBad = zkwarden(['lab', 'node', 'up', '--subnet', '10.0.0', '--json']);
    assert.equal(subnetBad.status, 2);
    assert.match(json<{ error: { message: string } }>(subnetBad).error.message, /not a \/24 inside 198\.18\.0\.0\/15/);
    const taken = zkwarden(['lab', 'node', 'up', '--id', id, '--subnet', '198.19.9']);
    assert.equal(taken.status, 2, 'an id in use is refused');
    assert.match(taken.stderr, new RegExp(`a lab with id '${id}' already exists`));
    const none = zkwarden(['lab', 'net', 'list', '--lab', 'nosuch']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no lab 'nosuch'/);
    assert.equal(zkwarden(['lab', 'net', 'cut', 'node1', 'node2', '--port', '70000', ...lab]).status, 2);
  });

  it('exits 3 naming the capability the machine lacks', () => {
    const noCgroup = zkwarden(['lab', 'node', 'up', '--subnet', '198.19.9', '--json'], { ZKWARDEN_CGROUP_CPU: '/nonexistent' });
    assert.equal(noCgroup.status, 3);
    assert.match(
      json<{ error: { message: string } }>(noCgroup).error.message,
      /^the lab needs the cgroup v1 cpu controller: \/nonexistent\/cpu\.cfs_quota_us not found/,
    );
    const bin = mkdtempSync(join(tmpdir(), 'zkwarden-no-iptables-'));
    try {
      for (const tool of ['ip', 'ss', 'nsenter', 'sh'])
        symlinkSync(spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), join(bin, tool));
      const noIptables = zkwarden(['lab', 'node', 'up', '--subnet', '198.19.9'], { PATH: bin });
      assert.equal(noIptables.status, 3);
      assert.match(noIptables.stderr, /the lab needs iptables: 'iptables' is not installed/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    const notRoot = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        '--import',
        'tsx',
        join(root, 'src', 'cli', 'main.ts'),
        'lab',
        'node',
        'up',
        '--json',
      ],
      { cwd: root, encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(notRoot.status, 3, notRoot.stderr);
    assert.match((JSON.parse(notRoot.stdout) as { error: { message: string } }).error.message, /^the lab needs root/);
  });

  it('keeps a lab whose owner lives on `lab clean`, and removes all of it on `node down`', async () => {
    const clean = json<{ skipped: { lab: string }[] }>(zkwarden(['lab', 'clean', '--json']));
    assert.ok(clean.skipped.some((s) => s.lab === id));
    const down = zkwarden(['lab', 'node', 'down', ...lab, '--json']);
    assert.equal(down.status, 0, down.stderr);
    assert.deepEqual(json<{ leftovers: string[] }>(down).leftovers, []);
    assert.deepEqual(
      (await listNetns()).filter((n) => n.includes(`-${id}-`)),
      [],
    );
    assert.equal(zkwarden(['lab', 'node', 'list', ...lab]).status, 2);
  });
});
