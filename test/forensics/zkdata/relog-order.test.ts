/**
 * Re-logged runs in files whose names interleave, written here as a ZooKeeper 3.8.0 follower
 * re-synced again and again leaves them (test/forensics/zkdata/resync.test.ts, seen in CI):
 * a DIFF sync rolls the log into a file named after a zxid it logs again, so in ZooKeeper's
 * reading order (files by name) a file can go back below zxids already read and hold, after
 * the re-logged ones, zxids no file before it holds. Those are the member's only copies: on
 * restart FileTxnSnapLog.fastForwardFromEdits applies them like any other entry. The audit
 * must read them as part of the history (compared with the other members' copies), not as
 * re-logged entries with no first copy and a hole in the log, and its report must agree with
 * itself: no hole, no warning of lacking transactions, a ZOOKEEPER-4409 signature that says
 * nothing is missing.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditOffline, type MemberInput } from '../../../src/forensics/zkdata/audit.ts';
import { openDataDir } from '../../../src/forensics/zkdata/datadir.ts';
import { history, newReport } from '../../../src/forensics/zkdata/history.ts';
import { renderAudit } from '../../../src/forensics/report/audit.ts';
import { assertAuditAgrees, createEntry, writeSnapshotFile, writeTxnLogFile } from './helpers.ts';

const EPOCH = 1;
const z = (counter: number): number => EPOCH * 0x100000000 + counter;
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_x, k) => a + k);
const logName = (counter: number): string => `log.${z(counter).toString(16)}`;
const snapName = (counter: number): string => `snapshot.${z(counter).toString(16)}`;

let base = '';

/** The follower's server log: its SyncThread died (ZOOKEEPER-4409) and a sync broke off on a COMMIT after NEWLEADER (ZOOKEEPER-4394). */
const SERVER_LOG = [
  '2026-12-02 00:19:53,337 [myid:1] - ERROR [SyncThread:1:ZooKeeperCriticalThread@49] - Severe unrecoverable error, from thread : SyncThread:1',
  'java.lang.NullPointerException: Cannot invoke "java.net.Socket.isClosed()" because "this.learner.sock" is null',
  '2026-12-02 00:19:53,346 [myid:1] - INFO  [QuorumPeer[myid=1](plain=127.0.0.1:2181)(secure=disabled):FastLeaderElection@946] - New election. My id = 1, proposed zxid=0x100000005',
  '2026-12-02 00:19:53,400 [myid:1] - WARN  [QuorumPeer[myid=1](plain=127.0.0.1:2181)(secure=disabled):Follower@129] - Exception when following the leader',
  'java.lang.NullPointerException: Cannot read field "hdr" because "pif" is null',
  '2026-12-02 00:19:53,557 [myid:1] - WARN  [SyncThread:1:FileTxnLog@276] - Current zxid 4294967302 is <= 4294967308 for create',
].join('\n');

/**
 * Three members of epoch 1, zxids 1–30. The others log them once; node1's files, in name order:
 *   log.1:  1–12
 *   log.6:  6–9 again, then 20–24 (the first copies of those)
 *   log.a:  10–12 again, then 13–19, which no file before holds (its only copies)
 *   log.13: 19–24 again, then 25–30
 * and a snapshot at 15 (a periodic one, in the middle of 13–19) besides the one at 30 all have.
 * `alter` changes node1's only copy of a zxid.
 */
function writeMembers(label: string, opts: { alter?: number; snapAt15?: boolean } = {}): MemberInput[] {
  const entry = (c: number): ReturnType<typeof createEntry> => createEntry(EPOCH, c, c === opts.alter ? 'X' : `d${c}`);
  const members: MemberInput[] = [];
  for (const name of ['node1', 'node2', 'node3']) {
    const dir = join(base, label, name, 'data', 'version-2');
    mkdirSync(dir, { recursive: true });
    if (name === 'node1') {
      writeTxnLogFile(join(dir, logName(1)), range(1, 12).map(entry));
      writeTxnLogFile(join(dir, logName(6)), [...range(6, 9), ...range(20, 24)].map(entry));
      writeTxnLogFile(join(dir, logName(10)), [...range(10, 12), ...range(13, 19)].map(entry));
      writeTxnLogFile(join(dir, logName(19)), [...range(19, 24), ...range(25, 30)].map(entry));
      if (opts.snapAt15 !== false) writeSnapshotFile(join(dir, snapName(15)), EPOCH, range(1, 15));
      writeFileSync(join(base, label, name, 'zookeeper.log'), `${SERVER_LOG}\n`);
    } else {
      writeTxnLogFile(
        join(dir, logName(1)),
        range(1, 30).map((c) => createEntry(EPOCH, c)),
      );
      writeFileSync(join(base, label, name, 'zookeeper.log'), '');
    }
    writeSnapshotFile(join(dir, snapName(30)), EPOCH, range(1, 30));
    members.push({ dir: join(base, label, name, 'data'), name, serverLog: join(base, label, name, 'zookeeper.log') });
  }
  return members;
}

before(() => {
  base = mkdtempSync(join(tmpdir(), 'zkw-relog-order-'));
});
after(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('re-logged runs in interleaved log files', () => {
  it('reads every zxid once, in zxid order, with its first copy in file order; only the repeats are re-logged', async () => {
    const [m1] = writeMembers('history');
    const rep = newReport();
    const seen: { zxid: number; file: string }[] = [];
    for await (const e of history(openDataDir(m1!.dir), rep)) seen.push({ zxid: e.header.zxid, file: e.file });
    assert.deepEqual(
      seen.map((e) => e.zxid),
      range(1, 30).map(z),
    );
    // 13–19 come from log.a, where they follow re-logged zxids; 20–24 from log.6.
    for (const c of [13, 19]) assert.ok(seen[c - 1]!.file.endsWith(logName(10)), seen[c - 1]!.file);
    for (const c of [20, 24]) assert.ok(seen[c - 1]!.file.endsWith(logName(6)), seen[c - 1]!.file);
    assert.deepEqual(rep.gaps, []);
    assert.deepEqual(
      rep.relogs.map((r) => [r.from, r.to, r.count, r.identical, r.differing, r.unmatched]),
      [
        [z(6), z(9), 4, 4, 0, 0],
        [z(10), z(12), 3, 3, 0, 0],
        [z(19), z(24), 6, 6, 0, 0],
      ],
    );
    // From a snapshot on, as the replay reads it: the files before the last one named at or
    // before it are not opened (FileTxnLog.getLogFiles), the rest in zxid order.
    const from15 = newReport();
    const after15: number[] = [];
    for await (const e of history(openDataDir(m1!.dir), from15, { fromZxid: z(15) })) after15.push(e.header.zxid);
    assert.deepEqual(after15, range(16, 30).map(z));
    assert.deepEqual(from15.gaps, []);
  });

  it("compares those only copies with the others' and reports no hole: consistent, and the report agrees with itself", async () => {
    for (const snapAt15 of [true, false]) {
      const r = await auditOffline(writeMembers(`audit-${snapAt15}`, { snapAt15 }));
      const text = renderAudit(r);
      assert.equal(r.class, 'consistent', text);
      assert.equal(r.conflictCount, 0, text);
      assert.equal(r.txnsCompared, 30, text);
      const m = r.members.find((x) => x.name === 'node1')!;
      assert.deepEqual(m.holes, [], text);
      assert.deepEqual(m.gaps, [], text);
      assert.ok(!r.warnings.some((w) => w.includes('lacks')), text);
      assert.equal(m.relogs.length, 3, text);
      const s = r.signatures.find((x) => x.id === 'ZOOKEEPER-4409' && x.member === 'node1');
      assert.ok(s, text);
      assert.equal(s.source, 'log', text);
      assert.ok(!r.signatures.some((x) => x.id === 'ZOOKEEPER-3642'), text);
      assert.ok(
        r.signatures.some((x) => x.id === 'ZOOKEEPER-4394' && x.member === 'node1' && x.source === 'data+log'),
        text,
      );
      assertAuditAgrees(r, 'node1', text);
      assert.ok(text.includes('(3 entries, all identical to the first copy)'), text);
    }
  });

  it("calls an only copy that differs from the others' a divergence at its zxid", async () => {
    const r = await auditOffline(writeMembers('altered', { alter: 17 }));
    const text = renderAudit(r);
    assert.equal(r.class, 'diverged', text);
    assert.deepEqual(
      r.conflicts.map((c) => [c.zxid, c.kind, c.odd]),
      [[z(17), 'changed', ['node1']]],
      text,
    );
    assert.deepEqual(r.firstDivergence?.zxid, z(17), text);
    assert.equal(r.selfConflicts.length, 0, text);
    assertAuditAgrees(r, 'node1', text);
  });

  it('still reports a real hole: zxids no file holds, a later snapshot of its own covering them', async () => {
    const members = writeMembers('hole');
    // node1's only copies of 13–18 gone: log.a keeps its re-logged 10–12 (19 is in log.13).
    const dir = join(members[0]!.dir, 'version-2');
    writeTxnLogFile(
      join(dir, logName(10)),
      range(10, 12).map((c) => createEntry(EPOCH, c)),
    );
    const r = await auditOffline(members);
    const text = renderAudit(r);
    const m = r.members.find((x) => x.name === 'node1')!;
    // 13–15 are in its snapshot at 15; 16–18 are in neither its logs nor that snapshot, and
    // the one at 30 holds them.
    assert.deepEqual(
      m.holes.map((h) => [h.from, h.to, h.verifiedAt !== null]),
      [[z(16), z(18), true]],
      text,
    );
    assert.deepEqual(
      m.gaps.map((g) => [g.after, g.next, g.coveredBy, g.coveredLater?.zxid]),
      [[z(12), z(19), null, z(30)]],
      text,
    );
    assert.notEqual(r.class, 'diverged', text);
    assert.ok(
      r.warnings.some((w) => w.startsWith('node1: its log lacks 3 transaction(s) 0x100000010–0x100000012')),
      text,
    );
    const s = r.signatures.find((x) => x.id === 'ZOOKEEPER-4409' && x.member === 'node1');
    assert.equal(s?.source, 'data+log', text);
    assertAuditAgrees(r, 'node1', text);
  });
});
