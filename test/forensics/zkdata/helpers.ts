/**
 * Test helpers for the zkdata tests: a workload driven through zkwarden's own client, reads of
 * the live tree from one server, and ZooKeeper's own SnapshotFormatter to compare with.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createClient, type ZooKeeperClient } from '../../../src/zk/client.ts';
import { Perms, type Stat } from '../../../src/zk/records.ts';
import { adler32 } from '../../../src/forensics/zkdata/adler32.ts';
import type { AuditReport } from '../../../src/forensics/zkdata/audit.ts';
import { type LogEntry, readTxnLog } from '../../../src/forensics/zkdata/txnlog.ts';
import { JuteWriter } from '../../../src/zk/jute.ts';
import { encodeTxnEntry, OpCode, type TxnEntry } from '../../../src/zk/txn.ts';

const run = promisify(execFile);
export const ZK_CP = [
  'zookeeper.jar',
  'zookeeper-jute.jar',
  'slf4j-api.jar',
  'slf4j-nop.jar',
  'jackson-core.jar',
  'jackson-databind.jar',
  'jackson-annotations.jar',
  'snappy-java.jar',
  'netty-common.jar',
  'netty-handler.jar',
  'netty-buffer.jar',
  'netty-transport.jar',
  'netty-codec.jar',
  'netty-resolver.jar',
  'netty-transport-native-epoll.jar',
  'netty-transport-native-unix-common.jar',
  'commons-cli.jar',
  'metrics-core.jar',
]
  .map((j) => `/usr/share/java/${j}`)
  .join(':');

export async function connect(address: string, timeoutMs = 15_000): Promise<ZooKeeperClient> {
  const c = createClient(address, { sessionTimeoutMs: 6000 });
  await c.connect({ timeoutMs });
  return c;
}

/**
 * A mixed workload touching every transaction type the readers decode: creates (persistent,
 * ephemeral, sequential, container, TTL), setData, delete, setACL, a committed and a failed
 * multi, and createSession/closeSession of short-lived clients. `tag` keeps runs apart.
 */
export async function workload(address: string, tag: string, n: number): Promise<void> {
  const c = await connect(address);
  try {
    await c.create(`/${tag}`, 'root').catch(() => undefined);
    for (let i = 0; i < n; i++) {
      const p = `/${tag}/n${i}`;
      await c.create(p, `d${i}`);
      if (i % 3 === 0) await c.setData(p, `v2-${i}`);
      if (i % 7 === 0) await c.delete(p);
      if (i % 11 === 0) await c.create(`/${tag}/seq-`, 's', { mode: 'persistent_sequential' });
      if (i % 13 === 0) {
        const e = await connect(address);
        await e.create(`/${tag}/eph${i}`, 'e', { mode: 'ephemeral' });
        await e.close();
      }
    }
    await c.create(`/${tag}/container`, null, { mode: 'container' });
    await c.create(`/${tag}/container/child`, 'c');
    await c.create(`/${tag}/ttl`, 't', { mode: 'ttl', ttlMs: 600_000 });
    await c.create(`/${tag}/kept-eph`, 'mine', { mode: 'ephemeral_sequential' });
    await c.setACL(`/${tag}/n1`, [{ perms: Perms.READ | Perms.WRITE, id: { scheme: 'world', id: 'anyone' } }]);
    await c.multi([
      { op: 'create', path: `/${tag}/m1` },
      { op: 'setData', path: `/${tag}/n2`, data: 'multi' },
      { op: 'delete', path: `/${tag}/n4` },
    ]);
    await c
      .multi([
        { op: 'create', path: `/${tag}/m2` },
        { op: 'delete', path: `/${tag}/absent` },
      ])
      .catch(() => undefined);
  } finally {
    await c.close();
  }
}

/** A node as a live server serves it: what a client reads of it. */
export type LiveNode = Stat;

/** Every node of the tree one server serves, with its Stat. */
export async function liveTree(address: string): Promise<Map<string, LiveNode>> {
  const c = await connect(address);
  const out = new Map<string, LiveNode>();
  try {
    const walk = async (path: string): Promise<void> => {
      const { children, stat } = await c.getChildren(path);
      out.set(path, stat);
      for (const ch of children) await walk(path === '/' ? `/${ch}` : `${path}/${ch}`);
    };
    await walk('/');
  } finally {
    await c.close();
  }
  return out;
}

/** ZooKeeper's SnapshotFormatter parsed into path → printed fields. */
export async function snapshotFormatter(file: string): Promise<{ nodes: Map<string, Record<string, string>>; sessions: string[]; out: string }> {
  const { stdout } = await run('java', ['-cp', ZK_CP, 'org.apache.zookeeper.server.SnapshotFormatter', file], {
    maxBuffer: 1 << 30,
    env: { ...process.env, TZ: 'UTC' },
    timeout: 120_000,
  });
  return { ...parseFormatterText(stdout), out: stdout };
}

export function parseFormatterText(text: string): { nodes: Map<string, Record<string, string>>; sessions: string[] } {
  const nodes = new Map<string, Record<string, string>>();
  const sessions: string[] = [];
  const lines = text.split('\n');
  let cur: Record<string, string> | null = null;
  let inSessions = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('Session Details')) {
      inSessions = true;
      cur = null;
      continue;
    }
    if (inSessions) {
      if (/^0x[0-9a-f]+, \d+, \d+$/.test(l)) sessions.push(l);
      else inSessions = false;
      continue;
    }
    if (l === '----') {
      cur = null;
      continue;
    }
    if (cur === null && l.startsWith('/') && lines[i + 1]?.startsWith('  cZxid = ')) {
      cur = {};
      nodes.set(l, cur);
      continue;
    }
    const m = /^ {2}(\w+) = (.*)$/.exec(l);
    if (m && cur) cur[m[1]!] = m[2]!;
  }
  return { nodes, sessions };
}

/** A log entry as FileTxnLog frames it: long Adler32 of the payload, int length, payload, 'B'. */
function framed(payload: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64BE(BigInt(adler32(payload)), 0);
  head.writeInt32BE(payload.length, 8);
  return Buffer.concat([head, payload, Buffer.from([0x42])]);
}

/**
 * Rewrites a transaction log the way a tampering test needs: `edit` gets every entry's payload
 * and returns the payloads to write (changed, or fewer); checksums are recomputed, so the file
 * stays valid and only a comparison with other histories can tell.
 */
export async function rewriteLog(file: string, edit: (entries: LogEntry[]) => Buffer[]): Promise<void> {
  const { entries } = await readTxnLog(file);
  const orig = readFileSync(file);
  const parts: Buffer[] = [orig.subarray(0, 16)];
  for (const payload of edit(entries)) parts.push(framed(payload));
  const body = Buffer.concat(parts);
  const out = Buffer.alloc(Math.max(orig.length, body.length + 12));
  body.copy(out);
  writeFileSync(file, out);
}

/**
 * The zxids of a transaction log in file order, as ZooKeeper's own TxnLogToolkit prints them
 * (an independent reading of the file, to check what zkwarden's reader finds).
 */
export async function txnLogToolkitZxids(file: string): Promise<number[]> {
  const { stdout } = await run('java', ['-cp', ZK_CP, 'org.apache.zookeeper.server.persistence.TxnLogToolkit', '--dump', file], {
    maxBuffer: 1 << 28,
    timeout: 60_000,
  });
  return [...stdout.matchAll(/ zxid 0x([0-9a-f]+) /g)].map((m) => parseInt(m[1]!, 16));
}

/**
 * A create transaction's payload with the first byte of its data replaced: TxnHeader (32 bytes),
 * then CreateTxn {ustring path, buffer data, …}. The length stays, so only the content differs.
 */
export function withCreateDataByte(payload: Buffer, byte: number): Buffer {
  const p = Buffer.from(payload);
  const pathLen = p.readInt32BE(32);
  const dataAt = 36 + pathLen;
  const dataLen = p.readInt32BE(dataAt);
  if (dataLen < 1) throw new Error('the create has no data to change');
  p[dataAt + 4] = byte;
  return p;
}

/** A create of /n<counter> (data "d<counter>", open ACL) at zxid epoch<<32 | counter, as a leader would log it. */
export function createEntry(epoch: number, counter: number, data = `d${counter}`): TxnEntry {
  return {
    header: { clientId: 0x100000000000001n, cxid: counter, zxid: epoch * 0x100000000 + counter, time: 1_700_000_000_000 + counter, type: OpCode.create },
    record: {
      kind: 'create',
      path: `/n${counter}`,
      data: Buffer.from(data),
      acl: [{ perms: Perms.ALL, id: { scheme: 'world', id: 'anyone' } }],
      ephemeral: false,
      parentCVersion: counter,
    },
    digest: null,
  };
}

/** A transaction log as FileTxnLog writes one: header, entries with their Adler32, zero padding. */
export function writeTxnLogFile(file: string, entries: TxnEntry[]): void {
  const parts: Buffer[] = [Buffer.from(new JuteWriter(16).writeInt(0x5a4b4c47).writeInt(2).writeLong(0).toBuffer())];
  for (const e of entries) parts.push(framed(encodeTxnEntry(e)));
  parts.push(Buffer.alloc(64));
  writeFileSync(file, Buffer.concat(parts));
}

/**
 * A snapshot of a tree whose root holds the /n<counter> nodes of createEntry(epoch, …) for each
 * counter given (no sessions, open ACLs, no digest), sealed with the Adler32 of what precedes.
 */
export function writeSnapshotFile(file: string, epoch: number, counters: number[]): void {
  const w = new JuteWriter(1024);
  w.writeInt(0x5a4b534e).writeInt(2).writeLong(0);
  w.writeInt(0).writeInt(0);
  const last = counters.length > 0 ? epoch * 0x100000000 + Math.max(...counters) : 0;
  const node = (path: string, data: string | null, zxid: number, time: number, cversion: number, pzxid: number): void => {
    w.writeString(path)
      .writeBuffer(data === null ? null : Buffer.from(data))
      .writeLong(-1);
    w.writeLong(zxid).writeLong(zxid).writeLong(time).writeLong(time).writeInt(0).writeInt(cversion).writeInt(0).writeLong(0).writeLong(pzxid);
  };
  node('', null, 0, 0, counters.length, last);
  for (const c of counters) {
    const e = createEntry(epoch, c);
    node(`/n${c}`, `d${c}`, e.header.zxid, e.header.time, 0, e.header.zxid);
  }
  w.writeString('/');
  const body = Buffer.from(w.toBuffer());
  const seal = new JuteWriter(16).writeLong(BigInt(adler32(body))).writeString('/');
  writeFileSync(file, Buffer.concat([body, Buffer.from(seal.toBuffer())]));
}

/**
 * What an audit must say consistently about a member, whatever shape its data has: a hole is a
 * stretch of zxids its log lacks (within a gap of its history that no SNAP snapshot covers);
 * the warning that the log lacks transactions exists exactly for the verified holes; the
 * ZOOKEEPER-4409 signature cites the data exactly when such a gap exists, and otherwise says
 * nothing is missing; every re-logged entry of offline data (read without --force) is compared
 * with a first copy.
 */
export function assertAuditAgrees(report: AuditReport, member: string, text: string): void {
  const m = report.members.find((x) => x.name === member)!;
  const uncovered = m.gaps.filter((g) => !g.coveredBy);
  for (const h of m.holes)
    assert.ok(
      uncovered.some((g) => g.after < h.from && h.to < g.next),
      `hole ${h.from.toString(16)}–${h.to.toString(16)} outside every uncovered gap of ${member}:\n${text}`,
    );
  const lacks = report.warnings.filter((w) => w.startsWith(`${member}: its log lacks`));
  assert.equal(lacks.length, m.holes.filter((h) => h.verifiedAt !== null).length, text);
  for (const s of report.signatures.filter((x) => x.id === 'ZOOKEEPER-4409' && x.member === member)) {
    assert.equal(s.source, uncovered.length > 0 ? 'data+log' : 'log', text);
    assert.equal(
      s.evidence.some((e) => e.startsWith('no transaction is missing from its log')),
      uncovered.length === 0,
      text,
    );
  }
  for (const r of m.relogs) {
    assert.equal(r.unmatched, 0, text);
    assert.equal(r.identical + r.differing, r.count, text);
  }
}
