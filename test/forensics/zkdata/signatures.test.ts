/**
 * Known-signature detection from a server's log: the message sequence ZooKeeper 3.5's Learner
 * and Follower write (Learner.syncWithLeader, FileTxnSnapLog.save, Follower.followLeader) when a
 * SNAP sync is cut short and a DIFF follows (ZOOKEEPER-3642), in the lab's log4j layout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { detect3642, detectFromLog, scanServerLog } from '../../../src/forensics/zkdata/signatures.ts';

const dir = mkdtempSync(join(tmpdir(), 'zkdata-sig-'));
const line = (t: string, level: string, where: string, msg: string): string => `2022-06-25 08:08:1${t},101 [myid:1] - ${level} [${where}] - ${msg}`;

describe('divergence signatures in server logs', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('names ZOOKEEPER-3642 when a snapshot sync is cut short and a diff follows, quoting the lines', () => {
    const log = join(dir, 'zookeeper-3642.log');
    writeFileSync(
      log,
      [
        line('1', 'INFO ', 'QuorumPeer[myid=1](plain=/0.0.0.0:2181)(secure=disabled):Learner@395', 'Getting a snapshot from leader 0xa00e58f5a'),
        line('2', 'WARN ', 'QuorumPeer[myid=1](plain=/0.0.0.0:2181)(secure=disabled):Follower@96', 'Exception when following the leader'),
        line('3', 'INFO ', 'QuorumPeer[myid=1](plain=/0.0.0.0:2181)(secure=disabled):QuorumPeer@1270', 'LOOKING'),
        line('5', 'INFO ', 'QuorumPeer[myid=1](plain=/0.0.0.0:2181)(secure=disabled):Learner@391', 'Getting a diff from the leader 0xa00e58f5a'),
      ].join('\n'),
    );
    const lines = scanServerLog(log);
    assert.equal(lines.length, 3);
    const sig = detect3642('node1', [{ after: 0xa00e58f00, next: 0xa00e58f5b, coveredBy: null }], { file: log, lines });
    assert.ok(sig);
    assert.equal(sig.id, 'ZOOKEEPER-3642');
    assert.equal(sig.source, 'data+log');
    assert.ok(sig.evidence.some((e) => e.includes(`${log}:1:`) && e.includes('Getting a snapshot from leader 0xa00e58f5a')));
    assert.ok(sig.evidence.some((e) => e.includes('Getting a diff from the leader')));
  });

  it('does not name it when the snapshot was persisted, nor without any trace', () => {
    const log = join(dir, 'zookeeper-ok.log');
    writeFileSync(
      log,
      [
        line('1', 'INFO ', 'QuorumPeer:Learner@395', 'Getting a snapshot from leader 0x200000010'),
        line('2', 'INFO ', 'QuorumPeer:FileTxnSnapLog@384', 'Snapshotting: 0x200000010 to /data/version-2/snapshot.200000010'),
        line('3', 'WARN ', 'QuorumPeer:Follower@96', 'Exception when following the leader'),
        line('4', 'INFO ', 'QuorumPeer:Learner@391', 'Getting a diff from the leader 0x200000010'),
      ].join('\n'),
    );
    assert.equal(detect3642('node1', [], { file: log, lines: scanServerLog(log) }), null);
    assert.equal(detect3642('node1', [], null), null);
    // A covered hole (a SNAP sync that was persisted) is no trace either.
    assert.equal(detect3642('node1', [{ after: 5, next: 20, coveredBy: { path: 'snapshot.13', zxid: 0x13, size: 1 } }], null), null);
  });

  it('quotes digest mismatches and refused sessions (ZOOKEEPER-3911)', () => {
    const log = join(dir, 'zookeeper-digest.log');
    writeFileSync(
      log,
      [
        line(
          '1',
          'ERROR',
          'SyncThread:DataTree@1820',
          'First digest mismatch on txn: 2,12,8589934600,1656133200000,1, expected digest is 2,11022,  actual digest is 2,1103,',
        ),
        line(
          '2',
          'INFO ',
          'NIOWorkerThread-1:ZooKeeperServer@1234',
          'Refusing session request for client /10.1.88.102:56828 as it has seen zxid 0xa00e58f60 our last zxid is 0xa00e58f5a client must try another server',
        ),
      ].join('\n'),
    );
    const sigs = detectFromLog('node1', { file: log, lines: scanServerLog(log) });
    assert.deepEqual(
      sigs.map((s) => s.id),
      ['digest-mismatch', 'ZOOKEEPER-3911'],
    );
  });
});
