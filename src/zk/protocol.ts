/**
 * The client wire protocol on top of jute.ts: op codes, special xids, the records of
 * zookeeper.jute's `proto` module that a client sends and receives, and the multi framing
 * (MultiHeader + op, ended by {-1, true, -1}).
 *
 * Writers take paths already prefixed with the chroot; readers return server paths. The
 * client (client.ts) does the chroot translation.
 */
import { JuteDecodeError, JuteReader, JuteWriter } from './jute.ts';
import { readACLVector, readStat, writeACLVector, type ACL, type Stat } from './records.ts';

export const OpCode = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  reconfig: 16,
  checkWatches: 17,
  removeWatches: 18,
  createContainer: 19,
  deleteContainer: 20,
  createTTL: 21,
  multiRead: 22,
  auth: 100,
  setWatches: 101,
  sasl: 102,
  getEphemerals: 103,
  getAllChildrenNumber: 104,
  setWatches2: 105,
  addWatch: 106,
  whoAmI: 107,
  createSession: -10,
  closeSession: -11,
  error: -1,
} as const;

/** Reserved xids (ClientCnxn): replies with these never match a pending request. */
export const Xid = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const;

/** CreateMode flags as the server reads them. */
export const CreateFlag = {
  persistent: 0,
  ephemeral: 1,
  persistent_sequential: 2,
  ephemeral_sequential: 3,
  container: 4,
  ttl: 5,
  persistent_sequential_ttl: 6,
} as const;
export type CreateMode = keyof typeof CreateFlag;

export function isTtlMode(mode: CreateMode): boolean {
  return mode === 'ttl' || mode === 'persistent_sequential_ttl';
}

/** The op code that creates a node of this mode (create2 family: the reply carries the Stat). */
export function createOpCode(mode: CreateMode): number {
  if (mode === 'container') return OpCode.createContainer;
  if (isTtlMode(mode)) return OpCode.createTTL;
  return OpCode.create2;
}

/** Watcher.Event.EventType */
export const EventType = {
  none: -1,
  created: 1,
  deleted: 2,
  dataChanged: 3,
  childrenChanged: 4,
  dataWatchRemoved: 5,
  childWatchRemoved: 6,
  persistentWatchRemoved: 7,
} as const;
export type WatchEventType = Exclude<keyof typeof EventType, 'none'>;

/** WatcherType for removeWatches/checkWatches. */
export const WatcherType = {
  children: 1,
  data: 2,
  any: 3,
  persistent: 4,
  persistentRecursive: 5,
} as const;
export type WatcherKind = keyof typeof WatcherType;

/** AddWatchMode */
export const AddWatchMode = { persistent: 0, persistent_recursive: 1 } as const;
export type AddWatchModeName = keyof typeof AddWatchMode;

// ---------------------------------------------------------------------------------------------
// Session establishment

export interface ConnectRequest {
  protocolVersion: number;
  lastZxidSeen: bigint;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  readOnly: boolean;
}

/** A connect request is framed like any other but has no RequestHeader. */
export function writeConnectRequest(w: JuteWriter, r: ConnectRequest): void {
  w.writeInt(r.protocolVersion).writeLong(r.lastZxidSeen).writeInt(r.timeOut).writeLong(r.sessionId);
  w.writeBuffer(r.passwd).writeBool(r.readOnly);
}

export interface ConnectResponse {
  protocolVersion: number;
  timeOut: number;
  sessionId: bigint;
  passwd: Buffer;
  readOnly: boolean;
}

export function readConnectResponse(r: JuteReader): ConnectResponse {
  const protocolVersion = r.readInt('ConnectResponse.protocolVersion');
  const timeOut = r.readInt('ConnectResponse.timeOut');
  const sessionId = r.readLong('ConnectResponse.sessionId');
  const passwd = r.readBuffer('ConnectResponse.passwd', 1024) ?? Buffer.alloc(0);
  // Servers before 3.4 did not send the flag; an absent byte means read-write.
  const readOnly = r.remaining > 0 ? r.readBool('ConnectResponse.readOnly') : false;
  return { protocolVersion, timeOut, sessionId, passwd, readOnly };
}

// ---------------------------------------------------------------------------------------------
// Headers

export function writeRequestHeader(w: JuteWriter, xid: number, type: number): void {
  w.writeInt(xid).writeInt(type);
}

export interface ReplyHeader {
  xid: number;
  zxid: bigint;
  err: number;
}

export interface WatcherEvent {
  type: number;
  state: number;
  path: string;
}

export function readWatcherEvent(r: JuteReader): WatcherEvent {
  return {
    type: r.readInt('WatcherEvent.type'),
    state: r.readInt('WatcherEvent.state'),
    path: r.readUString('WatcherEvent.path'),
  };
}

// ---------------------------------------------------------------------------------------------
// Request bodies

export function writeCreateRequest(w: JuteWriter, path: string, data: Uint8Array | null, acl: readonly ACL[], flags: number): void {
  w.writeString(path).writeBuffer(data);
  writeACLVector(w, acl);
  w.writeInt(flags);
}

export function writeCreateTTLRequest(w: JuteWriter, path: string, data: Uint8Array | null, acl: readonly ACL[], flags: number, ttl: number): void {
  writeCreateRequest(w, path, data, acl, flags);
  w.writeLong(ttl);
}

/** ExistsRequest, GetDataRequest, GetChildrenRequest, GetChildren2Request. */
export function writePathWatch(w: JuteWriter, path: string, watch: boolean): void {
  w.writeString(path).writeBool(watch);
}

export function writeSetDataRequest(w: JuteWriter, path: string, data: Uint8Array | null, version: number): void {
  w.writeString(path).writeBuffer(data).writeInt(version);
}

export function writeSetACLRequest(w: JuteWriter, path: string, acl: readonly ACL[], version: number): void {
  w.writeString(path);
  writeACLVector(w, acl);
  w.writeInt(version);
}

/** GetACLRequest, SyncRequest, GetEphemeralsRequest, GetAllChildrenNumberRequest. */
export function writePath(w: JuteWriter, path: string): void {
  w.writeString(path);
}

/**
 * {path, int}: DeleteRequest and CheckVersionRequest {path, version}, RemoveWatchesRequest and
 * CheckWatchesRequest {path, type}, AddWatchRequest {path, mode}.
 */
export function writePathInt(w: JuteWriter, path: string, v: number): void {
  w.writeString(path).writeInt(v);
}

export function writeAuthPacket(w: JuteWriter, scheme: string, auth: Uint8Array): void {
  w.writeInt(0).writeString(scheme).writeBuffer(auth);
}

export interface SetWatches2 {
  relativeZxid: bigint;
  dataWatches: string[];
  existWatches: string[];
  childWatches: string[];
  persistentWatches: string[];
  persistentRecursiveWatches: string[];
}

export function writeSetWatches2(w: JuteWriter, s: SetWatches2): void {
  const str = (ww: JuteWriter, v: string): void => void ww.writeString(v);
  w.writeLong(s.relativeZxid);
  w.writeVector(s.dataWatches, str).writeVector(s.existWatches, str).writeVector(s.childWatches, str);
  w.writeVector(s.persistentWatches, str).writeVector(s.persistentRecursiveWatches, str);
}

/** The older SetWatches (no persistent watches), for servers before 3.6. */
export function writeSetWatches(w: JuteWriter, s: SetWatches2): void {
  const str = (ww: JuteWriter, v: string): void => void ww.writeString(v);
  w.writeLong(s.relativeZxid);
  w.writeVector(s.dataWatches, str).writeVector(s.existWatches, str).writeVector(s.childWatches, str);
}

// ---------------------------------------------------------------------------------------------
// Response bodies

/** Limit for a single decoded string in a reply (a path): ZooKeeper's own limit is far lower. */
const MAX_STRING = 1 << 20;

export function readStringVector(r: JuteReader, field: string): string[] {
  return r.readVector(field, 4, (rr, i) => rr.readUString(`${field}[${i}]`, MAX_STRING)) ?? [];
}

export function readCreate2Response(r: JuteReader): { path: string; stat: Stat } {
  return { path: r.readUString('Create2Response.path', MAX_STRING), stat: readStat(r, 'Create2Response.stat') };
}

export function readGetDataResponse(r: JuteReader): { data: Buffer; stat: Stat } {
  const data = r.readBuffer('GetDataResponse.data') ?? Buffer.alloc(0);
  return { data, stat: readStat(r, 'GetDataResponse.stat') };
}

export function readGetChildren2Response(r: JuteReader): { children: string[]; stat: Stat } {
  const children = readStringVector(r, 'GetChildren2Response.children');
  return { children, stat: readStat(r, 'GetChildren2Response.stat') };
}

export function readGetACLResponse(r: JuteReader): { acl: ACL[]; stat: Stat } {
  const acl = readACLVector(r, 'GetACLResponse.acl');
  return { acl, stat: readStat(r, 'GetACLResponse.stat') };
}

export interface ClientInfo {
  authScheme: string;
  user: string;
}

export function readWhoAmIResponse(r: JuteReader): ClientInfo[] {
  return (
    r.readVector('WhoAmIResponse.clientInfo', 8, (rr, i) => ({
      authScheme: rr.readUString(`WhoAmIResponse.clientInfo[${i}].authScheme`, MAX_STRING),
      user: rr.readUString(`WhoAmIResponse.clientInfo[${i}].user`, MAX_STRING),
    })) ?? []
  );
}

// ---------------------------------------------------------------------------------------------
// Multi

/** One operation of `multi` (a transaction) or `multiRead`. Paths here are the caller's. */
export type Op =
  | { op: 'create'; path: string; data?: Uint8Array | string | null; mode?: CreateMode; acl?: readonly ACL[]; ttlMs?: number }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'setData'; path: string; data: Uint8Array | string | null; version?: number }
  | { op: 'check'; path: string; version: number };

export type ReadOp = { op: 'getData'; path: string } | { op: 'getChildren'; path: string };

export type OpResult =
  | { op: 'create'; path: string; stat: Stat | null }
  | { op: 'delete' }
  | { op: 'setData'; stat: Stat }
  | { op: 'check' }
  | { op: 'getData'; data: Buffer; stat: Stat }
  | { op: 'getChildren'; children: string[] }
  | { op: 'error'; code: number };

export function writeMultiHeader(w: JuteWriter, type: number, done: boolean, err: number): void {
  w.writeInt(type).writeBool(done).writeInt(err);
}

export function writeMultiEnd(w: JuteWriter): void {
  writeMultiHeader(w, -1, true, -1);
}

/**
 * Reads a MultiResponse. `expected` bounds the number of results: a server never sends more
 * results than ops, so a frame claiming otherwise is corrupt.
 */
export function readMultiResponse(r: JuteReader, expected: number): OpResult[] {
  const out: OpResult[] = [];
  for (;;) {
    const at = r.offset;
    const type = r.readInt(`MultiHeader[${out.length}].type`);
    const done = r.readBool(`MultiHeader[${out.length}].done`);
    const err = r.readInt(`MultiHeader[${out.length}].err`);
    if (done) return out;
    if (out.length >= expected) {
      throw new JuteDecodeError(`MultiResponse[${out.length}]`, at, `at most ${expected} result(s)`, 'more results than ops');
    }
    const f = `MultiResponse[${out.length}]`;
    switch (type) {
      case OpCode.create:
        out.push({ op: 'create', path: r.readUString(`${f}.path`, MAX_STRING), stat: null });
        break;
      case OpCode.create2:
      case OpCode.createTTL:
      case OpCode.createContainer: {
        const path = r.readUString(`${f}.path`, MAX_STRING);
        out.push({ op: 'create', path, stat: readStat(r, `${f}.stat`) });
        break;
      }
      case OpCode.delete:
      case OpCode.deleteContainer:
        out.push({ op: 'delete' });
        break;
      case OpCode.check:
        out.push({ op: 'check' });
        break;
      case OpCode.setData:
        out.push({ op: 'setData', stat: readStat(r, `${f}.stat`) });
        break;
      case OpCode.getChildren:
        out.push({ op: 'getChildren', children: readStringVector(r, `${f}.children`) });
        break;
      case OpCode.getData: {
        const data = r.readBuffer(`${f}.data`) ?? Buffer.alloc(0);
        out.push({ op: 'getData', data, stat: readStat(r, `${f}.stat`) });
        break;
      }
      case OpCode.error: {
        // The header repeats the code; the ErrorResponse body is authoritative. Ops before the
        // failing one report 0 (rolled back), ops after it RUNTIME_INCONSISTENCY.
        const code = r.readInt(`${f}.err`);
        out.push({ op: 'error', code: code === 0 && err !== -1 ? err : code });
        break;
      }
      default:
        throw new JuteDecodeError(`${f}.type`, at, 'an op code of a multi result', `got ${type}`);
    }
  }
}
