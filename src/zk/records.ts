/**
 * Records of zookeeper.jute used by both the wire client and the data-file readers.
 * Zxids, times and versions are JS numbers (a zxid's epoch would need to pass 2^21 to lose
 * precision); session ids and ephemeral owners are bigint because their top byte is the
 * creating server's myid and they use all 64 bits.
 */
import { JuteReader, JuteWriter } from './jute.ts';

export interface Id {
  scheme: string;
  id: string;
}

export interface ACL {
  perms: number;
  id: Id;
}

/** The Stat a client sees (data.Stat). */
export interface Stat {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  dataLength: number;
  numChildren: number;
  pzxid: number;
}

/** The Stat a snapshot stores (data.StatPersisted): no dataLength or numChildren. */
export interface StatPersisted {
  czxid: number;
  mzxid: number;
  ctime: number;
  mtime: number;
  version: number;
  cversion: number;
  aversion: number;
  ephemeralOwner: bigint;
  pzxid: number;
}

export const Perms = { READ: 1, WRITE: 2, CREATE: 4, DELETE: 8, ADMIN: 16, ALL: 31 } as const;

export const OPEN_ACL_UNSAFE: ACL[] = [{ perms: Perms.ALL, id: { scheme: 'world', id: 'anyone' } }];
export const READ_ACL_UNSAFE: ACL[] = [{ perms: Perms.READ, id: { scheme: 'world', id: 'anyone' } }];
export const CREATOR_ALL_ACL: ACL[] = [{ perms: Perms.ALL, id: { scheme: 'auth', id: '' } }];

/** ephemeralOwner of a container node. */
export const CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000n;
/** ephemeralOwner values whose top byte is 0xFF mark TTL nodes (EphemeralType.TTL). */
export function isTtlOwner(owner: bigint): boolean {
  return owner !== 0n && owner !== CONTAINER_EPHEMERAL_OWNER && BigInt.asUintN(64, owner) >> 56n === 0xffn;
}

export function readId(r: JuteReader, field = 'id'): Id {
  return { scheme: r.readUString(`${field}.scheme`), id: r.readUString(`${field}.id`) };
}

export function writeId(w: JuteWriter, id: Id): void {
  w.writeString(id.scheme).writeString(id.id);
}

export function readACL(r: JuteReader, field = 'acl'): ACL {
  const perms = r.readInt(`${field}.perms`);
  return { perms, id: readId(r, `${field}.id`) };
}

export function writeACL(w: JuteWriter, acl: ACL): void {
  w.writeInt(acl.perms);
  writeId(w, acl.id);
}

/** An ACL entry is at least perms + two length prefixes. */
export const ACL_MIN_BYTES = 12;

export function readACLVector(r: JuteReader, field = 'acl'): ACL[] {
  return r.readVector(field, ACL_MIN_BYTES, (rr, i) => readACL(rr, `${field}[${i}]`)) ?? [];
}

export function writeACLVector(w: JuteWriter, acls: readonly ACL[]): void {
  w.writeVector(acls, writeACL);
}

/** A Stat's size on the wire (data.Stat): six longs and five ints. */
const STAT_BYTES = 68;

export function readStat(r: JuteReader, field = 'stat'): Stat {
  if (r.remaining < STAT_BYTES) return readStatNamed(r, field);
  // All of it is there, so no read can fail and no field name is needed: building eleven names
  // per reply costs more than the reads.
  return {
    czxid: r.readLongNumber(),
    mzxid: r.readLongNumber(),
    ctime: r.readLongNumber(),
    mtime: r.readLongNumber(),
    version: r.readInt(),
    cversion: r.readInt(),
    aversion: r.readInt(),
    ephemeralOwner: r.readLong(),
    dataLength: r.readInt(),
    numChildren: r.readInt(),
    pzxid: r.readLongNumber(),
  };
}

/** readStat for a Stat that may be cut short: the error names the field. */
function readStatNamed(r: JuteReader, field: string): Stat {
  return {
    czxid: r.readLongNumber(`${field}.czxid`),
    mzxid: r.readLongNumber(`${field}.mzxid`),
    ctime: r.readLongNumber(`${field}.ctime`),
    mtime: r.readLongNumber(`${field}.mtime`),
    version: r.readInt(`${field}.version`),
    cversion: r.readInt(`${field}.cversion`),
    aversion: r.readInt(`${field}.aversion`),
    ephemeralOwner: r.readLong(`${field}.ephemeralOwner`),
    dataLength: r.readInt(`${field}.dataLength`),
    numChildren: r.readInt(`${field}.numChildren`),
    pzxid: r.readLongNumber(`${field}.pzxid`),
  };
}

export function writeStat(w: JuteWriter, s: Stat): void {
  w.writeLong(s.czxid).writeLong(s.mzxid).writeLong(s.ctime).writeLong(s.mtime);
  w.writeInt(s.version).writeInt(s.cversion).writeInt(s.aversion);
  w.writeLong(s.ephemeralOwner).writeInt(s.dataLength).writeInt(s.numChildren).writeLong(s.pzxid);
}

export function readStatPersisted(r: JuteReader, field = 'stat'): StatPersisted {
  return {
    czxid: r.readLongNumber(`${field}.czxid`),
    mzxid: r.readLongNumber(`${field}.mzxid`),
    ctime: r.readLongNumber(`${field}.ctime`),
    mtime: r.readLongNumber(`${field}.mtime`),
    version: r.readInt(`${field}.version`),
    cversion: r.readInt(`${field}.cversion`),
    aversion: r.readInt(`${field}.aversion`),
    ephemeralOwner: r.readLong(`${field}.ephemeralOwner`),
    pzxid: r.readLongNumber(`${field}.pzxid`),
  };
}

export function writeStatPersisted(w: JuteWriter, s: StatPersisted): void {
  w.writeLong(s.czxid).writeLong(s.mzxid).writeLong(s.ctime).writeLong(s.mtime);
  w.writeInt(s.version).writeInt(s.cversion).writeInt(s.aversion);
  w.writeLong(s.ephemeralOwner).writeLong(s.pzxid);
}

/** Hex as ZooKeeper's tools print zxids and session ids: 0x plus lowercase, no padding. */
export function hex(v: number | bigint): string {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

/** Session ids printed unsigned, as ZooKeeper does (Long.toHexString). */
export function sessionHex(v: bigint): string {
  return `0x${BigInt.asUintN(64, v).toString(16)}`;
}

/**
 * A JSON.stringify replacer for records that hold bigints (session ids, ephemeral owners): each
 * is written as sessionHex writes it, so JSON output reads like ZooKeeper's own tools.
 */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? sessionHex(value) : value;
}
