/**
 * One encoder per operation: each checks its arguments (args.ts, paths.ts), applies the chroot and
 * returns the request as the server reads it. A single call and the same op inside `multi` or
 * `multiRead` go through the same encoder, so they cannot drift apart; inside a transaction the
 * arguments are named `ops[i].path`, `ops[i].version`, ...
 */
import { InvalidArgumentError } from './errors.ts';
import type { JuteWriter } from './jute.ts';
import { OPEN_ACL_UNSAFE, type ACL } from './records.ts';
import { checkCreateMode, checkTtl, checkVersion } from './args.ts';
import { chrootPath, validatePath } from './paths.ts';
import {
  CreateFlag,
  OpCode,
  createOpCode,
  writeCreateRequest,
  writeCreateTTLRequest,
  writeMultiEnd,
  writeMultiHeader,
  writePath,
  writePathInt,
  writePathWatch,
  writeSetACLRequest,
  writeSetDataRequest,
  type CreateMode,
  type Op,
  type ReadOp,
} from './protocol.ts';

export type Data = Uint8Array | string | null | undefined;

/** A request body ready to frame: its op code, how to write it, and the caller's path for errors. */
export interface OpRequest {
  readonly type: number;
  /** The path as the caller wrote it (errors name this one, not the chrooted one). */
  readonly path: string | undefined;
  /** Bytes the body is likely to need, so the frame is allocated once. */
  readonly sizeHint: number;
  write(w: JuteWriter): void;
}

export function toBuffer(d: Data, argument = 'data'): Buffer | null {
  if (d === null || d === undefined) return null;
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (d instanceof Uint8Array) return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  throw new InvalidArgumentError(argument, `expected a string, Buffer, Uint8Array or null, got ${typeof d}`);
}

function bytesOf(path: string): number {
  return path.length * 3 + 4;
}

// The bodies are small classes rather than objects with a closure: a request allocates one
// object, and its `write` is one shared method.

class CreateBody implements OpRequest {
  constructor(
    readonly type: number,
    readonly path: string,
    private readonly serverPath: string,
    private readonly data: Buffer | null,
    private readonly acl: readonly ACL[],
    private readonly flags: number,
    private readonly ttl: number,
  ) {}
  get sizeHint(): number {
    return (this.data?.length ?? 0) + bytesOf(this.serverPath) + 64;
  }
  write(w: JuteWriter): void {
    if (this.type === OpCode.createTTL) writeCreateTTLRequest(w, this.serverPath, this.data, this.acl, this.flags, this.ttl);
    else writeCreateRequest(w, this.serverPath, this.data, this.acl, this.flags);
  }
}

/** {path, int}: delete and check {path, version}; addWatch {path, mode}; removeWatches and checkWatches {path, type}. */
class PathIntBody implements OpRequest {
  constructor(
    readonly type: number,
    readonly path: string,
    private readonly serverPath: string,
    private readonly value: number,
  ) {}
  get sizeHint(): number {
    return bytesOf(this.serverPath) + 8;
  }
  write(w: JuteWriter): void {
    writePathInt(w, this.serverPath, this.value);
  }
}

class SetDataBody implements OpRequest {
  readonly type = OpCode.setData;
  constructor(
    readonly path: string,
    private readonly serverPath: string,
    private readonly data: Buffer | null,
    private readonly version: number,
  ) {}
  get sizeHint(): number {
    return (this.data?.length ?? 0) + bytesOf(this.serverPath) + 16;
  }
  write(w: JuteWriter): void {
    writeSetDataRequest(w, this.serverPath, this.data, this.version);
  }
}

/** exists, getData, getChildren(2): {path, watch}. */
class PathWatchBody implements OpRequest {
  constructor(
    readonly type: number,
    readonly path: string,
    private readonly serverPath: string,
    private readonly watch: boolean,
  ) {}
  get sizeHint(): number {
    return bytesOf(this.serverPath) + 8;
  }
  write(w: JuteWriter): void {
    writePathWatch(w, this.serverPath, this.watch);
  }
}

/** getACL, sync, getEphemerals, getAllChildrenNumber: {path}. */
class PathBody implements OpRequest {
  constructor(
    readonly type: number,
    readonly path: string,
    private readonly serverPath: string,
  ) {}
  get sizeHint(): number {
    return bytesOf(this.serverPath) + 8;
  }
  write(w: JuteWriter): void {
    writePath(w, this.serverPath);
  }
}

class SetACLBody implements OpRequest {
  readonly type = OpCode.setACL;
  constructor(
    readonly path: string,
    private readonly serverPath: string,
    private readonly acl: readonly ACL[],
    private readonly version: number,
  ) {}
  get sizeHint(): number {
    return bytesOf(this.serverPath) + this.acl.length * 64 + 8;
  }
  write(w: JuteWriter): void {
    writeSetACLRequest(w, this.serverPath, this.acl, this.version);
  }
}

/** multi and multiRead: every op with its MultiHeader, then the end marker. */
class MultiBody implements OpRequest {
  readonly path = undefined;
  constructor(
    readonly type: number,
    private readonly parts: readonly OpRequest[],
  ) {}
  get sizeHint(): number {
    return this.parts.reduce((n, p) => n + p.sizeHint + 9, 16);
  }
  write(w: JuteWriter): void {
    for (const p of this.parts) {
      writeMultiHeader(w, p.type, false, -1);
      p.write(w);
    }
    writeMultiEnd(w);
  }
}

export interface CreateArgs {
  mode?: CreateMode;
  acl?: readonly ACL[];
  ttlMs?: number;
}

export function createRequest(chroot: string, path: string, data: Data, args: CreateArgs, arg = ''): OpRequest {
  const mode = checkCreateMode(args.mode ?? 'persistent', `${arg}mode`);
  validatePath(path, `${arg}path`, mode.includes('sequential'));
  const ttl = checkTtl(mode, args.ttlMs, `${arg}ttlMs`);
  const acl = args.acl ?? OPEN_ACL_UNSAFE;
  const buf = toBuffer(data, `${arg}data`);
  return new CreateBody(createOpCode(mode), path, chrootPath(chroot, path), buf, acl, CreateFlag[mode], ttl);
}

export function deleteRequest(chroot: string, path: string, version: number | undefined, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const v = checkVersion(version ?? -1, `${arg}version`);
  return new PathIntBody(OpCode.delete, path, chrootPath(chroot, path), v);
}

export function setDataRequest(chroot: string, path: string, data: Data, version: number | undefined, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const v = checkVersion(version ?? -1, `${arg}version`);
  const buf = toBuffer(data, `${arg}data`);
  return new SetDataBody(path, chrootPath(chroot, path), buf, v);
}

export function checkRequest(chroot: string, path: string, version: number, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const v = checkVersion(version, `${arg}version`);
  return new PathIntBody(OpCode.check, path, chrootPath(chroot, path), v);
}

/** exists, getData, getChildren(2): a path and whether the server should set a watch. */
export function readRequest(type: number, chroot: string, path: string, watch: boolean, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  return new PathWatchBody(type, path, chrootPath(chroot, path), watch);
}

/** getACL, sync, getEphemerals, getAllChildrenNumber: a path only. */
export function pathRequest(type: number, chroot: string, path: string, argument = 'path'): OpRequest {
  validatePath(path, argument);
  return new PathBody(type, path, chrootPath(chroot, path));
}

/** addWatch {path, mode}, removeWatches/checkWatches {path, type}. */
export function pathIntRequest(type: number, chroot: string, path: string, value: number): OpRequest {
  validatePath(path);
  return new PathIntBody(type, path, chrootPath(chroot, path), value);
}

export function setACLRequest(chroot: string, path: string, acl: readonly ACL[], version: number | undefined): OpRequest {
  validatePath(path);
  const v = checkVersion(version ?? -1);
  if (!Array.isArray(acl) || acl.length === 0) throw new InvalidArgumentError('acl', 'an ACL needs at least one entry');
  return new SetACLBody(path, chrootPath(chroot, path), acl, v);
}

/** One op of a transaction, through the encoder its single call uses. */
function transactionOpRequest(chroot: string, o: Op, arg: string): OpRequest {
  switch (o?.op) {
    case 'create':
      return createRequest(chroot, o.path, o.data, o, arg);
    case 'delete':
      return deleteRequest(chroot, o.path, o.version, arg);
    case 'setData':
      return setDataRequest(chroot, o.path, o.data, o.version, arg);
    case 'check':
      return checkRequest(chroot, o.path, o.version, arg);
    default:
      throw new InvalidArgumentError(`${arg}op`, `unknown op ${String((o as { op?: unknown } | undefined)?.op)}`);
  }
}

function opsArray<T>(ops: readonly T[]): readonly T[] {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', `expected an array of ops, got ${typeof ops}`);
  return ops;
}

/** multi: every op, each with its MultiHeader, then the end marker. */
export function multiRequest(chroot: string, ops: readonly Op[]): OpRequest {
  return new MultiBody(
    OpCode.multi,
    opsArray(ops).map((o, i) => transactionOpRequest(chroot, o, `ops[${i}].`)),
  );
}

/** multiRead: getData and getChildren (without watches), each answered on its own. */
export function multiReadRequest(chroot: string, ops: readonly ReadOp[]): OpRequest {
  const parts = opsArray(ops).map((o, i) => {
    if (o?.op !== 'getData' && o?.op !== 'getChildren') {
      throw new InvalidArgumentError(`ops[${i}].op`, `multiRead takes getData and getChildren, got ${String((o as { op?: unknown } | undefined)?.op)}`);
    }
    return readRequest(o.op === 'getData' ? OpCode.getData : OpCode.getChildren, chroot, o.path, false, `ops[${i}].`);
  });
  return new MultiBody(OpCode.multiRead, parts);
}
