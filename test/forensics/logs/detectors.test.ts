// Detectors and readers on small hand-made bundles: service session expiry, error bursts, GNU
// stat listings, captures, zoo.cfg/bundle.json topology, the verdict's negative case, the merge's
// order and stability, and the report formats.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseCapture, parseStatListing } from '../../../src/forensics/logs/captures.ts';
import { investigate } from '../../../src/forensics/logs/investigate.ts';
import { mergeTimeline } from '../../../src/forensics/logs/merge.ts';
import { TimeZone } from '../../../src/forensics/logs/time.ts';
import type { Entry } from '../../../src/forensics/logs/types.ts';
import { render } from '../../../src/forensics/report/index.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zkw-detectors-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const utc = TimeZone.parse('UTC');
const hms = (s: number): string =>
  `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;

function write(root: string, rel: string, lines: string[]): void {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, lines.join('\n') + '\n');
}

test('service sessions expired and error bursts are grouped per lane', async () => {
  const root = join(dir, 'svc');
  const chunk: string[] = [];
  for (let s = 0; s < 8; s++) chunk.push(`E0625 05:44:0${s}.000000  12 meta_client.cc:88] [SESSION]: Session expired, session id 7`);
  chunk.push('I0625 05:50:00.000000  12 meta_client.cc:90] reconnecting');
  write(root, 'n2/zbs-chunkd.INFO', chunk);
  write(root, 'n3/zbs-chunkd.INFO', ['W0625 05:44:03.500000  12 meta_client.cc:88] Session expired']);
  const inv = await investigate({ root, tz: 'UTC', year: 2022 });
  const exp = inv.findings.filter((f) => f.kind === 'service-session-expired');
  assert.deepEqual(
    exp.map((f) => [f.node, f.service, f.facts?.count]),
    [
      ['n2', 'zbs-chunkd', 8],
      ['n3', 'zbs-chunkd', 1],
    ],
  );
  const bursts = inv.findings.filter((f) => f.kind === 'error-burst');
  assert.equal(bursts.length, 1);
  assert.equal(bursts[0]!.facts?.count, 8);
  assert.equal(utc.format(bursts[0]!.from, 0), '2022-06-25 05:44:00');
  assert.equal(utc.format(bursts[0]!.to, 0), '2022-06-25 05:44:07');
});

test('GNU stat listings carry their own offset; BSD ones use the zone', () => {
  const gnu = parseStatListing(
    [
      '  File: /var/log/zbs/zbs-metad.INFO',
      '  Size: 1',
      'Access: 2022-06-28 15:56:28.000000000 +0800',
      'Modify: 2022-06-25 05:43:24.123456789 +0800',
      'Change: 2022-06-28 15:56:30.000000000 +0800',
    ].join('\n'),
    utc,
  );
  assert.equal(gnu.length, 1);
  assert.equal(gnu[0]!.path, '/var/log/zbs/zbs-metad.INFO');
  assert.equal(new Date(gnu[0]!.mtime).toISOString(), '2022-06-24T21:43:24.123Z');
  const bsd = parseStatListing('  File: "./x.log"\nModify: Sat Jun 25 05:43:24 2022\n', TimeZone.parse('+08:00'));
  assert.equal(new Date(bsd[0]!.mtime).toISOString(), '2022-06-24T21:43:24.000Z');
});

test('srvr, mntr and dump captures are parsed', () => {
  const srvr = parseCapture(
    'srvr',
    'Zookeeper version: 3.8.0-abc, built on 2024\nLatency min/avg/max: 0/0.5/3\nReceived: 10\nSent: 9\nConnections: 1\nOutstanding: 0\nZxid: 0x200000011\nMode: follower\nNode count: 32672\n',
  );
  assert.deepEqual([srvr.mode, srvr.zxid, srvr.nodeCount, srvr.version], ['follower', '0x200000011', 32672, '3.8.0-abc']);
  const mntr = parseCapture('mntr', 'zk_version\t3.8.0-x, built\nzk_server_state\tleader\nzk_znode_count\t32689\nzk_ephemerals_count\t9\n');
  assert.deepEqual([mntr.mode, mntr.nodeCount, mntr.ephemerals], ['leader', 32689, 9]);
  const dump = parseCapture(
    'dump',
    'SessionTracker dump:\nGlobal Sessions(1):\n0x20000031a22e220\t6000ms\nephemeral nodes dump:\nSessions with Ephemerals (1):\n0x20000031a22e220:\n\t/zbs/meta/__mj_cluster/10.1.88.101:10100\n\t/zbs/meta/__mj_j/0000000000d9e955/0000000000d9eac2\n',
  );
  assert.deepEqual(dump.sessions, { '0x20000031a22e220': ['/zbs/meta/__mj_cluster/10.1.88.101:10100', '/zbs/meta/__mj_j/0000000000d9e955/0000000000d9eac2'] });
});

test('topology from zoo.cfg, myid, a dump capture and bundle.json ports', async () => {
  const root = join(dir, 'topo');
  write(root, 'bundle.json', [JSON.stringify({ ports: { '10200': 'chunk' } })]);
  write(root, 'a/zoo.cfg', ['tickTime=2000', 'dataDir=/data', 'server.1=10.9.0.1:2888:3888', 'server.2=10.9.0.2:2888:3888']);
  write(root, 'a/data/myid', ['1']);
  write(root, 'b/data/myid', ['2']);
  write(root, 'b/captures/dump.txt', ['ephemeral nodes dump:', 'Sessions with Ephemerals (1):', '0x1:', '\t/svc/meta/__mj_cluster/10.9.0.1:10100']);
  write(root, 'b/svc.INFO', [
    'W0101 00:00:01.000000  1 c.cc:1] [ETimedOut] call failed socket: 10.9.0.2:5000-->10.9.0.1:10100',
    'W0101 00:00:02.000000  1 c.cc:1] [ECONNREFUSED] call failed socket: 10.9.0.2:5001-->10.9.0.1:10200',
  ]);
  const inv = await investigate({ root, tz: 'UTC', year: 2024 });
  assert.equal(inv.topology.addresses['10.9.0.1'], 'a');
  assert.equal(inv.topology.addresses['10.9.0.2'], 'b');
  const calls = inv.findings.filter((f) => f.kind === 'failed-calls');
  assert.deepEqual(
    calls.map((c) => [c.facts?.remoteNode, c.facts?.remoteRole, c.facts?.error]),
    [
      ['a', 'meta', 'ETimedOut'],
      ['a', 'chunk', 'ECONNREFUSED'],
    ],
  );
});

/**
 * node1 falls silent at 05:00:40 (its meta and its ZooKeeper, the quorum's leader); chunks on
 * node2 time out against node1's meta at the given seconds. `zk` adds lines to the survivors'
 * ZooKeeper logs (null: the bundle has none of their logs); `chunkExtra` to node2's chunk log.
 */
async function silentLeaderBundle(
  name: string,
  opts: { failAt: number[]; zk: { node: number; at: number; msg: string }[] | null; chunkExtra?: { at: number; line: string }[] },
): Promise<Awaited<ReturnType<typeof investigate>>> {
  const root = join(dir, name);
  const t0 = 5 * 3600;
  const zk = (node: number, s: number, msg: string): string =>
    `2022-06-25 ${hms(s)},000 [myid:${node}] - INFO  [QuorumPeer[myid=${node}]/10.1.88.10${node}:2181:X@1] - ${msg}`;
  const n1: string[] = [zk(1, t0, 'LEADING')];
  for (let s = 1; s < 40; s++) n1.push(zk(1, t0 + s, 'tick'));
  n1.push(zk(1, t0 + 3600, 'back'));
  write(root, 'node1/zookeeper.log', n1);
  if (opts.zk) {
    for (const node of [2, 3]) {
      const lines: { at: number; text: string }[] = [{ at: t0, text: zk(node, t0, 'FOLLOWING') }];
      for (let s = 5; s < 3700; s += 5) lines.push({ at: t0 + s, text: zk(node, t0 + s, 'tick') });
      for (const l of opts.zk.filter((x) => x.node === node)) lines.push({ at: t0 + l.at, text: zk(node, t0 + l.at, l.msg) });
      write(
        root,
        `node${node}/zookeeper.log`,
        lines.sort((a, b) => a.at - b.at).map((l) => l.text),
      );
    }
  }
  const chunk: { at: number; line: string }[] = [];
  for (let s = 0; s < 3700; s += 5) chunk.push({ at: s, line: 'I0625 HMS.000000  1 c.cc:1] chunk alive' });
  for (const [k, at] of opts.failAt.entries())
    chunk.push({ at, line: `W0625 HMS.000000  1 c.cc:1] [ETimedOut] x socket: 10.1.88.102:5${k % 10}-->10.1.88.101:10100` });
  chunk.push(...(opts.chunkExtra ?? []));
  write(
    root,
    'node2/zbs-chunkd.INFO',
    chunk.sort((a, b) => a.at - b.at).map((c) => c.line.replace('HMS', hms(t0 + c.at))),
  );
  write(root, '_c/members.txt', ['/zbs/meta/__mj_cluster/10.1.88.101:10100', '/zbs/meta/__mj_cluster/10.1.88.102:10100']);
  const inv = await investigate({ root, tz: 'UTC' });
  assert.ok(
    inv.findings.some((f) => f.kind === 'silence' && f.node === 'node1'),
    'node1 is silent',
  );
  assert.ok(
    inv.findings.some((f) => f.kind === 'failed-calls' && f.facts?.remoteNode === 'node1'),
    'the failures are found',
  );
  return inv;
}

const gray = (inv: Awaited<ReturnType<typeof investigate>>) => inv.verdicts.filter((v) => v.facts?.verdict === 'gray-failure');
const failing = [100, 160, 220, 280, 340];

test("the hung node was ZooKeeper's leader: the others elect a new one, clients still fail: still a gray failure", async () => {
  const inv = await silentLeaderBundle('zk-reelected', {
    failAt: failing,
    zk: [
      { node: 2, at: 42, msg: 'LOOKING' },
      { node: 3, at: 42, msg: 'LOOKING' },
      { node: 2, at: 43, msg: 'LEADING' },
      { node: 3, at: 43, msg: 'FOLLOWING' },
      { node: 2, at: 44, msg: 'Have quorum of supporters, sids: [[2, 3]]; starting up and setting last processed zxid: 0x200000000' },
    ],
  });
  const g = gray(inv);
  assert.equal(g.length, 1, JSON.stringify(inv.verdicts.map((v) => v.title)));
  assert.equal(g[0]!.facts?.leaderNode, 'node1');
  assert.equal(g[0]!.facts?.quorumKept, false);
  assert.equal(g[0]!.facts?.zkElectedLeader, 'node2');
  assert.equal(g[0]!.facts?.zkPreviousLeader, 'node1');
  assert.equal(utc.format(Number(g[0]!.facts?.zkServingAt), 0), '2022-06-25 05:00:44');
  assert.match(g[0]!.detail ?? '', /ZooKeeper elected a new leader without node1: node2's ZooKeeper LEADING at .*, replacing node1's/);
  assert.ok(inv.verdicts.some((v) => v.facts?.verdict === 'zk-leader-change' && v.facts.previousLeader === 'node1' && v.facts.leader === 'node2'));
});

test('a ZooKeeper outage is no gray failure of the meta leader: the others left without a quorum', async () => {
  const inv = await silentLeaderBundle('zk-lost', {
    failAt: failing,
    zk: [
      { node: 2, at: 42, msg: 'LOOKING' },
      { node: 3, at: 42, msg: 'LOOKING' },
    ],
  });
  assert.deepEqual(gray(inv), []);
});

test("a ZooKeeper outage is no gray failure of the meta leader: the failures end with ZooKeeper's election", async () => {
  const inv = await silentLeaderBundle('zk-failures-then-election', {
    failAt: failing,
    zk: [
      { node: 2, at: 42, msg: 'LOOKING' },
      { node: 3, at: 42, msg: 'LOOKING' },
      { node: 2, at: 400, msg: 'LEADING' },
      { node: 3, at: 400, msg: 'FOLLOWING' },
    ],
  });
  assert.deepEqual(gray(inv), []);
});

test("a ZooKeeper outage is no gray failure of the meta leader: the clients' own sessions expire, no ZooKeeper log says otherwise", async () => {
  const expired = failing.map((at) => ({ at: at + 1, line: 'E0625 HMS.000000  1 zk_client.cc:9] [SESSION]: Session expired' }));
  const inv = await silentLeaderBundle('zk-sessions-expire', { failAt: failing, zk: null, chunkExtra: expired });
  assert.ok(inv.findings.some((f) => f.kind === 'service-session-expired' && f.node === 'node2'));
  assert.deepEqual(gray(inv), []);
  // The same failures without the expiries are the leader's gray failure.
  const plain = await silentLeaderBundle('zk-sessions-fine', { failAt: failing, zk: null });
  assert.equal(gray(plain).length, 1, JSON.stringify(plain.verdicts.map((v) => v.title)));
});

test('the onset is the last sign of life before the silence the failures began in, not before a longer one later', async () => {
  // node1 hangs after 05:00:39, is rebooted at 05:02:00, logs a little, then falls quiet for an hour.
  const root = join(dir, 'onset');
  const t0 = 5 * 3600;
  const n1: string[] = [];
  for (let s = 0; s < 40; s++) n1.push(`I0625 ${hms(t0 + s)}.000000  7 meta.cc:1] served request ${s}`);
  for (let s = 120; s < 126; s++) n1.push(`I0625 ${hms(t0 + s)}.000000  8 meta.cc:1] zbs-metad starting, listening on 10.1.88.101:10100`);
  n1.push(`I0625 ${hms(t0 + 3700)}.000000  8 meta.cc:1] served request 0`);
  write(root, 'node1/zbs-metad.INFO', n1);
  const chunk: string[] = [];
  for (let s = 0; s < 3700; s += 5) chunk.push(`I0625 ${hms(t0 + s)}.000000  1 c.cc:1] chunk alive`);
  for (let k = 0; k < 5; k++) chunk.push(`W0625 ${hms(t0 + 60 + k * 10)}.500000  1 c.cc:1] [ETimedOut] x socket: 10.1.88.102:5${k}-->10.1.88.101:10100`);
  write(root, 'node2/zbs-chunkd.INFO', chunk.sort());
  write(root, '_c/members.txt', ['/zbs/meta/__mj_cluster/10.1.88.101:10100']);
  const inv = await investigate({ root, tz: 'UTC', year: 2022 });
  const longest = inv.findings.find((f) => f.kind === 'last-sign-of-life' && f.node === 'node1');
  assert.equal(utc.format(longest!.from, 0), '2022-06-25 05:02:05', 'the longest silence is the later one');
  const g = gray(inv);
  assert.equal(g.length, 1, JSON.stringify(inv.verdicts.map((v) => v.title)));
  assert.equal(utc.format(Number(g[0]!.facts?.onset), 0), '2022-06-25 05:00:39');
  assert.match(g[0]!.detail ?? '', /node1 went silent: every log of node1 stops after 2022-06-25 05:00:39/);
});

/** node1's meta hangs at 05:00:40 while node1's ZooKeeper keeps logging; chunks on node2/node3 time out against it. */
function hungServiceBundle(root: string, failures: number, spacingS: number): void {
  const zk = (node: number, s: number, msg: string): string =>
    `2022-06-25 ${hms(s)},000 [myid:${node}] - INFO  [QuorumPeer[myid=${node}]/10.1.88.10${node}:2181:X@1] - ${msg}`;
  const t0 = 5 * 3600;
  for (const node of [1, 2, 3]) {
    const lines: string[] = [];
    for (let s = 0; s < 3600; s += 10) lines.push(zk(node, t0 + s, 'tick'));
    write(root, `node${node}/zookeeper.log`, lines);
  }
  const meta: string[] = [];
  for (let s = 0; s < 40; s++) meta.push(`I0625 ${hms(t0 + s)}.000000  7 meta.cc:1] served request ${s}`);
  write(root, 'node1/zbs-metad.INFO', meta);
  for (const node of [2, 3]) {
    const chunk: string[] = [];
    for (let k = 0; k < failures; k++) {
      chunk.push(
        `W0625 ${hms(t0 + 60 + k * spacingS)}.000000  3 zbs_client.cc:641] [ETimedOut]: ProtoAsyncClient meet timeout: expect timeout ms: 10000 socket: 10.1.88.10${node}:5682${k % 10}-->10.1.88.101:10100`,
      );
    }
    write(root, `node${node}/zbs-chunkd.INFO`, chunk);
  }
  write(root, '_c/members.txt', [
    '/zbs/meta/__mj_cluster/10.1.88.101:10100',
    '/zbs/meta/__mj_cluster/10.1.88.102:10100',
    '/zbs/meta/__mj_cluster/10.1.88.103:10100',
  ]);
}

test('a hung leader service on a node that keeps logging is still a gray failure', async () => {
  const root = join(dir, 'hung-service');
  hungServiceBundle(root, 30, 60);
  const inv = await investigate({ root, tz: 'UTC' });
  assert.ok(!inv.findings.some((f) => f.kind === 'silence' && f.node === 'node1'), 'node1 as a whole is not silent');
  const gray = inv.verdicts.filter((v) => v.facts?.verdict === 'gray-failure');
  assert.equal(gray.length, 1, JSON.stringify(inv.verdicts.map((v) => v.title)));
  assert.equal(gray[0]!.facts?.leaderNode, 'node1');
  assert.equal(gray[0]!.facts?.endpoint, '10.1.88.101:10100');
  assert.match(gray[0]!.detail ?? '', /node1 itself kept logging/);
});

test('a short burst of failures against a node that keeps logging is no verdict', async () => {
  const root = join(dir, 'blip');
  hungServiceBundle(root, 3, 5);
  const inv = await investigate({ root, tz: 'UTC' });
  assert.ok(
    inv.findings.some((f) => f.kind === 'failed-calls' && f.facts?.remoteNode === 'node1'),
    'the failures are found',
  );
  assert.equal(inv.verdicts.filter((v) => v.facts?.verdict === 'gray-failure').length, 0);
});

test('merge: many sources, interleaved and tied timestamps, come out sorted and stable', async () => {
  const sources: Entry[][] = [];
  let x = 12345;
  const rnd = (): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
  for (let s = 0; s < 17; s++) {
    const arr: Entry[] = [];
    let ts = Math.floor(rnd() * 100);
    for (let i = 0; i < 500; i++) {
      ts += Math.floor(rnd() * 3); // ties within and across sources
      arr.push({ ts, node: `n${s}`, service: 's', file: 'f', line: i + 1, level: 'I', fmt: 'glog', text: '', msg: '', src: s, seq: i });
    }
    sources.push(arr);
  }
  async function* src(a: Entry[]): AsyncGenerator<Entry[]> {
    for (let i = 0; i < a.length; i += 37) yield a.slice(i, i + 37);
  }
  const out: Entry[] = [];
  for await (const b of mergeTimeline(sources.map(src), 100)) {
    assert.ok(b.length <= 100);
    out.push(...b);
  }
  assert.equal(out.length, 17 * 500);
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1]!;
    const b = out[i]!;
    assert.ok(a.ts < b.ts || (a.ts === b.ts && (a.src < b.src || (a.src === b.src && a.seq < b.seq))), `order at ${i}`);
  }
});

test('report formats: text leads with the verdict, JSON round-trips (NaN as null), Markdown lists files', async () => {
  const inv = await investigate({ root: join(import.meta.dirname, '..', '..', 'fixtures', 'seed-bundle') });
  const text = render(inv, 'text');
  assert.match(text.split('\n')[4]!, /^VERDICT: Gray failure/);
  const json = JSON.parse(render(inv, 'json')) as { verdicts: unknown[]; files: { file: string; first: number | null }[] };
  assert.equal(json.verdicts.length, 1);
  assert.equal(json.files.find((f) => f.file === '_cluster/znode-meta-cluster.txt')?.first, null);
  const md = render(inv, 'md');
  assert.match(md, /^## Verdict$/m);
  assert.match(md, /\| node1\/zbs-metad\.INFO \| node1 \| zbs-metad \| glog \| 1 \| 0 \| 2022 \(sibling log with full dates/);
});

test("a follower dropped for transaction timeout in 3.8's order (the handler's exception before GOODBYE) is dropped for transaction timeout", async () => {
  const root = join(dir, 'drop38');
  write(root, 'node3/zookeeper.log', [
    '2026-12-01 23:48:54,782 [myid:3] - WARN  [QuorumPeer[myid=3](plain=198.19.2.103:2181)(secure=disabled):LearnerHandler@1078] - Closing connection to peer due to transaction timeout.',
    '2026-12-01 23:48:54,787 [myid:3] - ERROR [LearnerHandler-/198.19.2.101:42486:LearnerHandler@719] - Unexpected exception in LearnerHandler: ',
    'java.net.SocketException: Socket closed',
    '\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:183)',
    '2026-12-01 23:48:54,790 [myid:3] - WARN  [LearnerHandler-/198.19.2.101:42486:LearnerHandler@735] - ******* GOODBYE /198.19.2.101:42486 ********',
  ]);
  const inv = await investigate({ root, tz: 'UTC' });
  const drop = inv.findings.find((f) => f.kind === 'quorum-member-dropped');
  assert.ok(drop, JSON.stringify(inv.findings.map((f) => f.kind)));
  assert.match(String(drop.facts?.reason), /^transaction timeout/);
});
