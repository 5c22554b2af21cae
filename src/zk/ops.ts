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
  writePathVersion,
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
  const sp = chrootPath(chroot, path);
  const type = createOpCode(mode);
  const flags = CreateFlag[mode];
  return {
    type,
    path,
    sizeHint: (buf?.length ?? 0) + bytesOf(sp) + 64,
    write:
      type === OpCode.createTTL
        ? (w) => writeCreateTTLRequest(w, sp, buf, acl, flags, ttl)
        : (w) => writeCreateRequest(w, sp, buf, acl, flags),
  };
}

export function deleteRequest(chroot: string, path: string, version: number | undefined, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const v = checkVersion(version ?? -1, `${arg}version`);
  const sp = chrootPath(chroot, path);
  return { type: OpCode.delete, path, sizeHint: bytesOf(sp) + 8, write: (w) => writePathVersion(w, sp, v) };
}

export function setDataRequest(chroot: string, path: string, data: Data, version: number | undefined, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const v = checkVersion(version ?? -1, `${arg}version`);
  const buf = toBuffer(data, `${arg}data`);
  const sp = chrootPath(chroot, path);
  return { type: OpCode.setData, path, sizeHint: (buf?.length ?? 0) + bytesOf(sp) + 16, write: (w) => writeSetDataRequest(w, sp, buf, v) };
}

export function checkRequest(chroot: string, path: string, version: number, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const v = checkVersion(version, `${arg}version`);
  const sp = chrootPath(chroot, path);
  return { type: OpCode.check, path, sizeHint: bytesOf(sp) + 8, write: (w) => writePathVersion(w, sp, v) };
}

/** exists, getData, getChildren(2): a path and whether the server should set a watch. */
export function readRequest(type: number, chroot: string, path: string, watch: boolean, arg = ''): OpRequest {
  validatePath(path, `${arg}path`);
  const sp = chrootPath(chroot, path);
  return { type, path, sizeHint: bytesOf(sp) + 8, write: (w) => writePathWatch(w, sp, watch) };
}

/** getACL, sync, getEphemerals, getAllChildrenNumber: a path only. */
export function pathRequest(type: number, chroot: string, path: string, argument = 'path'): OpRequest {
  validatePath(path, argument);
  const sp = chrootPath(chroot, path);
  return { type, path, sizeHint: bytesOf(sp) + 8, write: (w) => writePath(w, sp) };
}

/** addWatch {path, mode}, removeWatches/checkWatches {path, type}. */
export function pathIntRequest(type: number, chroot: string, path: string, value: number): OpRequest {
  validatePath(path);
  const sp = chrootPath(chroot, path);
  return { type, path, sizeHint: bytesOf(sp) + 8, write: (w) => writePathInt(w, sp, value) };
}

export function setACLRequest(chroot: string, path: string, acl: readonly ACL[], version: number | undefined): OpRequest {
  validatePath(path);
  const v = checkVersion(version ?? -1);
  if (!Array.isArray(acl) || acl.length === 0) throw new InvalidArgumentError('acl', 'an ACL needs at least one entry');
  const sp = chrootPath(chroot, path);
  return { type: OpCode.setACL, path, sizeHint: bytesOf(sp) + acl.length * 64 + 8, write: (w) => writeSetACLRequest(w, sp, acl, v) };
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

function framed(type: number, parts: OpRequest[]): OpRequest {
  return {
    type,
    path: undefined,
    sizeHint: parts.reduce((n, p) => n + p.sizeHint + 9, 16),
    write: (w) => {
      for (const p of parts) {
        writeMultiHeader(w, p.type, false, -1);
        p.write(w);
      }
      writeMultiEnd(w);
    },
  };
}

function opsArray<T>(ops: readonly T[]): readonly T[] {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', `expected an array of ops, got ${typeof ops}`);
  return ops;
}

/** multi: every op, each with its MultiHeader, then the end marker. */
export function multiRequest(chroot: string, ops: readonly Op[]): OpRequest {
  return framed(OpCode.multi, opsArray(ops).map((o, i) => transactionOpRequest(chroot, o, `ops[${i}].`)));
}

/** multiRead: getData and getChildren (without watches), each answered on its own. */
export function multiReadRequest(chroot: string, ops: readonly ReadOp[]): OpRequest {
  const parts = opsArray(ops).map((o, i) => {
    if (o?.op !== 'getData' && o?.op !== 'getChildren') {
      throw new InvalidArgumentError(`ops[${i}].op`, `multiRead takes getData and getChildren, got ${String((o as { op?: unknown } | undefined)?.op)}`);
    }
    return readRequest(o.op === 'getData' ? OpCode.getData : OpCode.getChildren, chroot, o.path, false, `ops[${i}].`);
  });
  return framed(OpCode.multiRead, parts);
}
