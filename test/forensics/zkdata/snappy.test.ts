/**
 * Snappy-compressed snapshots as ZooKeeper 3.8 writes them (zookeeper.snapshot.compression.method
 * =snappy): dumped node by node as SnapshotFormatter prints them, usable for trees at a zxid, and
 * corrupt copies give typed errors naming the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Ensemble } from '../../../src/lab/ensemble.ts';
import { openDataDir } from '../../../src/forensics/zkdata/datadir.ts';
import { dumpSnapshot } from '../../../src/forensics/zkdata/dump.ts';
import { ZkDataError } from '../../../src/forensics/zkdata/errors.ts';
import { treeAt } from '../../../src/forensics/zkdata/replay.ts';
import { TextSink } from '../../../src/forensics/zkdata/sink.ts';
import { readSnapshot } from '../../../src/forensics/zkdata/snapshot.ts';
import { decompressSnappyBlock } from '../../../src/forensics/zkdata/snappy.ts';
import { parseFormatterText, snapshotFormatter, workload } from './helpers.ts';

process.env.TZ = 'UTC';

function stringSink(): { sink: TextSink; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { sink: new TextSink(w), text: () => text };
}

describe('snappy-compressed snapshots', () => {
  let ens: Ensemble;
  let tmp: string;
  let lastZxid = 0;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'zkdata-snappy-'));
    ens = await Ensemble.start({
      size: 1,
      tickTime: 300,
      snapCount: 40,
      preAllocSizeKb: 16,
      extendedTypesEnabled: true,
      systemProperties: { 'zookeeper.snapshot.compression.method': 'snappy' },
    });
    await workload(ens.address(1), 's', 60);
    lastZxid = (await ens.srvr(1))!.zxid;
    await ens.stop(1);
  });
  after(async () => {
    await ens?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('dumps every .snappy snapshot exactly as SnapshotFormatter prints it, checksum verified', async () => {
    const snaps = openDataDir(ens.server(1).dataDir).snapshots;
    assert.ok(snaps.length >= 2 && snaps.every((s) => s.path.endsWith('.snappy')), `snappy snapshots: ${snaps.map((s) => s.path).join(', ')}`);
    for (const snap of snaps) {
      const java = await snapshotFormatter(snap.path);
      const { sink, text } = stringSink();
      const summary = await dumpSnapshot(snap.path, sink);
      assert.equal(summary.checksum.ok, true, snap.path);
      assert.deepEqual(parseFormatterText(text()).nodes, java.nodes, `${snap.path}: every node's path and Stat`);
    }
  });

  it('rebuilds the tree at the last zxid from a snappy snapshot and the logs', async () => {
    const r = await treeAt(openDataDir(ens.server(1).dataDir), lastZxid);
    assert.ok(r.snapshot?.path.endsWith('.snappy'), `started from a snappy snapshot (${r.snapshot?.path})`);
    assert.equal(r.reached, lastZxid);
    assert.ok(
      [...r.tree.paths()].some((p) => p.startsWith('/s/')),
      'the workload is in the tree',
    );
  });

  it('gives typed errors naming the file for truncated or corrupt snappy files', async () => {
    const snap = openDataDir(ens.server(1).dataDir).snapshots.at(-1)!;
    const bytes = readFileSync(snap.path);
    // The copy keeps the original's name: the dump's "Last zxid" line reads the zxid in the name
    // when it is above every node's (a snapshot taken right after a createSession), so another
    // name would change the text by itself (seen in CI).
    const bad = join(tmp, basename(snap.path));
    for (let cut = 0; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 97))) {
      writeFileSync(bad, bytes.subarray(0, cut));
      await assert.rejects(readSnapshot(bad), (e) => e instanceof ZkDataError && e.file === bad, `cut at ${cut}`);
    }
    const original = stringSink();
    await dumpSnapshot(snap.path, original.sink);
    for (let at = 0; at < bytes.length; at += 7) {
      const flipped = Buffer.from(bytes);
      flipped[at] ^= 0x5a;
      writeFileSync(bad, flipped);
      // A flip is a typed error, or data that fails the Adler32 seal, or it did not change what
      // the file decompresses to (the stream header's version ints; a back-reference moved to
      // identical bytes).
      const outcome = await dumpSnapshot(bad, stringSink().sink).then(
        (r) => (r.checksum.ok ? 'read' : 'checksum'),
        (e: unknown) => {
          assert.ok(e instanceof ZkDataError, `flip at ${at}: ${(e as Error).stack}`);
          return 'error';
        },
      );
      if (outcome === 'read') {
        const same = stringSink();
        await dumpSnapshot(bad, same.sink);
        assert.equal(same.text().replaceAll(bad, snap.path), original.text(), `flip at ${at} read clean but changed the content`);
      }
    }
  });

  it('decodes raw Snappy literals and overlapping copies', () => {
    // "abcabcabca": a 3-byte literal then a copy of 7 bytes at offset 3 (overlapping itself).
    const block = Buffer.from([10, 2 << 2, 0x61, 0x62, 0x63, ((7 - 4) << 2) | 1, 3]);
    assert.equal(decompressSnappyBlock(block, 'mem', 0).toString(), 'abcabcabca');
    assert.throws(() => decompressSnappyBlock(Buffer.from([10, 2 << 2, 0x61, 0x62, 0x63, ((7 - 4) << 2) | 1, 9]), 'mem', 0), ZkDataError);
    assert.throws(() => decompressSnappyBlock(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f]), 'mem', 0), ZkDataError);
  });
});
