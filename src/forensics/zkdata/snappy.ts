/**
 * Snappy-compressed snapshots (`snapshot.<zxid>.snappy`, written when
 * `zookeeper.snapshot.compression.method=snappy`). ZooKeeper writes them through snappy-java's
 * SnappyOutputStream: a 16-byte header (magic 0x82 "SNAPPY" 0x00, int version, int compatible
 * version), then blocks of int compressed length (big-endian) + one raw Snappy block. Raw Snappy
 * is a varint of the uncompressed length, then literals and back-references; the format is
 * small and fixed, so it is decoded here rather than through a native dependency.
 *
 * Corrupt input is an error naming the file offset of the block and what was wrong, never a
 * huge allocation: a block's declared size is checked against a bound before it is allocated.
 */
import type { FileHandle } from 'node:fs/promises';
import { MalformedFileError, TruncatedFileError } from './errors.ts';

export const SNAPPY_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const HEADER_BYTES = 16;
/** snappy-java writes 32 KiB blocks; anything past 64 MiB is not a block it wrote. */
const MAX_BLOCK = 64 << 20;

/** Decodes one raw Snappy block. `at` is the block's offset in the file, for errors. */
export function decompressSnappyBlock(src: Buffer, file: string, at: number): Buffer {
  let pos = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= src.length || shift > 28) throw new MalformedFileError(file, at + pos, 'a Snappy uncompressed-length varint');
    const b = src[pos++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length > MAX_BLOCK) throw new MalformedFileError(file, at, `a Snappy block of at most ${MAX_BLOCK} bytes`, `declares ${length}`);
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  const bad = (what: string): never => {
    throw new MalformedFileError(file, at + pos, what, `in the Snappy block at offset ${at}`);
  };
  while (pos < src.length) {
    const tag = src[pos++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len >= 60) {
        const n = len - 59;
        if (pos + n > src.length) bad('a literal length');
        len = 0;
        for (let i = 0; i < n; i++) len += src[pos + i]! * 2 ** (8 * i);
        pos += n;
      }
      len += 1;
      if (pos + len > src.length) bad(`${len} literal bytes`);
      if (o + len > length) bad('no more output than the declared length');
      src.copy(out, o, pos, pos + len);
      pos += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (pos + 1 > src.length) bad('a 1-byte copy offset');
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | src[pos++]!;
    } else if (kind === 2) {
      if (pos + 2 > src.length) bad('a 2-byte copy offset');
      len = (tag >>> 2) + 1;
      offset = src.readUInt16LE(pos);
      pos += 2;
    } else {
      if (pos + 4 > src.length) bad('a 4-byte copy offset');
      len = (tag >>> 2) + 1;
      offset = src.readUInt32LE(pos);
      pos += 4;
    }
    if (offset === 0 || offset > o) bad(`a copy offset between 1 and ${o}`);
    if (o + len > length) bad('no more output than the declared length');
    // Copies may overlap their own output (a run): byte by byte then.
    if (offset >= len) {
      out.copy(out, o, o - offset, o - offset + len);
      o += len;
    } else {
      for (let i = 0; i < len; i++, o++) out[o] = out[o - offset]!;
    }
  }
  if (o !== length) throw new MalformedFileError(file, at, `${length} uncompressed bytes`, `the block decodes to ${o}`);
  return out;
}

/** A pull of decompressed bytes from a snappy-java stream file, block by block. */
export function snappyPull(fh: FileHandle, file: string, size: number): () => Promise<Buffer | null> {
  let pos = 0;
  const readExact = async (n: number, what: string): Promise<Buffer> => {
    if (pos + n > size) throw new TruncatedFileError(file, pos, what, `only ${size - pos} byte(s) left`);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(buf, 0, n, pos);
    if (bytesRead !== n) throw new TruncatedFileError(file, pos, what, `read ${bytesRead} of ${n} byte(s)`);
    pos += n;
    return buf;
  };
  return async () => {
    if (pos === 0) {
      const head = await readExact(HEADER_BYTES, 'the snappy-java stream header (16 bytes)');
      if (!head.subarray(0, 8).equals(SNAPPY_MAGIC)) {
        throw new MalformedFileError(file, 0, 'the snappy-java magic 82 53 4e 41 50 50 59 00', `found ${head.subarray(0, 8).toString('hex')}`);
      }
    }
    if (pos >= size) return null;
    const at = pos;
    const len = (await readExact(4, 'a Snappy block length')).readInt32BE(0);
    if (len <= 0 || len > MAX_BLOCK) throw new MalformedFileError(file, at, `a Snappy block length between 1 and ${MAX_BLOCK}`, `got ${len}`);
    const block = await readExact(len, `a Snappy block of ${len} bytes`);
    return decompressSnappyBlock(block, file, at + 4);
  };
}
