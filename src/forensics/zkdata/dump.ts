/**
 * `snapshot dump` and `txnlog dump`: streamed text like ZooKeeper's SnapshotFormatter and
 * TxnLogToolkit, or JSON Lines (one object per record) for machines. Nothing is accumulated
 * beyond the per-session ephemeral counts, so a dump of any size runs in bounded memory.
 */
import { bigintReplacer, sessionHex } from '../../zk/records.ts';
import { opName } from '../../zk/txn.ts';
import { hexZxid, javaDate, javaHex16, txnLine } from './format.ts';
import { readSnapshot, type ReadOptions, type SnapshotSummary } from './snapshot.ts';
import { type TextSink } from './sink.ts';
import { type LogEnd, TxnLogReader, type TxnLogOptions } from './txnlog.ts';
import { zxidFromName } from './datadir.ts';

const json = (v: unknown): string => JSON.stringify(v, bigintReplacer);

/**
 * Runs a read; when it fails, everything printed before the bad record is written out first,
 * whatever the sink's buffer size (TxnLogToolkit too prints every entry before a corrupt one).
 */
async function flushingOnError<T>(sink: TextSink, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    await sink.flush().catch(() => undefined);
    throw e;
  }
}

export interface DumpOptions extends ReadOptions {
  json?: boolean;
  /** Print each node's data (base64, as SnapshotFormatter -d). */
  data?: boolean;
}

export async function dumpSnapshot(file: string, sink: TextSink, opts: DumpOptions = {}): Promise<SnapshotSummary> {
  const sessions: [bigint, number][] = [];
  const ephemeralCount = new Map<bigint, number>();
  const asJson = opts.json ?? false;
  const withData = opts.data ?? false;
  if (!asJson) sink.write('ZNode Details:\n');
  const summary = await flushingOnError(sink, () =>
    readSnapshot(
      file,
      {
        header: (h) => {
          if (asJson) sink.write(`${json({ type: 'header', file, magic: h.magic, version: h.version, dbid: h.dbid })}\n`);
        },
        session: (id, to) => {
          sessions.push([id, to]);
        },
        acl: (key, acls) => {
          if (asJson) sink.write(`${json({ type: 'acl', key, acls })}\n`);
        },
        node: (n) => {
          const s = n.stat;
          const owner = s.ephemeralOwner;
          if (owner !== 0n) ephemeralCount.set(owner, (ephemeralCount.get(owner) ?? 0) + 1);
          if (asJson) {
            // Written by hand: JSON.stringify with a replacer per node is the slow part of a dump.
            const data = withData ? `,"data":${n.data ? `"${n.data.toString('base64')}"` : 'null'}` : '';
            sink.write(
              `{"type":"node","path":${JSON.stringify(n.path === '' ? '/' : n.path)},"czxid":${s.czxid},"mzxid":${s.mzxid},"ctime":${s.ctime},"mtime":${s.mtime},"version":${s.version},"cversion":${s.cversion},"aversion":${s.aversion},"ephemeralOwner":"${owner === 0n ? '0x0' : sessionHex(owner)}","pzxid":${s.pzxid},"dataLength":${n.data ? n.data.length : 0},"aclKey":${n.aclKey}${data}}\n`,
            );
          } else {
            sink.write(
              `----\n${n.path === '' ? '/' : n.path}\n  cZxid = ${javaHex16(s.czxid)}\n  ctime = ${javaDate(s.ctime)}\n  mZxid = ${javaHex16(s.mzxid)}\n  mtime = ${javaDate(s.mtime)}\n  pZxid = ${javaHex16(s.pzxid)}\n  cversion = ${s.cversion}\n  dataVersion = ${s.version}\n  aclVersion = ${s.aversion}\n  ephemeralOwner = ${javaHex16(owner)}\n${withData ? `  data = ${n.data ? n.data.toString('base64') : ''}` : `  dataLength = ${n.data ? n.data.length : 0}`}\n`,
            );
          }
        },
        pause: () => sink.flush(),
      },
      opts,
    ),
  );
  const nameZxid = zxidFromName(file, 'snapshot');
  const last = Math.max(nameZxid ?? 0, summary.maxNodeZxid);
  if (asJson) {
    for (const [id, to] of sessions) sink.write(`${json({ type: 'session', id, timeout: to, ephemeralCount: ephemeralCount.get(id) ?? 0 })}\n`);
    sink.write(`${json({ type: 'summary', ...summary, lastZxid: last, fileZxid: nameZxid })}\n`);
  } else {
    sink.write(`----\nZNode count: ${summary.nodeCount}\nSession Details (sid, timeout, ephemeralCount):\n`);
    for (const [id, to] of sessions) sink.write(`${javaHex16(id)}, ${to}, ${ephemeralCount.get(id) ?? 0}\n`);
    if (summary.digest && summary.digest.zxid > 0) sink.write(`Target zxid digest is: ${summary.digest.zxid.toString(16)}, ${summary.digest.digest}\n`);
    sink.write(
      `Checksum: ${summary.checksum.ok ? 'ok' : 'MISMATCH'} (stored 0x${summary.checksum.stored.toString(16)}, computed 0x${summary.checksum.computed.toString(16)})${summary.digest ? `; digest seal ${summary.digest.checksumOk ? 'ok' : 'MISMATCH'}` : ''}\n`,
    );
    for (const w of summary.warnings) sink.write(`WARNING: ${w}\n`);
    sink.write(`----\nLast zxid: ${hexZxid(last)}\n`);
  }
  await sink.flush();
  return summary;
}

export interface TxnLogDumpSummary {
  file: string;
  dbid: bigint;
  count: number;
  firstZxid: number | null;
  lastZxid: number | null;
  end: LogEnd | null;
  checksumErrors: number;
  warnings: string[];
}

export async function dumpTxnLog(file: string, sink: TextSink, opts: TxnLogOptions & { json?: boolean } = {}): Promise<TxnLogDumpSummary> {
  const reader = new TxnLogReader(file, opts);
  let first: number | null = null;
  let last: number | null = null;
  let headerDone = false;
  const header = (): void => {
    if (headerDone || !reader.header) return;
    headerDone = true;
    if (opts.json) sink.write(`${json({ type: 'header', file, magic: reader.header.magic, version: reader.header.version, dbid: reader.header.dbid })}\n`);
    else sink.write(`ZooKeeper Transactional Log File with dbid ${reader.header.dbid} txnlog format version ${reader.header.version}\n`);
  };
  await flushingOnError(sink, async () => {
    for await (const e of reader.entries()) {
      header();
      first ??= e.header.zxid;
      last = e.header.zxid;
      if (opts.json) {
        sink.write(
          `${json({
            type: 'txn',
            offset: e.offset,
            zxid: e.header.zxid,
            session: e.header.clientId,
            cxid: e.header.cxid,
            time: e.header.time,
            op: opName(e.header.type),
            record: e.record,
            digest: e.digest,
            ...(e.checksumOk ? {} : { checksumOk: false }),
          })}\n`,
        );
      } else {
        sink.write(`${e.checksumOk ? '' : 'CRC ERROR - '}${txnLine(e)}\n`);
      }
      if (sink.full) await sink.flush();
    }
  });
  header();
  const end = reader.end;
  const summary: TxnLogDumpSummary = {
    file,
    dbid: reader.header?.dbid ?? 0n,
    count: reader.count,
    firstZxid: first,
    lastZxid: last,
    end,
    checksumErrors: reader.checksumErrors,
    warnings: reader.warnings,
  };
  if (opts.json) {
    sink.write(`${json({ type: 'summary', ...summary })}\n`);
  } else {
    for (const w of reader.warnings) sink.write(`WARNING: ${w}\n`);
    if (end?.kind === 'torn') sink.write(`TORN last entry at offset ${end.offset}: ${end.detail}\n`);
    sink.write(
      `EOF reached after ${reader.count} txns${end ? ` (${end.kind === 'preallocated' ? 'preallocated zeros' : end.kind === 'eof' ? 'end of file' : 'torn entry'} at offset ${end.offset})` : ''}.\n`,
    );
  }
  await sink.flush();
  return summary;
}
