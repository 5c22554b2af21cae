// Hostile and odd input: garbage, binary, truncated gzip, mixed formats, rotations, year
// inference, --node globs, periodic-job gaps. Nothing may crash and no text line may be lost.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { investigate } from '../../../src/forensics/logs/investigate.ts';
import { parseGlog, parseLog4j } from '../../../src/forensics/logs/formats.ts';
import { TimeZone } from '../../../src/forensics/logs/time.ts';
import type { Entry } from '../../../src/forensics/logs/types.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'zkw-logs-robust-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function zkLine(ts: string, level: string, msg: string, myid = '1'): string {
  return `${ts} [myid:${myid}] - ${level.padEnd(5)} [main:QuorumPeer@1] - ${msg}`;
}

async function collect(
  root: string,
  extra: Parameters<typeof investigate>[0] = {},
): Promise<{ entries: Entry[]; inv: Awaited<ReturnType<typeof investigate>> }> {
  const entries: Entry[] = [];
  const inv = await investigate({
    root,
    tz: 'UTC',
    ...extra,
    onBatch: (b) => {
      entries.push(...b);
    },
  });
  return { entries, inv };
}

test('garbage, binary, truncated gzip and mixed files never crash; every text line is kept', async () => {
  const root = join(dir, 'hostile');
  mkdirSync(join(root, 'n1'), { recursive: true });
  mkdirSync(join(root, 'n2'), { recursive: true });
  const good = [zkLine('2024-03-01 10:00:00,000', 'INFO', 'LOOKING'), zkLine('2024-03-01 10:00:01,000', 'INFO', 'LEADING')];
  writeFileSync(join(root, 'n1', 'zookeeper.log'), good.join('\n') + '\n');
  // Random bytes (binary): listed, not read as lines.
  const rnd = Buffer.alloc(50_000);
  for (let i = 0; i < rnd.length; i++) rnd[i] = (i * 7919 + 13) & 0xff;
  writeFileSync(join(root, 'n1', 'core.bin'), rnd);
  // Text garbage with no timestamps, invalid UTF-8 and a huge line.
  writeFileSync(
    join(root, 'n1', 'notes.txt'),
    Buffer.concat([Buffer.from('hello\nworld \xff\xfe broken utf8\n', 'latin1'), Buffer.from('x'.repeat(3_000_000) + '\nlast line without newline')]),
  );
  // Truncated gzip: first half of a valid stream.
  const gz = gzipSync(
    Buffer.from(Array.from({ length: 2000 }, (_, i) => `I0301 10:00:${String(i % 60).padStart(2, '0')}.000000  1 a.cc:1] line ${i}`).join('\n')),
  );
  writeFileSync(join(root, 'n2', 'svc.log.1.gz'), gz.subarray(0, gz.length >> 1));
  // Mixed: glog, log4j, junk and a header-looking line with an impossible date, in one file.
  writeFileSync(
    join(root, 'n2', 'mixed.log'),
    [
      'junk before any header',
      'I0301 10:00:05.000000  7 m.cc:3] glog line',
      zkLine('2024-03-01 10:00:06,000', 'WARN', 'log4j line', '2'),
      'E1399 99:99:99.000000  7 m.cc:3] not a real date',
      '\u0000\u0001 control chars',
      '2024-13-45 10:00:00,000 bad date',
      '',
    ].join('\n'),
  );
  writeFileSync(join(root, 'n2', 'empty.log'), '');
  const { entries, inv } = await collect(root);
  const byFile = (f: string): Entry[] => entries.filter((e) => e.file === f);
  // notes.txt: 4 lines, all untimed text, all kept (the huge one too).
  const notes = byFile('n1/notes.txt');
  assert.equal(
    notes.reduce((n, e) => n + 1 + (e.more?.length ?? 0), 0),
    4,
  );
  assert.ok(notes.every((e) => Number.isNaN(e.ts) && e.fmt === 'text'));
  assert.ok(notes.some((e) => e.text.length === 3_000_000));
  // Binary: accounted as skipped, with the reason, not read.
  assert.equal(
    inv.files.find((f) => f.file === 'n1/core.bin'),
    undefined,
  );
  const bin = inv.skipped.find((f) => f.rel === 'n1/core.bin');
  assert.equal(bin?.reason, 'binary');
  // Truncated gzip: what inflated is kept, and the error names the file.
  const trunc = inv.files.find((f) => f.file === 'n2/svc.log.1.gz')!;
  assert.ok(trunc.gzip);
  assert.ok(trunc.lines > 0);
  assert.match(trunc.note ?? '', /n2\/svc\.log\.1\.gz: read stopped after \d+ bytes/);
  // Mixed: both formats parsed, junk kept; the leading junk line takes the first header's time.
  const mixed = byFile('n2/mixed.log');
  assert.equal(
    mixed.reduce((n, e) => n + 1 + (e.more?.length ?? 0), 0),
    6,
  );
  assert.equal(mixed[0]!.text, 'junk before any header');
  assert.equal(mixed[0]!.inherited, true);
  assert.deepEqual(
    mixed.filter((e) => e.fmt !== 'text').map((e) => e.fmt),
    ['glog', 'log4j'],
  );
  const glogEntry = mixed.find((e) => e.fmt === 'glog')!;
  assert.deepEqual(glogEntry.more, undefined);
  const log4jEntry = mixed.find((e) => e.fmt === 'log4j')!;
  assert.deepEqual(log4jEntry.more, ['E1399 99:99:99.000000  7 m.cc:3] not a real date', '\u0000\u0001 control chars', '2024-13-45 10:00:00,000 bad date']);
  // The readable files add up.
  const total = inv.files.filter((f) => ['glog', 'log4j', 'text'].includes(f.kind)).reduce((n, f) => n + f.lines, 0);
  assert.equal(
    entries.filter((e) => e.fmt !== 'mtime').reduce((n, e) => n + 1 + (e.more?.length ?? 0), 0),
    total,
  );
});

test('rotated and gzipped files merge in time order; glog year from the file name, across New Year', async () => {
  const root = join(dir, 'rotated');
  mkdirSync(join(root, 'nodeA'), { recursive: true });
  writeFileSync(
    join(root, 'nodeA', 'svc.log.20211231-235900.42.gz'),
    gzipSync(Buffer.from(['I1231 23:59:58.000000  1 a.cc:1] old year', 'I0101 00:00:01.000000  1 a.cc:1] new year'].join('\n') + '\n')),
  );
  writeFileSync(join(root, 'nodeA', 'svc.log.20220101-000002.42'), 'I0101 00:00:02.500000  1 a.cc:1] next file\n');
  const { entries, inv } = await collect(root);
  const utc = TimeZone.parse('UTC');
  assert.deepEqual(
    entries.map((e) => utc.format(e.ts, 3)),
    ['2021-12-31 23:59:58.000', '2022-01-01 00:00:01.000', '2022-01-01 00:00:02.500'],
  );
  assert.match(inv.files[0]!.yearSource ?? '', /file name/);
});

test('--node NAME=GLOB builds nodes from flat file lists; --year and --tz apply', async () => {
  const flat = join(dir, 'flat');
  mkdirSync(flat, { recursive: true });
  writeFileSync(join(flat, 'a-meta.INFO'), 'I0625 05:43:23.800374  5366 nfs_server.cc:1115] a\n');
  writeFileSync(join(flat, 'b-meta.INFO'), 'W0625 05:43:20.000000  5366 nfs_server.cc:1115] b\n');
  const entries: Entry[] = [];
  await investigate({
    nodeSpecs: [
      { name: 'alpha', glob: join(flat, 'a-*.INFO') },
      { name: 'beta', glob: join(flat, 'b-*') },
    ],
    year: 2022,
    tz: 'Asia/Shanghai',
    onBatch: (b) => {
      entries.push(...b);
    },
  });
  assert.deepEqual(
    entries.map((e) => e.node),
    ['beta', 'alpha'],
  );
  assert.equal(new Date(entries[1]!.ts).toISOString(), '2022-06-24T21:43:23.800Z');
  await assert.rejects(investigate({ nodeSpecs: [{ name: 'x', glob: join(flat, 'nothing-*') }] }), /no file matches/);
});

test('a periodic job learned from its own lines: the missing runs are reported', async () => {
  const root = join(dir, 'periodic');
  mkdirSync(join(root, 'n1'), { recursive: true });
  mkdirSync(join(root, 'n2'), { recursive: true });
  const lines: string[] = [];
  // Every 5 minutes from 05:00 to 05:40, then nothing until 08:10, then back.
  const runs = [0, 5, 10, 15, 20, 25, 30, 35, 40, 190, 195, 200];
  for (const m of runs) {
    const hh = String(5 + Math.floor(m / 60)).padStart(2, '0');
    const mm = String(m % 60).padStart(2, '0');
    lines.push(`I0625 ${hh}:${mm}:01.000000  99 scavenger.cc:10] scavenger run ${m} done, freed ${m * 3} extents`);
  }
  writeFileSync(join(root, 'n1', 'zbs-scavenger.INFO'), lines.join('\n') + '\n');
  const other: string[] = [];
  for (let m = 0; m <= 200; m += 1)
    other.push(`I0625 ${String(5 + Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}:30.000000  1 x.cc:1] tick`);
  writeFileSync(join(root, 'n2', 'other.INFO'), other.join('\n') + '\n');
  const { inv } = await collect(root, { year: 2022 });
  const gaps = inv.findings.filter((f) => f.kind === 'periodic-gap' && f.node === 'n1');
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0]!.facts?.cadenceMs, 300_000);
  assert.equal(gaps[0]!.facts?.missed, 29);
  const utc = TimeZone.parse('UTC');
  assert.equal(utc.format(gaps[0]!.from, 0), '2022-06-25 05:40:01');
  assert.equal(utc.format(gaps[0]!.to, 0), '2022-06-25 08:10:01');
});

test('header parsers: glog and ZooKeeper log4j 3.4 / 3.8 layouts', () => {
  const g = parseGlog('W0625 05:43:50.012274  3986 zbs_client.cc:641] [Retry IO ON ERROR]: x');
  assert.deepEqual(
    [g?.level, g?.mo, g?.d, g?.h, g?.ms, g?.thread, g?.where, g?.msg],
    ['W', 6, 25, 5, 12.274, '3986', 'zbs_client.cc:641', '[Retry IO ON ERROR]: x'],
  );
  const l34 = parseLog4j(
    '2022-06-25 05:43:31,657 [myid:2] - WARN  [LearnerHandler-/10.1.88.101:55810:LearnerHandler@661] - ******* GOODBYE /10.1.88.101:55810 ********',
  );
  assert.deepEqual(
    [l34?.myid, l34?.level, l34?.thread, l34?.where, l34?.msg],
    ['2', 'W', 'LearnerHandler-/10.1.88.101:55810', 'LearnerHandler@661', '******* GOODBYE /10.1.88.101:55810 ********'],
  );
  const l38 = parseLog4j(
    '2026-11-26 11:29:31,605 [myid:1] - INFO  [QuorumPeer[myid=1](plain=127.83.48.101:2181)(secure=disabled):QuorumPeer@1537] - FOLLOWING',
  );
  assert.deepEqual([l38?.thread, l38?.where, l38?.msg], ['QuorumPeer[myid=1](plain=127.83.48.101:2181)(secure=disabled)', 'QuorumPeer@1537', 'FOLLOWING']);
  const noId = parseLog4j('2026-11-26 11:29:30,849 [myid:] - INFO  [main:QuorumPeerConfig@177] - Reading configuration');
  assert.equal(noId?.myid, '');
  assert.equal(parseGlog('Traceback:'), null);
  assert.equal(parseLog4j('java.lang.InterruptedException'), null);
});

test('a file modification time is used only when the bundle preserved it', async () => {
  const root = join(dir, 'mtimes');
  mkdirSync(join(root, 'n1'), { recursive: true });
  const f = join(root, 'n1', 'svc.INFO');
  writeFileSync(f, 'I0301 10:00:00.000000  1 a.cc:1] x\n');
  const preserved = Date.UTC(2024, 2, 1, 10, 0, 3) / 1000;
  utimesSync(f, preserved, preserved);
  const g = join(root, 'n1', 'other.INFO');
  writeFileSync(g, 'I0301 09:00:00.000000  1 a.cc:1] y\n'); // mtime = now: not preserved
  const { entries, inv } = await collect(root, { year: 2024 });
  const m = entries.filter((e) => e.fmt === 'mtime');
  assert.equal(m.length, 1);
  assert.equal(m[0]!.ts, preserved * 1000);
  assert.match(inv.files.find((x) => x.file === 'n1/other.INFO')!.mtimeSource ?? '', /not preserved/);
});

test('mutated seed bundles (truncations, bit flips, spliced bytes) never crash and keep every line', async () => {
  const seed = join(import.meta.dirname, '..', '..', 'fixtures', 'seed-bundle');
  let x = 42;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  for (let round = 0; round < 40; round++) {
    const root = join(dir, `mut${round}`);
    cpSync(seed, root, { recursive: true });
    for (const node of ['node1', 'node2', 'node3']) {
      for (const name of readdirSync(join(root, node))) {
        const p = join(root, node, name);
        let b = readFileSync(p);
        const op = rnd(4);
        if (op === 0) b = b.subarray(0, rnd(b.length + 1));
        else if (op === 1) for (let k = 0; k < 8; k++) b[rnd(b.length)] ^= 1 << rnd(8);
        else if (op === 2) b = Buffer.concat([b.subarray(0, rnd(b.length)), Buffer.from([0, 0xff, 0x1f, 0x8b, 0x0a, 0xc3]), b.subarray(rnd(b.length))]);
        else b = gzipSync(b).subarray(0, rnd(b.length));
        writeFileSync(p, b);
      }
    }
    const entries: Entry[] = [];
    const inv = await investigate({
      root,
      onBatch: (batch) => {
        entries.push(...batch);
      },
    });
    const kept = entries.filter((e) => e.fmt !== 'mtime').reduce((n, e) => n + 1 + (e.more?.length ?? 0), 0);
    const read = inv.files.filter((f) => ['glog', 'log4j', 'text'].includes(f.kind)).reduce((n, f) => n + f.lines, 0);
    assert.equal(kept, read, `round ${round}`);
  }
});
