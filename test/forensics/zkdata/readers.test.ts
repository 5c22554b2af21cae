/**
 * The snapshot and transaction-log readers and trees at a zxid, on files written by a real
 * ZooKeeper 3.8 ensemble: every node's path and Stat as ZooKeeper's own SnapshotFormatter
 * prints it, trees rebuilt at a zxid against what the live servers served at that zxid, and
 * corrupted copies that must only ever give typed errors.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ensemble } from '../../../src/lab/ensemble.ts';
import { openDataDir } from '../../../src/forensics/zkdata/datadir.ts';
import { dumpSnapshot, dumpTxnLog } from '../../../src/forensics/zkdata/dump.ts';
import { ChecksumError, MalformedFileError, ZkDataError } from '../../../src/forensics/zkdata/errors.ts';
import { treeAt } from '../../../src/forensics/zkdata/replay.ts';
import { clientStat } from '../../../src/forensics/zkdata/tree.ts';
import { TextSink } from '../../../src/forensics/zkdata/sink.ts';
import { readSnapshot } from '../../../src/forensics/zkdata/snapshot.ts';
import { readTxnLog } from '../../../src/forensics/zkdata/txnlog.ts';
import { runCli } from '../../cli/run-cli.ts';
import { connect, type LiveNode, liveTree, parseFormatterText, snapshotFormatter, workload } from './helpers.ts';

process.env.TZ = 'UTC';

function stringSink(size?: number): { sink: TextSink; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { sink: new TextSink(w, size), text: () => text };
}

/** Read buffers (the smallest window the readers use, and the default) crossed with sink buffers. */
const BUFFERS: { chunk?: number; sink?: number }[] = [{}, { chunk: 4096, sink: 256 }, { chunk: 4096 }, { sink: 64 }];

async function quiesce(ens: Ensemble): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const z = await Promise.all(ens.servers.map(async (s) => (await ens.srvr(s.id))?.zxid));
    if (z.every((x) => x !== undefined && x === z[0])) return z[0]!;
    await sleep(100);
  }
  assert.fail('servers did not reach the same zxid');
}

function assertSameTree(rebuilt: Map<string, LiveNode>, live: Map<string, LiveNode>, what: string): void {
  const missing = [...live.keys()].filter((p) => !rebuilt.has(p));
  const extra = [...rebuilt.keys()].filter((p) => !live.has(p));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${what}: same paths`);
  for (const [p, l] of live) {
    // /zookeeper/config is written by each server for itself, outside the transaction log.
    if (p === '/zookeeper/config') assert.deepEqual({ ...rebuilt.get(p), mtime: 0 }, { ...l, mtime: 0 }, `${what}: Stat of ${p}`);
    else assert.deepEqual(rebuilt.get(p), l, `${what}: Stat of ${p}`);
  }
}

describe('zkdata readers on files written by ZooKeeper 3.8', () => {
  let ens: Ensemble;
  const lives: { zxid: number; tree: Map<string, LiveNode> }[] = [];
  let tmp: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'zkdata-readers-'));
    ens = await Ensemble.start({ size: 3, tickTime: 300, snapCount: 60, extendedTypesEnabled: true, fourLetterWords: ['*'], preAllocSizeKb: 16 });
    await workload(ens.address(1), 'w1', 90);
    lives.push({ zxid: await quiesce(ens), tree: await liveTree(ens.address(2)) });
    const keeper = await connect(ens.address(3));
    await keeper.create('/w1/held', 'eph', { mode: 'ephemeral' });
    await workload(ens.address(2), 'w2', 70);
    lives.push({ zxid: await quiesce(ens), tree: await liveTree(ens.address(1)) });
    await keeper.close();
    await quiesce(ens);
    // Stop the servers so no snapshot is being written while the files are read.
    for (const s of ens.servers) await ens.stop(s.id);
  });
  after(async () => {
    await ens?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('dumps every snapshot node by node exactly as SnapshotFormatter prints it', async () => {
    let checked = 0;
    for (const s of ens.servers) {
      const dd = openDataDir(s.dataDir);
      assert.ok(dd.snapshots.length >= 3, `server ${s.id} has several snapshots (${dd.snapshots.length})`);
      for (const snap of dd.snapshots) {
        const java = await snapshotFormatter(snap.path);
        const { sink, text } = stringSink();
        const summary = await dumpSnapshot(snap.path, sink);
        const mine = parseFormatterText(text());
        assert.equal(summary.checksum.ok, true);
        assert.ok(java.nodes.size > 3);
        assert.deepEqual(mine.nodes, java.nodes, `${snap.path}: every node's path and Stat`);
        assert.deepEqual([...mine.sessions].sort(), [...java.sessions].sort(), `${snap.path}: sessions`);
        assert.match(java.out, new RegExp(`Last zxid: ${text().match(/Last zxid: (0x[0-9a-f]+)/)![1]}`));
        checked++;
      }
    }
    assert.ok(checked >= 9);
  });

  it('reads gzip snapshots (snapshot.<zxid>.gz) the same, and names a misnamed .snappy file', async () => {
    const snap = openDataDir(ens.server(1).dataDir).snapshots.at(-1)!;
    const gz = join(tmp, `${snap.path.split('/').pop()}.gz`);
    writeFileSync(gz, gzipSync(readFileSync(snap.path)));
    const plain = stringSink();
    const zipped = stringSink();
    await dumpSnapshot(snap.path, plain.sink);
    const s = await dumpSnapshot(gz, zipped.sink);
    assert.equal(s.checksum.ok, true);
    assert.equal(zipped.text(), plain.text());
    const snappy = join(tmp, `${snap.path.split('/').pop()}.snappy`);
    writeFileSync(snappy, readFileSync(snap.path));
    // Real snappy snapshots are read in snappy.test.ts; an uncompressed one misnamed is refused.
    await assert.rejects(readSnapshot(snappy), (e) => e instanceof MalformedFileError && e.offset === 0 && /snappy-java magic/.test(e.message));
  });

  it('reads every transaction of every log, with the end ZooKeeper sees', async () => {
    const types = new Set<number>();
    for (const s of ens.servers) {
      const dd = openDataDir(s.dataDir);
      let prev = 0;
      for (const log of dd.logs) {
        const { reader, entries } = await readTxnLog(log.path);
        assert.equal(entries[0]?.header.zxid ?? log.zxid, log.zxid, 'a log is named after its first zxid');
        for (const e of entries) {
          assert.ok(e.header.zxid > prev, 'zxids grow');
          prev = e.header.zxid;
          types.add(e.header.type);
        }
        assert.ok(reader.end && reader.end.kind !== 'torn', `${log.path} ends cleanly (${JSON.stringify(reader.end)})`);
        const { sink, text } = stringSink();
        const sum = await dumpTxnLog(log.path, sink);
        assert.equal(sum.count, entries.length);
        assert.equal(
          text()
            .split('\n')
            .filter((l) => / zxid 0x/.test(l)).length,
          entries.length,
        );
      }
    }
    // createSession, closeSession, create2 (zkwarden's client creates with create2), delete, setData, setACL, multi, createContainer, createTTL
    for (const t of [-10, -11, 15, 2, 5, 7, 14, 19, 21]) assert.ok(types.has(t), `saw transaction type ${t}`);
  });

  it('rebuilds the tree at a zxid equal to what the live servers served at that zxid', async () => {
    for (const s of ens.servers) {
      const dd = openDataDir(s.dataDir);
      for (const live of lives) {
        const res = await treeAt(dd, live.zxid);
        assert.equal(res.reached, live.zxid, `server ${s.id} reaches 0x${live.zxid.toString(16)}`);
        const rebuilt = new Map<string, LiveNode>();
        for (const [p, n] of res.tree.nodes) {
          rebuilt.set(p === '' ? '/' : p, clientStat(n));
        }
        assertSameTree(rebuilt, live.tree, `server ${s.id} at 0x${live.zxid.toString(16)}`);
      }
    }
  });

  it('gives only typed errors for a snapshot truncated at every offset or with any bit flipped', async () => {
    const dd = openDataDir(ens.server(1).dataDir);
    const src = dd.snapshots.find((s) => s.size > 2000) ?? dd.snapshots[dd.snapshots.length - 1]!;
    const orig = readFileSync(src.path);
    const f = join(tmp, `snapshot.${src.zxid.toString(16)}`);
    const full = await readSnapshot(src.path);
    assert.ok(full.digest, 'a 3.8 snapshot has a digest after its first seal');
    // Cut right after the first seal, the file is a valid pre-3.6 snapshot (no digest).
    const firstSealEnd = orig.length - (8 + 4 + 8) - 13;
    for (let cut = 0; cut < orig.length; cut++) {
      writeFileSync(f, orig.subarray(0, cut));
      if (cut === firstSealEnd) {
        assert.equal((await readSnapshot(f)).digest, null);
        continue;
      }
      await assert.rejects(readSnapshot(f), (e) => e instanceof ZkDataError, `truncated at ${cut}`);
    }
    for (let at = 0; at < orig.length; at++) {
      const b = Buffer.from(orig);
      b[at] = b[at]! ^ (1 << (at % 8));
      writeFileSync(f, b);
      await assert.rejects(readSnapshot(f), (e) => e instanceof ZkDataError, `bit flipped at ${at}`);
      // With --force only structural damage is fatal, and still typed (every 5th byte: the same code paths).
      if (at % 5 === 0) {
        await readSnapshot(f, {}, { force: true }).then(
          (s) => assert.equal(s.suspect, true, `flip at ${at} read with --force is marked suspect`),
          (e) => assert.ok(e instanceof ZkDataError, String(e)),
        );
      }
    }
  });

  it('prints every log entry before a corrupt one, then the error naming its offset, whatever the buffers', async () => {
    const dd = openDataDir(ens.server(2).dataDir);
    const src = [...dd.logs].sort((a, b) => b.size - a.size)[0]!;
    const { entries } = await readTxnLog(src.path);
    assert.ok(entries.length > 20 && src.size > 3 * 4096, 'a log long enough to need several read windows');
    const clean = stringSink();
    await dumpTxnLog(src.path, clean.sink);
    const cleanLines = clean.text().split('\n');
    const k = Math.floor((entries.length * 2) / 3);
    const victim = entries[k]!;
    const bad = Buffer.from(readFileSync(src.path));
    bad[victim.offset + 12 + 20] ^= 0x01; // a payload byte: the entry's checksum no longer matches
    const f = join(tmp, `corrupt-${src.path.split('/').pop()}`);
    writeFileSync(f, bad);
    // The header line and the k entries before the bad one, exactly as from the intact file.
    const before = `${cleanLines.slice(0, 1 + k).join('\n')}\n`;
    for (const b of BUFFERS) {
      const out = stringSink(b.sink);
      await assert.rejects(dumpTxnLog(f, out.sink, { chunk: b.chunk }), (e) => e instanceof ChecksumError && e.offset === victim.offset, JSON.stringify(b));
      assert.equal(out.text(), before, `buffers ${JSON.stringify(b)}`);
    }
    const cli = runCli(['txnlog', 'dump', f]);
    assert.equal(cli.status, 2, cli.stderr);
    assert.equal(cli.stdout, before);
    assert.match(
      cli.stderr,
      new RegExp(`^zkwarden: .*${f.replace(/\./g, '\\.')}.* offset ${victim.offset}\\b.*\\(use --force to read on; what follows is marked as suspect\\)\\n$`),
    );
  });

  it('prints every snapshot node before a corrupt one, then the error naming its offset, whatever the buffers', async () => {
    const dd = openDataDir(ens.server(1).dataDir);
    const src = [...dd.snapshots].sort((a, b) => b.size - a.size)[0]!;
    assert.ok(src.size > 3 * 4096, 'a snapshot long enough to need several read windows');
    const clean = stringSink();
    await dumpSnapshot(src.path, clean.sink);
    const paths: string[] = [];
    await readSnapshot(src.path, {
      node: (n) => {
        paths.push(n.path === '' ? '/' : n.path);
      },
    });
    const victim = paths[Math.floor((paths.length * 2) / 3)]!;
    // The victim's path as written (int length, bytes): a negative length is no string at all.
    const orig = readFileSync(src.path);
    const name = Buffer.from(victim);
    const lenAt = orig.indexOf(Buffer.concat([Buffer.from([0, 0, 0, name.length]), name]));
    assert.ok(lenAt > 0 && name.length < 256, `${victim} found in the file`);
    const bad = Buffer.from(orig);
    bad.writeInt32BE(-5, lenAt);
    const f = join(tmp, `corrupt-${src.path.split('/').pop()}`);
    writeFileSync(f, bad);
    const before = clean.text().slice(0, clean.text().indexOf(`----\n${victim}\n`));
    assert.ok(before.length > 100);
    for (const b of BUFFERS) {
      const out = stringSink(b.sink);
      await assert.rejects(dumpSnapshot(f, out.sink, { chunk: b.chunk }), (e) => e instanceof MalformedFileError && e.message.includes(f), JSON.stringify(b));
      assert.equal(out.text(), before, `buffers ${JSON.stringify(b)}`);
    }
    const cli = runCli(['snapshot', 'dump', f]);
    assert.equal(cli.status, 2, cli.stderr);
    assert.equal(cli.stdout, before);
    assert.match(cli.stderr, new RegExp(`^zkwarden: .*${f.replace(/\./g, '\\.')}.*\\b${lenAt}\\b.*\\n$`));
    assert.equal(cli.stderr.split('\n').length, 2, 'one line');
  });

  it('reports a torn last log entry and gives only typed errors for damaged logs', async () => {
    const dd = openDataDir(ens.server(2).dataDir);
    const src = dd.logs.find((l) => l.zxid > 1) ?? dd.logs[0]!;
    const { reader } = await readTxnLog(src.path);
    const dataEnd = reader.end!.offset;
    const orig = readFileSync(src.path);
    const f = join(tmp, `log.${src.zxid.toString(16)}`);
    copyFileSync(src.path, f);
    let torn = 0;
    for (let cut = 0; cut < dataEnd + 16; cut++) {
      writeFileSync(f, orig.subarray(0, cut));
      try {
        const r = await readTxnLog(f);
        if (r.reader.end!.kind === 'torn') torn++;
        assert.ok(cut >= 16, 'a cut header is an error');
      } catch (e) {
        assert.ok(e instanceof ZkDataError, `cut at ${cut}: ${String(e)}`);
        assert.ok(cut < 16, `cut at ${cut} past the header is a torn entry, not an error: ${String(e)}`);
      }
    }
    assert.ok(torn > dataEnd / 2, 'most cuts land inside an entry and are reported as torn');

    // A changed payload byte: a ChecksumError naming the entry's offset; --force reads on, marking it.
    const { entries } = await readTxnLog(src.path);
    const victim = entries[Math.floor(entries.length / 2)]!;
    const changed = Buffer.from(orig);
    changed[victim.offset + 12 + 20] ^= 0x01; // inside the TxnHeader's zxid/time
    writeFileSync(f, changed);
    await assert.rejects(readTxnLog(f), (e) => e instanceof ChecksumError && e.offset === victim.offset && e.file === f);
    const forced = await readTxnLog(f, { force: true });
    assert.equal(forced.entries.length, entries.length);
    assert.deepEqual(
      forced.entries.filter((e) => !e.checksumOk).map((e) => e.offset),
      [victim.offset],
    );
    assert.equal(forced.reader.checksumErrors, 1);
    truncateSync(f, 0);
    for (let at = 0; at < dataEnd; at++) {
      const b = Buffer.from(orig.subarray(0, dataEnd + 64));
      b[at] = b[at]! ^ (1 << (at % 8));
      writeFileSync(f, b);
      for (const force of [false, true]) {
        try {
          await readTxnLog(f, { force });
        } catch (e) {
          assert.ok(e instanceof ZkDataError, `flip at ${at} (force ${force}): ${String(e)}`);
        }
      }
    }
  });
});
