/**
 * Writes a valid ZooKeeper 3.8 snapshot of N znodes (and a transaction log continuing it) for
 * the benchmarks, the way FileSnap writes one: header, sessions, ACL cache, nodes in pre-order,
 * "/" end marker, Adler32 seal, zxid digest, seal. ZooKeeper's SnapshotFormatter loading the
 * result is the check that it is valid.
 *
 *   node --import tsx bench/zkdata/gen-snapshot.ts OUTDIR [NODES=1000000] [LOG_TXNS=2000]
 *
 * Layout: /bench/g<i>/n<j> (1000 per group), every 50th node ephemeral of one of 64 sessions.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { JuteWriter } from '../../src/zk/jute.ts';
import { writeStatPersisted } from '../../src/zk/records.ts';
import { encodeTxnEntry, OpCode } from '../../src/zk/txn.ts';
import { Adler32 } from '../../src/forensics/zkdata/adler32.ts';

const [outDir = 'bench-data', nodesArg = '1000000', txnsArg = '2000'] = process.argv.slice(2);
const NODES = Number(nodesArg);
const TXNS = Number(txnsArg);
const EPOCH = 0x5 * 0x100000000;
const SNAP_ZXID = EPOCH + NODES + 10;
const T0 = Date.UTC(2022, 5, 25, 5, 0, 0);
const SESSIONS = Array.from({ length: 64 }, (_v, i) => BigInt.asIntN(64, (BigInt((i % 3) + 1) << 56n) | BigInt(0x31a22e220 + i)));

class Out {
  private w = new JuteWriter(1 << 22);
  private readonly adler = new Adler32();
  private readonly stream;
  constructor(file: string) {
    this.stream = createWriteStream(file);
  }
  get writer(): JuteWriter {
    return this.w;
  }
  async maybeFlush(force = false): Promise<void> {
    if (!force && this.w.length < 4 << 20) return;
    const buf = Buffer.from(this.w.toBuffer());
    this.adler.update(buf);
    this.w = new JuteWriter(1 << 22);
    if (!this.stream.write(buf)) await new Promise<void>((r) => this.stream.once('drain', () => r()));
  }
  async seal(): Promise<void> {
    await this.maybeFlush(true);
    this.w.writeLong(this.adler.value).writeString('/');
  }
  async close(): Promise<void> {
    await this.maybeFlush(true);
    await new Promise<void>((resolve, reject) => this.stream.end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
}

function stat(czxid: number, owner: bigint, pzxid: number, cversion: number): Parameters<typeof writeStatPersisted>[1] {
  const t = T0 + (czxid - EPOCH);
  return { czxid, mzxid: czxid, ctime: t, mtime: t, version: 0, cversion, aversion: 0, ephemeralOwner: owner, pzxid };
}

async function main(): Promise<void> {
  const dir = join(outDir, 'version-2');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `snapshot.${SNAP_ZXID.toString(16)}`);
  const out = new Out(file);
  let w = out.writer;
  w.writeInt(0x5a4b534e).writeInt(2).writeLong(-1n);
  w.writeInt(SESSIONS.length);
  for (const s of SESSIONS) w.writeLong(s).writeInt(30000);
  // ACL cache: key 1 = world:anyone ALL (as ZooKeeper numbers its first ACL).
  w.writeInt(1).writeLong(1).writeInt(1).writeInt(31).writeString('world').writeString('anyone');
  const node = (path: string, data: Buffer | null, acl: number, st: ReturnType<typeof stat>): void => {
    w.writeString(path).writeBuffer(data).writeLong(acl);
    writeStatPersisted(w, st);
  };
  const groups = Math.ceil(NODES / 1000);
  node('', null, -1, { ...stat(0, 0n, EPOCH + 1, 2), ctime: 0, mtime: 0 });
  node('/bench', Buffer.from('bench'), 1, stat(EPOCH + 1, 0n, EPOCH + 1 + groups, groups));
  let zxid = EPOCH + 2;
  let made = 0;
  for (let g = 0; g < groups; g++) {
    const inGroup = Math.min(1000, NODES - made);
    const gz = zxid++;
    node(`/bench/g${g}`, null, 1, stat(gz, 0n, gz + inGroup, inGroup));
    for (let j = 0; j < inGroup; j++) {
      const z = zxid++;
      const owner = (made + j) % 50 === 0 ? SESSIONS[(made + j) % SESSIONS.length]! : 0n;
      node(`/bench/g${g}/n${j}`, Buffer.from(`payload-${g}-${j}-0123456789abcdef`), 1, stat(z, owner, z, 0));
    }
    made += inGroup;
    w = out.writer;
    await out.maybeFlush();
    w = out.writer;
  }
  node('/zookeeper', null, -1, { ...stat(0, 0n, 0, 0), ctime: 0, mtime: 0 });
  node('/zookeeper/config', Buffer.from(''), 1, { ...stat(0, 0n, 0, 0), ctime: 0, mtime: 0, version: -1, aversion: -1 });
  node('/zookeeper/quota', null, -1, { ...stat(0, 0n, 0, 0), ctime: 0, mtime: 0 });
  w.writeString('/');
  await out.seal();
  w = out.writer;
  w.writeLong(SNAP_ZXID).writeInt(2).writeLong(0x1234567n);
  await out.seal();
  await out.close();

  // A log continuing the snapshot: creates under /bench/extra, with their checksums.
  const log = new JuteWriter(1 << 20);
  log.writeInt(0x5a4b4c47).writeInt(2).writeLong(0);
  let z = SNAP_ZXID + 1;
  const session = SESSIONS[0]!;
  const entries = [
    encodeTxnEntry({
      header: { clientId: session, cxid: 1, zxid: z++, time: T0 + NODES, type: OpCode.create2 },
      record: {
        kind: 'create',
        path: '/bench/extra',
        data: null,
        acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }],
        ephemeral: false,
        parentCVersion: groups + 1,
      },
      digest: null,
    }),
  ];
  for (let i = 0; i < TXNS - 1; i++) {
    entries.push(
      encodeTxnEntry({
        header: { clientId: session, cxid: i + 2, zxid: z++, time: T0 + NODES + i, type: OpCode.create2 },
        record: {
          kind: 'create',
          path: `/bench/extra/e${i}`,
          data: Buffer.from(`x${i}`),
          acl: [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }],
          ephemeral: i % 10 === 0,
          parentCVersion: i + 1,
        },
        digest: null,
      }),
    );
  }
  for (const p of entries) {
    log.writeLong(new Adler32().update(p).value).writeBuffer(p).writeByte(0x42);
  }
  const logFile = join(dir, `log.${(SNAP_ZXID + 1).toString(16)}`);
  const ws = createWriteStream(logFile);
  ws.write(log.toBuffer());
  ws.write(Buffer.alloc(64 * 1024));
  await new Promise<void>((resolve) => ws.end(resolve));
  process.stdout.write(`${file}\n${logFile}\n`);
}

await main();
