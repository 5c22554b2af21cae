/**
 * Transaction records of zookeeper.jute (module org.apache.zookeeper.txn), as the server writes
 * them into `log.<zxid>` files and sends them to learners: a TxnHeader, the record its type
 * selects, and (3.6+) an optional TxnDigest. Decoding follows SerializeUtils.deserializeTxn,
 * including its two compatibility rules: a create too short for parentCVersion is a pre-3.3
 * CreateTxnV0, and a closeSession with no record is from before CloseSessionTxn existed.
 */
import { JuteDecodeError, JuteReader, JuteUnderflowError, JuteWriter } from './jute.ts';
import { OpCode } from './protocol.ts';
import { type ACL, readACLVector, writeACLVector } from './records.ts';

/** Operation codes (ZooDefs.OpCode): one table for the wire client and the log readers. */
export { OpCode };

const OP_NAMES = new Map<number, string>(Object.entries(OpCode).map(([k, v]) => [v, k === 'createTTL' ? 'createTtl' : k]));

/** The operation's name as ZooKeeper's Request.op2String prints it. */
export function opName(type: number): string {
  return OP_NAMES.get(type) ?? `unknown ${type}`;
}

export interface TxnHeader {
  clientId: bigint;
  cxid: number;
  zxid: number;
  time: number;
  type: number;
}

export interface TxnDigest {
  version: number;
  treeDigest: bigint;
}

export interface CreateTxn {
  kind: 'create';
  path: string;
  data: Buffer | null;
  acl: ACL[];
  ephemeral: boolean;
  /** -1 for a pre-3.3 CreateTxnV0 (the tree then derives it from the parent). */
  parentCVersion: number;
}
export interface CreateContainerTxn {
  kind: 'createContainer';
  path: string;
  data: Buffer | null;
  acl: ACL[];
  parentCVersion: number;
}
export interface CreateTTLTxn {
  kind: 'createTTL';
  path: string;
  data: Buffer | null;
  acl: ACL[];
  parentCVersion: number;
  ttl: number;
}
export interface DeleteTxn {
  kind: 'delete';
  path: string;
}
export interface SetDataTxn {
  kind: 'setData';
  path: string;
  data: Buffer | null;
  version: number;
}
export interface CheckVersionTxn {
  kind: 'check';
  path: string;
  version: number;
}
export interface SetACLTxn {
  kind: 'setACL';
  path: string;
  acl: ACL[];
  version: number;
}
export interface CreateSessionTxn {
  kind: 'createSession';
  timeOut: number;
}
export interface CloseSessionTxn {
  kind: 'closeSession';
  /** null for logs written before 3.6 had CloseSessionTxn. */
  paths2Delete: string[] | null;
}
export interface ErrorTxn {
  kind: 'error';
  err: number;
}
export interface SubTxn {
  type: number;
  record: TxnRecord;
}
export interface MultiTxn {
  kind: 'multi';
  txns: SubTxn[];
}

export type TxnRecord =
  | CreateTxn
  | CreateContainerTxn
  | CreateTTLTxn
  | DeleteTxn
  | SetDataTxn
  | CheckVersionTxn
  | SetACLTxn
  | CreateSessionTxn
  | CloseSessionTxn
  | ErrorTxn
  | MultiTxn;

export interface TxnEntry {
  header: TxnHeader;
  record: TxnRecord | null;
  digest: TxnDigest | null;
}

/** TxnHeader: clientId, cxid, zxid, time, type. */
export const TXN_HEADER_BYTES = 8 + 4 + 8 + 8 + 4;

export function readTxnHeader(r: JuteReader, field = 'txnHeader'): TxnHeader {
  return {
    clientId: r.readLong(`${field}.clientId`),
    cxid: r.readInt(`${field}.cxid`),
    zxid: r.readLongNumber(`${field}.zxid`),
    time: r.readLongNumber(`${field}.time`),
    type: r.readInt(`${field}.type`),
  };
}

export function writeTxnHeader(w: JuteWriter, h: TxnHeader): void {
  w.writeLong(h.clientId).writeInt(h.cxid).writeLong(h.zxid).writeLong(h.time).writeInt(h.type);
}

/**
 * The record of one transaction type. Throws JuteDecodeError on a malformed record and for a
 * type that has no transaction record (a foreign or corrupt entry).
 */
export function readTxnRecord(r: JuteReader, type: number, field = 'txn', inMulti = false): TxnRecord {
  switch (type) {
    case OpCode.create:
    case OpCode.create2: {
      const path = r.readUString(`${field}.path`);
      const data = r.readBuffer(`${field}.data`);
      const acl = readACLVector(r, `${field}.acl`);
      const ephemeral = r.readBool(`${field}.ephemeral`);
      if (type === OpCode.create && !inMulti && r.remaining < 4) {
        // CreateTxnV0 (before 3.3) has no parentCVersion; -1 makes the tree derive it.
        return { kind: 'create', path, data, acl, ephemeral, parentCVersion: -1 };
      }
      return { kind: 'create', path, data, acl, ephemeral, parentCVersion: r.readInt(`${field}.parentCVersion`) };
    }
    case OpCode.createContainer:
      return {
        kind: 'createContainer',
        path: r.readUString(`${field}.path`),
        data: r.readBuffer(`${field}.data`),
        acl: readACLVector(r, `${field}.acl`),
        parentCVersion: r.readInt(`${field}.parentCVersion`),
      };
    case OpCode.createTTL:
      return {
        kind: 'createTTL',
        path: r.readUString(`${field}.path`),
        data: r.readBuffer(`${field}.data`),
        acl: readACLVector(r, `${field}.acl`),
        parentCVersion: r.readInt(`${field}.parentCVersion`),
        ttl: r.readLongNumber(`${field}.ttl`),
      };
    case OpCode.delete:
    case OpCode.deleteContainer:
      return { kind: 'delete', path: r.readUString(`${field}.path`) };
    case OpCode.setData:
    case OpCode.reconfig:
      return {
        kind: 'setData',
        path: r.readUString(`${field}.path`),
        data: r.readBuffer(`${field}.data`),
        version: r.readInt(`${field}.version`),
      };
    case OpCode.check:
      return { kind: 'check', path: r.readUString(`${field}.path`), version: r.readInt(`${field}.version`) };
    case OpCode.setACL:
      return {
        kind: 'setACL',
        path: r.readUString(`${field}.path`),
        acl: readACLVector(r, `${field}.acl`),
        version: r.readInt(`${field}.version`),
      };
    case OpCode.createSession:
      return { kind: 'createSession', timeOut: r.readInt(`${field}.timeOut`) };
    case OpCode.closeSession:
      if (r.remaining === 0) return { kind: 'closeSession', paths2Delete: null };
      return {
        kind: 'closeSession',
        paths2Delete: r.readVector(`${field}.paths2Delete`, 4, (rr, i) => rr.readUString(`${field}.paths2Delete[${i}]`)),
      };
    case OpCode.error:
      return { kind: 'error', err: r.readInt(`${field}.err`) };
    case OpCode.multi: {
      if (inMulti) throw new JuteDecodeError(`${field}.type`, r.offset, 'no multi inside a multi', 'got multi');
      const txns = r.readVector(`${field}.txns`, 8, (rr, i) => {
        const f = `${field}.txns[${i}]`;
        const subType = rr.readInt(`${f}.type`);
        const dataAt = rr.offset;
        const data = rr.readBufferView(`${f}.data`);
        if (data === null) throw new JuteDecodeError(`${f}.data`, dataAt, 'a buffer', 'got null (-1)');
        const sub = new JuteReader(data, 0, data.length, dataAt + 4);
        return { type: subType, record: readTxnRecord(sub, subType, f, true) };
      });
      return { kind: 'multi', txns: txns ?? [] };
    }
    default:
      throw new JuteDecodeError(`${field}.type`, r.offset - 4, 'a transaction type', `got ${type}`);
  }
}

export function writeTxnRecord(w: JuteWriter, rec: TxnRecord): void {
  switch (rec.kind) {
    case 'create':
      w.writeString(rec.path).writeBuffer(rec.data);
      writeACLVector(w, rec.acl);
      w.writeBool(rec.ephemeral).writeInt(rec.parentCVersion);
      return;
    case 'createContainer':
      w.writeString(rec.path).writeBuffer(rec.data);
      writeACLVector(w, rec.acl);
      w.writeInt(rec.parentCVersion);
      return;
    case 'createTTL':
      w.writeString(rec.path).writeBuffer(rec.data);
      writeACLVector(w, rec.acl);
      w.writeInt(rec.parentCVersion).writeLong(rec.ttl);
      return;
    case 'delete':
      w.writeString(rec.path);
      return;
    case 'setData':
      w.writeString(rec.path).writeBuffer(rec.data).writeInt(rec.version);
      return;
    case 'check':
      w.writeString(rec.path).writeInt(rec.version);
      return;
    case 'setACL':
      w.writeString(rec.path);
      writeACLVector(w, rec.acl);
      w.writeInt(rec.version);
      return;
    case 'createSession':
      w.writeInt(rec.timeOut);
      return;
    case 'closeSession':
      if (rec.paths2Delete !== null) w.writeVector(rec.paths2Delete, (ww, p) => ww.writeString(p));
      return;
    case 'error':
      w.writeInt(rec.err);
      return;
    case 'multi':
      w.writeVector(rec.txns, (ww, t) => {
        const sub = new JuteWriter();
        writeTxnRecord(sub, t.record);
        ww.writeInt(t.type).writeBuffer(sub.toBuffer());
      });
      return;
  }
}

/**
 * One transaction entry's payload (what the log's checksum covers): header, record, and the
 * digest when the bytes left hold one. `base` is the payload's offset in the file, for errors.
 */
export function decodeTxnEntry(payload: Buffer, base = 0): TxnEntry {
  const r = new JuteReader(payload, 0, payload.length, base);
  const header = readTxnHeader(r);
  let record: TxnRecord | null;
  try {
    record = readTxnRecord(r, header.type);
  } catch (e) {
    // An entry is complete by construction (its length is known), so running out of bytes is
    // a malformed record, not a short read.
    if (e instanceof JuteUnderflowError) {
      throw new JuteDecodeError(e.field, e.offset, `a complete ${opName(header.type)} record`, 'the entry ends inside it');
    }
    throw e;
  }
  let digest: TxnDigest | null = null;
  if (r.remaining >= 12) {
    digest = { version: r.readInt('digest.version'), treeDigest: r.readLong('digest.treeDigest') };
  }
  if (r.remaining !== 0) {
    throw new JuteDecodeError('txn', r.offset, 'the end of the entry', `${r.remaining} byte(s) left over`);
  }
  return { header, record, digest };
}

export function encodeTxnEntry(e: TxnEntry): Buffer {
  const w = new JuteWriter(128);
  writeTxnHeader(w, e.header);
  if (e.record) writeTxnRecord(w, e.record);
  if (e.digest) w.writeInt(e.digest.version).writeLong(e.digest.treeDigest);
  return Buffer.from(w.toBuffer());
}
