/**
 * Streaming reader of ZooKeeper snapshots (`snapshot.<zxid>`, FileSnap in ZooKeeper 3.4–3.9):
 *
 *   FileHeader {int magic "ZKSN", int version, long dbid}
 *   int sessionCount, sessionCount × {long id, int timeoutMs}
 *   ACL cache: int count, count × {long key, vector<ACL>}
 *   nodes in pre-order: {ustring path ("" is the root), buffer data, long aclKey, StatPersisted}
 *   ustring "/" (end of tree)
 *   seal: long Adler32 of every byte before it, ustring "/"
 *   3.6+: ZxidDigest {long zxid, int digestVersion, long digest (string before version 2)}, seal
 *
 * The reader calls a visitor per record and keeps nothing itself, so its memory is the chunk
 * window whatever the snapshot's size.
 */
import { JuteDecodeError, JuteUnderflowError, type JuteReader } from '../../zk/jute.ts';
import { type ACL, readACLVector, type StatPersisted } from '../../zk/records.ts';
import { ChecksumError, MalformedFileError, TruncatedFileError, ZkDataError } from './errors.ts';
import { ChunkedInput } from './source.ts';

export const SNAP_MAGIC = 0x5a4b534e; // "ZKSN"
export const TXNLOG_MAGIC = 0x5a4b4c47; // "ZKLG"

export interface FileHeader {
  magic: number;
  version: number;
  dbid: bigint;
}

/** One node as read. `data` is a view into the read window: copy it to keep it. */
export interface SnapNode {
  path: string;
  data: Buffer | null;
  aclKey: number;
  stat: StatPersisted;
  /** Offset of the node's record (its path) in the file. */
  offset: number;
}

export interface ZxidDigest {
  zxid: number;
  digestVersion: number;
  digest: bigint;
}

export interface SnapshotVisitor {
  header?(h: FileHeader): void;
  session?(id: bigint, timeoutMs: number): void;
  acl?(key: number, acls: ACL[]): void;
  node?(n: SnapNode): void;
  /** Called before the reader waits for more input: a chance to flush output (backpressure). */
  pause?(): Promise<void>;
}

export interface SnapshotSummary {
  file: string;
  header: FileHeader;
  sessionCount: number;
  aclCount: number;
  nodeCount: number;
  dataBytes: number;
  /** Largest mzxid/pzxid of any node: what SnapshotFormatter prints as the last zxid. */
  maxNodeZxid: number;
  checksum: { stored: number; computed: number; ok: boolean };
  digest: (ZxidDigest & { checksumOk: boolean }) | null;
  /** Bytes (of the decompressed stream) read. */
  size: number;
  /** Everything read after a checksum mismatch, or the whole file when that mismatch is found, is suspect. */
  suspect: boolean;
  warnings: string[];
}

export interface ReadOptions {
  /** Continue past checksum mismatches, marking the result as suspect. */
  force?: boolean;
  /** Largest data buffer accepted (a corrupt length must not make the reader buffer GBs). */
  maxDataLength?: number;
  chunk?: number;
}

/** ZooKeeper's default jute.maxbuffer is ~1 MiB; allow well beyond that for tuned servers. */
export const DEFAULT_MAX_DATA = 64 << 20;
const MAX_PATH = 1 << 20;

function isUnderflow(e: unknown): boolean {
  return e instanceof JuteUnderflowError;
}

/** Turns codec errors into file errors naming the file. */
export function fileError(file: string, e: unknown, what: string): Error {
  if (e instanceof ZkDataError) return e;
  if (e instanceof JuteUnderflowError)
    return new TruncatedFileError(file, e.offset, `${e.field} of ${what}`, `needed ${e.needed} more byte(s), the file ends first`);
  if (e instanceof JuteDecodeError) return new MalformedFileError(file, e.offset, `${e.expected} for ${e.field} of ${what}`);
  return e instanceof Error ? e : new Error(String(e));
}

export function readFileHeader(r: JuteReader, file: string, magic: number, kind: string): FileHeader {
  const at = r.offset;
  const m = r.readInt('fileheader.magic');
  if (m !== magic) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(m);
    let hint = `got 0x${(m >>> 0).toString(16)}`;
    if (m === SNAP_MAGIC) hint += ': this is a snapshot, not a transaction log';
    else if (m === TXNLOG_MAGIC) hint += ': this is a transaction log, not a snapshot';
    else if (b[0] === 0x1f && b[1] === 0x8b) hint += ': this is gzip data; name the file *.gz';
    else if (b[0] === 0x82 && b[1] === 0x53) hint += ': this looks like snappy data; name the file *.snappy';
    throw new MalformedFileError(file, at, `the ${kind} magic 0x${magic.toString(16)} ("${kind === 'snapshot' ? 'ZKSN' : 'ZKLG'}")`, hint);
  }
  const vAt = r.offset;
  const version = r.readInt('fileheader.version');
  if (version !== 2) throw new MalformedFileError(file, vAt, 'format version 2', `got ${version}`);
  return { magic: m, version, dbid: r.readLong('fileheader.dbid') };
}

function readNode(r: JuteReader, maxData: number): SnapNode | null {
  const offset = r.offset;
  const pathAt = r.offset;
  const path = r.readString('node.path', MAX_PATH);
  if (path === null) throw new JuteDecodeError('node.path', pathAt, 'a path', 'got null (-1)');
  if (path === '/') return null;
  if (path !== '' && path.charCodeAt(0) !== 47)
    throw new JuteDecodeError('node.path', pathAt, 'a path starting with "/"', `got ${JSON.stringify(path.slice(0, 80))}`);
  const data = r.readBufferView('node.data', maxData);
  const aclKey = r.readLongNumber('node.acl');
  const stat: StatPersisted = {
    czxid: r.readLongNumber('node.stat.czxid'),
    mzxid: r.readLongNumber('node.stat.mzxid'),
    ctime: r.readLongNumber('node.stat.ctime'),
    mtime: r.readLongNumber('node.stat.mtime'),
    version: r.readInt('node.stat.version'),
    cversion: r.readInt('node.stat.cversion'),
    aversion: r.readInt('node.stat.aversion'),
    ephemeralOwner: r.readLong('node.stat.ephemeralOwner'),
    pzxid: r.readLongNumber('node.stat.pzxid'),
  };
  return { path, data, aclKey, stat, offset };
}

/** Reads a seal (long Adler32, ustring "/") and checks it against the bytes before it. */
async function readSeal(input: ChunkedInput, what: string, opts: ReadOptions, warnings: string[]): Promise<{ stored: number; computed: number; ok: boolean }> {
  // The seal (long checksum + ustring "/", 13 bytes) must be in the window before the
  // checksum is taken up to its start.
  await input.ensure(13);
  const at = input.offset;
  const computed = input.checksumUpTo(at);
  const r = input.reader;
  const stored = Number(BigInt.asUintN(64, r.readLong('seal.checksum')));
  const slashAt = r.offset;
  const slash = r.readString('seal.path', 16);
  if (slash !== '/') throw new MalformedFileError(input.file, slashAt, 'the seal\'s "/"', `got ${JSON.stringify(slash)}`);
  const ok = stored === computed;
  if (!ok) {
    const err = new ChecksumError(input.file, at, what, stored, computed);
    if (!opts.force) throw err;
    warnings.push(`${err.message}; continuing (--force), everything read is suspect`);
  }
  return { stored, computed, ok };
}

/**
 * Reads a snapshot from start to end, calling the visitor for each record. Throws a
 * ZkDataError subclass for anything that is not a well-formed, intact snapshot (checksum
 * mismatches only without `force`).
 */
export async function readSnapshot(file: string, visitor: SnapshotVisitor = {}, opts: ReadOptions = {}): Promise<SnapshotSummary> {
  const input = await ChunkedInput.open(file, { chunk: opts.chunk, checksum: true });
  const maxData = opts.maxDataLength ?? DEFAULT_MAX_DATA;
  const warnings: string[] = [];
  let what = 'the file header';
  try {
    await input.refill(0);
    const header = await input.parse((r) => readFileHeader(r, file, SNAP_MAGIC, 'snapshot'), isUnderflow);
    visitor.header?.(header);

    what = 'the session table';
    const sessionCount = await input.parse((r) => {
      const at = r.offset;
      const n = r.readInt('sessions.count');
      if (n < 0) throw new JuteDecodeError('sessions.count', at, 'a count of 0 or more', `got ${n}`);
      return n;
    }, isUnderflow);
    for (let i = 0; i < sessionCount; i++) {
      const [id, to] = await input.parse((r) => [r.readLong('session.id'), r.readInt('session.timeout')] as const, isUnderflow);
      visitor.session?.(id, to);
    }

    what = 'the ACL cache';
    const aclCount = await input.parse((r) => {
      const at = r.offset;
      const n = r.readInt('acls.count');
      if (n < 0) throw new JuteDecodeError('acls.count', at, 'a count of 0 or more', `got ${n}`);
      return n;
    }, isUnderflow);
    for (let i = 0; i < aclCount; i++) {
      const [key, acls] = await input.parse((r) => [r.readLongNumber('acl.key'), readACLVector(r, 'acl.list')] as const, isUnderflow);
      visitor.acl?.(key, acls);
    }

    what = 'a node';
    let nodeCount = 0;
    let dataBytes = 0;
    let maxNodeZxid = 0;
    const onNode = visitor.node;
    // The node loop runs synchronously over the window and awaits only to refill.
    for (;;) {
      const r = input.reader;
      let start = r.pos;
      let done = false;
      try {
        for (;;) {
          start = r.pos;
          const n = readNode(r, maxData);
          if (n === null) {
            done = true;
            break;
          }
          nodeCount++;
          if (n.data) dataBytes += n.data.length;
          if (n.stat.mzxid > maxNodeZxid) maxNodeZxid = n.stat.mzxid;
          if (n.stat.pzxid > maxNodeZxid) maxNodeZxid = n.stat.pzxid;
          if (onNode) onNode(n);
        }
      } catch (e) {
        if (!(e instanceof JuteUnderflowError)) throw e;
        r.pos = start;
        if (visitor.pause) await visitor.pause();
        if (!(await input.refill(r.base + start))) throw e;
        continue;
      }
      if (done) break;
    }

    what = 'the checksum seal';
    const checksum = await readSeal(input, 'the snapshot', opts, warnings);

    let digest: SnapshotSummary['digest'] = null;
    // Anything after the first seal is the 3.6+ digest with its own seal.
    const more = input.reader.remaining > 0 || (await input.refill());
    if (more) {
      what = 'the zxid digest';
      const d = await input.parse((r) => {
        const zxid = r.readLongNumber('digest.zxid');
        const digestVersion = r.readInt('digest.version');
        let value: bigint;
        if (digestVersion < 2) {
          // Before digest version 2 the digest was a hex string.
          const at = r.offset;
          const s = r.readString('digest.digest', 64);
          if (s !== null && !/^[0-9a-fA-F]{1,16}$/.test(s))
            throw new JuteDecodeError('digest.digest', at, 'a hex digest', `got ${JSON.stringify(s.slice(0, 20))}`);
          value = s === null ? 0n : BigInt.asIntN(64, BigInt(`0x${s}`));
        } else value = r.readLong('digest.digest');
        return { zxid, digestVersion, digest: value };
      }, isUnderflow);
      what = "the digest's checksum seal";
      const seal = await readSeal(input, 'the snapshot and its digest', opts, warnings);
      digest = { ...d, checksumOk: seal.ok };
      const trailing = input.reader.remaining > 0 || (await input.refill());
      if (trailing) warnings.push(`${file}: ${input.reader.remaining}+ byte(s) after the digest seal at offset ${input.offset} were ignored`);
    }
    return {
      file,
      header,
      sessionCount,
      aclCount,
      nodeCount,
      dataBytes,
      maxNodeZxid,
      checksum,
      digest,
      size: input.offset,
      suspect: !checksum.ok || (digest !== null && !digest.checksumOk),
      warnings,
    };
  } catch (e) {
    throw fileError(file, e, what);
  } finally {
    await input.close();
  }
}
