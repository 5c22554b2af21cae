// The whole story on a bundle a real ensemble writes: three meta services (their own processes,
// one port each on the shared 127.0.0.1) elect a leader through ZooKeeper; chunk clients on the
// other nodes call whoever leads. The leader hangs like the seed's (no answers, no log lines,
// its ZooKeeper session kept alive by heartbeats) while its node's ZooKeeper server stops too;
// later the node is "rebooted": the meta process is killed (its session expires), ZooKeeper and
// the meta start again, and the next candidate takes over. `investigate` must name the onset,
// the handover (new endpoint and time) and the restoration within 2 s of what the test did,
// map every 127.0.0.1 endpoint to its own node, and give the same verdict whether each node's
// data sits in a subfolder or as `version-2/` beside its logs.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { investigate, type Investigation } from '../../../src/forensics/logs/investigate.ts';
import { Ensemble } from '../../../src/lab/ensemble.ts';
import { readLeader } from '../../../src/recipes/index.ts';
import { createClient, type ZooKeeperClient } from '../../../src/zk/index.ts';

const repo = join(import.meta.dirname, '..', '..', '..');
let ens: Ensemble;
let dir: string;
const metas = new Map<number, { child: ChildProcess; endpoint: string; events: Record<string, unknown>[] }>();
const truth: Record<string, number> = {};
let hungId = 0;
let newLeader = { endpoint: '', at: 0 };
const endpoints = new Map<number, string>();
let subfolders: Investigation;
let beside: Investigation;

const p2 = (n: number, w = 2): string => String(n).padStart(w, '0');
function glog(file: string, level: 'I' | 'W', msg: string): void {
  const d = new Date();
  appendFileSync(file, `${level}${p2(d.getMonth() + 1)}${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${p2(d.getMilliseconds() * 1000, 6)}   4242 chunk.cc:7] ${msg}\n`);
}

/** Waits for a fact with a bound: the child's event, a state. Never for time alone. */
async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function startMeta(id: number, connectString: string): void {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'meta-service.ts'), join(dir, `node${id}`, 'zbs-metad.INFO'), connectString, `meta${id}`], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  const m = { child, endpoint: '', events: [] as Record<string, unknown>[] };
  metas.set(id, m);
  createInterface({ input: child.stdout! }).on('line', (l) => {
    const ev = JSON.parse(l) as Record<string, unknown>;
    m.events.push(ev);
    if (ev.event === 'ready') m.endpoint = String(ev.endpoint);
  });
}

/** One call: a line out, a line back within 600 ms, or a timeout (logged as the seed's chunks do). */
function call(endpoint: string): Promise<boolean> {
  const [host, port] = endpoint.split(':') as [string, string];
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port) });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), 600);
    s.on('connect', () => s.write('call\n'));
    s.on('data', () => done(true));
    s.on('error', () => done(false));
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zkw-story-'));
  for (const id of [1, 2, 3]) mkdirSync(join(dir, `node${id}`), { recursive: true });
  ens = await Ensemble.start({ size: 3, tickTime: 300, initLimit: 5, syncLimit: 2, snapCount: 100_000 });
  hungId = (await ens.followerIds())[0]!;
  const others = [1, 2, 3].filter((i) => i !== hungId);
  // The meta that will hang leads first; its client talks to the other servers only, so its
  // session lives on while its own node's ZooKeeper is stopped.
  startMeta(hungId, others.map((i) => ens.address(i)).join(','));
  await until('the first meta to lead', () => metas.get(hungId)!.events.find((e) => e.event === 'elected'));
  for (const id of others) startMeta(id, ens.connectString);
  await until('every meta ready', () => [...metas.values()].every((m) => m.endpoint));
  for (const [id, m] of metas) endpoints.set(id, m.endpoint);

  // Chunk clients on the other nodes: ask ZooKeeper who leads, call it, log the outcome.
  const chunkClients: ZooKeeperClient[] = [];
  let stop = false;
  let firstFail = 0;
  let restoredAt = 0;
  let servedByFirst = 0;
  const failedNodes = new Set<number>();
  const loops = others.map(async (id) => {
    const c = createClient(ens.address(id), { sessionTimeoutMs: 6000 });
    await c.connect();
    chunkClients.push(c);
    const file = join(dir, `node${id}`, 'zbs-chunkd.INFO');
    let k = 0;
    while (!stop) {
      const leader = await readLeader(c).catch(() => null);
      if (leader) {
        const local = `127.0.0.1:${40000 + id * 100 + (k++ % 100)}`;
        const ok = await call(leader.endpoint);
        if (ok) {
          glog(file, 'I', `VEXTENT_READ ok socket: ${local}-->${leader.endpoint}`);
          if (leader.endpoint === endpoints.get(hungId)) servedByFirst++;
          if (firstFail && !restoredAt && leader.endpoint !== endpoints.get(hungId)) restoredAt = Date.now();
        } else {
          glog(file, 'W', `[Retry IO ON ERROR]: VEXTENT_READ\nTraceback:\n[ETimedOut]: ProtoAsyncClient meet timeout: expect timeout ms: 600 socket: ${local}-->${leader.endpoint}`);
          if (!firstFail) firstFail = Date.now();
          failedNodes.add(id);
        }
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  });
  await until('ten calls served by the first leader', () => servedByFirst >= 10);

  // The hang: the meta stops answering and logging; its node's ZooKeeper stops too.
  metas.get(hungId)!.child.kill('SIGUSR1');
  await until('the meta to hang', () => metas.get(hungId)!.events.find((e) => e.event === 'hung'));
  truth.hang = metas.get(hungId)!.events.find((e) => e.event === 'hung')!.at as number;
  await ens.pause(hungId);
  // The outage must be long enough to tell from a blip: failures from both chunk nodes.
  await until('both chunk nodes failing against the hung leader', () => firstFail && failedNodes.size === 2 && Date.now() - firstFail > 3000);
  truth.firstFail = firstFail;

  // The reboot: the meta process dies (its session expires), ZooKeeper and the meta start again.
  truth.reboot = Date.now();
  const old = metas.get(hungId)!.child;
  old.kill('SIGKILL');
  await new Promise((r) => old.once('exit', r));
  await ens.kill(hungId);
  await ens.startServer(hungId);
  truth.zkRestart = Date.now();
  startMeta(hungId, ens.connectString);
  const elected = await until('another meta to take over', () => {
    for (const [id, m] of metas) if (id !== hungId) { const e = m.events.find((x) => x.event === 'elected'); if (e) return { id, e }; }
    return undefined;
  });
  newLeader = { endpoint: String(elected.e.endpoint), at: elected.e.at as number };
  await until('a call served by the new leader', () => restoredAt);
  truth.restored = restoredAt;
  await until('the rebooted meta back in the election', () => metas.get(hungId)!.endpoint);
  stop = true;
  await Promise.all(loops);
  await Promise.all(chunkClients.map((c) => c.close().catch(() => undefined)));
  for (const m of metas.values()) m.child.kill('SIGKILL');

  // Collect: logs with preserved times; data in a subfolder for one bundle, beside the logs for the other.
  const layouts = { sub: join(dir, 'bundle-sub'), beside: join(dir, 'bundle-beside') };
  for (const s of ens.servers) {
    for (const [kind, root] of Object.entries(layouts)) {
      const node = join(root, `node${s.id}`);
      cpSync(join(dir, `node${s.id}`), node, { recursive: true, preserveTimestamps: true });
      const zk = kind === 'sub' ? join(node, 'zookeeper') : node;
      mkdirSync(zk, { recursive: true });
      cpSync(s.logFile, join(zk, 'zookeeper.log'), { preserveTimestamps: true });
      cpSync(s.dataDir, kind === 'sub' ? join(zk, 'data') : node, { recursive: true, preserveTimestamps: true });
    }
  }
  subfolders = await investigate({ root: layouts.sub, minSilenceMs: 2000 });
  beside = await investigate({ root: layouts.beside, minSilenceMs: 2000 });
});

after(async () => {
  for (const m of metas.values()) m.child.kill('SIGKILL');
  await ens?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const near = (a: unknown, b: number, what: string): void => {
  assert.equal(typeof a, 'number', `${what}: ${String(a)}`);
  assert.ok(Math.abs((a as number) - b) <= 2000, `${what}: ${new Date(a as number).toISOString()} vs truth ${new Date(b).toISOString()}`);
};

test('a hung leader later rebooted: onset, handover and restoration within 2 s of the truth', () => {
  const v = subfolders.verdicts.find((x) => x.facts?.verdict === 'gray-failure');
  assert.ok(v, JSON.stringify(subfolders.verdicts.map((x) => x.title)));
  assert.equal(v.facts?.leaderNode, `node${hungId}`);
  assert.equal(v.facts?.endpoint, endpoints.get(hungId));
  near(v.facts?.onset, truth.hang!, 'onset');
  near(v.facts?.firstFailure, truth.firstFail!, 'first failure');
  assert.equal(v.facts?.newEndpoint, newLeader.endpoint);
  near(v.facts?.handoverAt, newLeader.at, 'handover');
  near(v.facts?.restoredAt, truth.restored!, 'restored');
  assert.ok(Number(v.facts?.sessionEndedAt) > truth.reboot!, 'the old session ended after the reboot');
  assert.equal(v.facts?.nodeState, 'silent');
  assert.match(v.detail ?? '', /restarted at/);
  assert.match(v.detail ?? '', /Handover: 127\.0\.0\.1:\d+ \(epoch 0x[0-9a-f]+\) → 127\.0\.0\.1:\d+ \(epoch 0x[0-9a-f]+\)/);
  assert.ok(subfolders.findings.some((f) => f.kind === 'handover'));
  assert.ok(subfolders.findings.some((f) => f.kind === 'restored'));
  assert.ok(subfolders.findings.some((f) => f.kind === 'process-start' && f.node === `node${hungId}` && f.service === 'zookeeper' && f.from >= truth.reboot!));
});

test('services sharing 127.0.0.1, a port per node: every endpoint names its own node', () => {
  for (const [id, ep] of endpoints) assert.equal(subfolders.topology.endpointNodes[ep], `node${id}`, ep);
  assert.equal(subfolders.topology.addresses['127.0.0.1'], undefined, '127.0.0.1 is never one node');
  const calls = subfolders.findings.filter((f) => f.kind === 'failed-calls' && f.facts?.remote === endpoints.get(hungId));
  assert.ok(calls.length >= 1);
  for (const c of calls) assert.equal(c.facts?.remoteNode, `node${hungId}`);
  assert.match(calls[0]!.title, /meta leader/);
  assert.ok(subfolders.topology.leaderEndpoints.includes(endpoints.get(hungId)!));
});

test('version-2/ beside the logs gives the same verdict as data in subfolders', () => {
  assert.ok(beside.stats.lines > 100, 'the logs were read');
  assert.equal(beside.data.dataDirs.length, 3);
  const a = subfolders.verdicts.map((v) => [v.facts?.verdict, v.facts?.leaderNode, v.facts?.endpoint, v.facts?.newEndpoint, v.facts?.handoverAt, v.facts?.restoredAt]);
  const b = beside.verdicts.map((v) => [v.facts?.verdict, v.facts?.leaderNode, v.facts?.endpoint, v.facts?.newEndpoint, v.facts?.handoverAt, v.facts?.restoredAt]);
  assert.deepEqual(b, a);
  assert.ok(beside.files.some((f) => f.file === `node${hungId}/zbs-metad.INFO` && f.lines > 5));
});
