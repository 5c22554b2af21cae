/**
 * A ZooKeeper data tree in memory, built from a snapshot and moved forward by transactions with
 * the rules of ZooKeeper's DataTree.processTxn. Those rules make replay over a fuzzy snapshot
 * idempotent: a create of a node that exists, a delete or setData of a node that does not, are
 * ignored (a create that finds its node still fixes the parent's cversion/pzxid, as ZooKeeper
 * does); pzxid and cversion only move forward.
 *
 * To stay small at millions of nodes the tree is stored by column (typed arrays indexed by a
 * slot number, one Map from path to slot), not as an object per node: about a hundred bytes a
 * node instead of several hundred, and no per-node garbage. A node keeps its data only when
 * asked (`keepData`); otherwise its length and CRC-32, enough to compare trees.
 */
import { crc32 } from 'node:zlib';
import { type ACL, CONTAINER_EPHEMERAL_OWNER, type Stat, type StatPersisted, isTtlOwner } from '../../zk/records.ts';
import { OpCode, type TxnEntry, type TxnHeader, type TxnRecord } from '../../zk/txn.ts';
import { type ReadOptions, readSnapshot, type SnapshotSummary } from './snapshot.ts';
import { MalformedFileError } from './errors.ts';

export interface ZNode extends StatPersisted {
  dataLength: number;
  dataCrc: number;
  data: Buffer | null;
  /** The ACL as text ("31:world:anyone,..."), interned: servers number their ACL caches differently. */
  acl: string;
  numChildren: number;
}

/** Fields compared between trees, in the order of ZNode. */
export const COMPARED_FIELDS = [
  'czxid',
  'mzxid',
  'ctime',
  'mtime',
  'version',
  'cversion',
  'aversion',
  'ephemeralOwner',
  'pzxid',
  'dataLength',
  'dataCrc',
  'acl',
  'numChildren',
] as const;
export type ComparedField = (typeof COMPARED_FIELDS)[number];

export interface ApplyResult {
  /** 0 or the KeeperException code ZooKeeper would have ignored during replay. */
  err: number;
  paths: string[];
}

const NONODE = -101;
const NODEEXISTS = -110;

const aclText = new Map<string, string>();
export function aclToText(acls: readonly ACL[]): string {
  const s = acls.map((a) => `${a.perms}:${a.id.scheme}:${a.id.id}`).join(',');
  const interned = aclText.get(s);
  if (interned !== undefined) return interned;
  aclText.set(s, s);
  return s;
}

function parentOf(path: string): string {
  return path.substring(0, path.lastIndexOf('/'));
}

export function ttlOwner(ttl: number): bigint {
  return BigInt.asIntN(64, 0xff00000000000000n | BigInt(ttl));
}

/**
 * The Stat a client is served for a node (DataNode.copyStat): the persisted cversion counts
 * creates only, so the server reports cversion * 2 - numChildren; container and TTL owners read 0.
 */
export function clientStat(n: ZNode): Stat {
  const owner = n.ephemeralOwner === CONTAINER_EPHEMERAL_OWNER || isTtlOwner(n.ephemeralOwner) ? 0n : n.ephemeralOwner;
  return {
    czxid: n.czxid,
    mzxid: n.mzxid,
    ctime: n.ctime,
    mtime: n.mtime,
    version: n.version,
    cversion: n.cversion * 2 - n.numChildren,
    aversion: n.aversion,
    ephemeralOwner: owner,
    dataLength: n.dataLength,
    numChildren: n.numChildren,
    pzxid: n.pzxid,
  };
}

/** A Map-like read-only view of the nodes, materialising a ZNode object per access. */
export class NodeView implements Iterable<[string, ZNode]> {
  private readonly t: DataTree;
  constructor(t: DataTree) {
    this.t = t;
  }
  get size(): number {
    return this.t.size;
  }
  has(path: string): boolean {
    return this.t.slotOf(path) !== undefined;
  }
  get(path: string): ZNode | undefined {
    const i = this.t.slotOf(path);
    return i === undefined ? undefined : this.t.node(i);
  }
  keys(): IterableIterator<string> {
    return this.t.paths();
  }
  *[Symbol.iterator](): IterableIterator<[string, ZNode]> {
    for (const [p, i] of this.t.slots()) yield [p, this.t.node(i)];
  }
}

const ZERO = 0n;

export class DataTree {
  private readonly index = new Map<string, number>();
  private cap = 0;
  private top = 0;
  private readonly free: number[] = [];
  private czxid = new Float64Array(0);
  private mzxid = new Float64Array(0);
  private pzxid = new Float64Array(0);
  private ctime = new Float64Array(0);
  private mtime = new Float64Array(0);
  private version = new Int32Array(0);
  private cversion = new Int32Array(0);
  private aversion = new Int32Array(0);
  private children = new Int32Array(0);
  private dataLen = new Int32Array(0);
  private dataCrc = new Uint32Array(0);
  private aclId = new Int32Array(0);
  private owner = new BigInt64Array(0);
  private data: (Buffer | null)[] = [];
  private readonly aclTexts: string[] = [];
  private readonly aclIds = new Map<string, number>();

  readonly sessions = new Map<bigint, number>();
  readonly ephemerals = new Map<bigint, Set<string>>();
  /** The zxid of the last transaction applied (or the snapshot's, from its name). */
  lastZxid = 0;
  readonly keepData: boolean;
  /** Set when built from a suspect file (checksum mismatch under --force). */
  suspect = false;
  snapshot: SnapshotSummary | null = null;
  readonly nodes: NodeView;

  constructor(opts: { keepData?: boolean; capacity?: number } = {}) {
    this.keepData = opts.keepData ?? false;
    this.nodes = new NodeView(this);
    this.grow(opts.capacity ?? 1024);
  }

  get size(): number {
    return this.index.size;
  }

  private grow(min: number): void {
    let cap = Math.max(this.cap * 2, 1024);
    while (cap < min) cap *= 2;
    const f64 = (a: Float64Array): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const i32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.czxid = f64(this.czxid);
    this.mzxid = f64(this.mzxid);
    this.pzxid = f64(this.pzxid);
    this.ctime = f64(this.ctime);
    this.mtime = f64(this.mtime);
    this.version = i32(this.version);
    this.cversion = i32(this.cversion);
    this.aversion = i32(this.aversion);
    this.children = i32(this.children);
    this.dataLen = i32(this.dataLen);
    this.aclId = i32(this.aclId);
    const crc = new Uint32Array(cap);
    crc.set(this.dataCrc);
    this.dataCrc = crc;
    const own = new BigInt64Array(cap);
    own.set(this.owner);
    this.owner = own;
    this.cap = cap;
  }

  private aclIdOf(text: string): number {
    let id = this.aclIds.get(text);
    if (id === undefined) {
      id = this.aclTexts.length;
      this.aclTexts.push(text);
      this.aclIds.set(text, id);
    }
    return id;
  }

  slotOf(path: string): number | undefined {
    return this.index.get(path === '/' ? '' : path);
  }

  slots(): IterableIterator<[string, number]> {
    return this.index.entries();
  }

  paths(): IterableIterator<string> {
    return this.index.keys();
  }

  /** The node in slot i as an object (for reports; comparisons use the columns). */
  node(i: number): ZNode {
    return {
      czxid: this.czxid[i]!,
      mzxid: this.mzxid[i]!,
      ctime: this.ctime[i]!,
      mtime: this.mtime[i]!,
      version: this.version[i]!,
      cversion: this.cversion[i]!,
      aversion: this.aversion[i]!,
      ephemeralOwner: this.owner[i]!,
      pzxid: this.pzxid[i]!,
      dataLength: this.dataLen[i]!,
      dataCrc: this.dataCrc[i]!,
      data: this.keepData ? (this.data[i] ?? null) : null,
      acl: this.aclTexts[this.aclId[i]!]!,
      numChildren: this.children[i]!,
    };
  }

  /** The Stat a client would see (numChildren and dataLength included). */
  get(path: string): ZNode | undefined {
    return this.nodes.get(path);
  }

  /** Adds a node (no parent bookkeeping: callers keep numChildren right). */
  addNode(path: string, n: StatPersisted & { data: Buffer | null; acl: string; numChildren?: number }): number {
    return this.put(path, n, n.data, this.aclIdOf(n.acl), n.numChildren ?? 0);
  }

  /** The hot path of snapshot loading: no intermediate objects. */
  private put(path: string, st: StatPersisted, d: Buffer | null, aclId: number, numChildren: number): number {
    let i = this.free.pop();
    if (i === undefined) {
      if (this.top === this.cap) this.grow(this.top + 1);
      i = this.top++;
    }
    this.index.set(path, i);
    this.czxid[i] = st.czxid;
    this.mzxid[i] = st.mzxid;
    this.pzxid[i] = st.pzxid;
    this.ctime[i] = st.ctime;
    this.mtime[i] = st.mtime;
    this.version[i] = st.version;
    this.cversion[i] = st.cversion;
    this.aversion[i] = st.aversion;
    const owner = st.ephemeralOwner;
    this.owner[i] = owner;
    this.children[i] = numChildren;
    if (d !== null && d.length > 0) {
      this.dataLen[i] = d.length;
      this.dataCrc[i] = crc32(d);
    } else {
      this.dataLen[i] = 0;
      this.dataCrc[i] = 0;
    }
    if (this.keepData) this.data[i] = d ? Buffer.from(d) : null;
    this.aclId[i] = aclId;
    if (owner !== ZERO) this.addEphemeral(owner, path);
    return i;
  }

  private removeSlot(path: string, i: number): void {
    this.index.delete(path);
    if (this.keepData) this.data[i] = null;
    this.free.push(i);
  }

  private addEphemeral(owner: bigint, path: string): void {
    if (owner === ZERO || owner === CONTAINER_EPHEMERAL_OWNER || isTtlOwner(owner)) return;
    let set = this.ephemerals.get(owner);
    if (!set) this.ephemerals.set(owner, (set = new Set()));
    set.add(path);
  }

  /** Loads a snapshot; lastZxid is the zxid in its file name (the zxid replay starts after). */
  static async fromSnapshot(file: string, opts: ReadOptions & { keepData?: boolean; snapZxid?: number } = {}): Promise<DataTree> {
    const tree = new DataTree(opts);
    // ACL cache keys of this file → the tree's own ACL ids (-1 is the open ACL, never stored).
    const acls = new Map<number, number>([[-1, tree.aclIdOf(aclToText([{ perms: 31, id: { scheme: 'world', id: 'anyone' } }]))]]);
    const index = tree.index;
    // Pre-order: siblings come one after another, so the last parent looked up is usually the next one.
    let lastParent = '\u0000';
    let lastParentSlot = -1;
    tree.snapshot = await readSnapshot(
      file,
      {
        session: (id, to) => {
          tree.sessions.set(id, to);
        },
        acl: (key, list) => {
          acls.set(key, tree.aclIdOf(aclToText(list)));
        },
        node: (n) => {
          const path = n.path;
          if (path !== '') {
            const parentPath = path.substring(0, path.lastIndexOf('/'));
            let parent = lastParentSlot;
            if (parentPath !== lastParent) {
              const p = index.get(parentPath);
              if (p === undefined) throw new MalformedFileError(file, n.offset, `the parent of ${path} before it (pre-order)`, 'no such node was read');
              parent = lastParentSlot = p;
              lastParent = parentPath;
            }
            tree.children[parent]!++;
          }
          const acl = acls.get(n.aclKey);
          if (acl === undefined) throw new MalformedFileError(file, n.offset + 4, `an ACL key of the ACL cache for ${path || '/'}`, `got ${n.aclKey}`);
          tree.put(path, n.stat, n.data, acl, 0);
        },
      },
      opts,
    );
    tree.suspect = tree.snapshot.suspect;
    tree.lastZxid = opts.snapZxid ?? tree.snapshot.maxNodeZxid;
    return tree;
  }

  private createNode(path: string, data: Buffer | null, acl: ACL[], owner: bigint, parentCVersion: number, zxid: number, time: number): number {
    const parent = this.index.get(parentOf(path));
    if (parent === undefined) return NONODE;
    if (this.index.has(path)) return NODEEXISTS;
    if (parentCVersion === -1) parentCVersion = this.cversion[parent]! + 1;
    if (parentCVersion > this.cversion[parent]!) {
      this.cversion[parent] = parentCVersion;
      this.pzxid[parent] = zxid;
    }
    this.children[parent]!++;
    this.addNode(path, {
      czxid: zxid,
      mzxid: zxid,
      ctime: time,
      mtime: time,
      version: 0,
      cversion: 0,
      aversion: 0,
      ephemeralOwner: owner,
      pzxid: zxid,
      data,
      acl: aclToText(acl),
    });
    return 0;
  }

  private deleteNode(path: string, zxid: number): number {
    const parent = this.index.get(parentOf(path));
    if (parent === undefined) return NONODE;
    // ZooKeeper moves the parent's pzxid even when the child is already gone (fuzzy snapshot).
    if (zxid > this.pzxid[parent]!) this.pzxid[parent] = zxid;
    const i = this.index.get(path);
    if (i === undefined) return NONODE;
    this.children[parent]!--;
    const owner = this.owner[i]!;
    if (owner !== ZERO) this.ephemerals.get(owner)?.delete(path);
    this.removeSlot(path, i);
    return 0;
  }

  /** Applies one transaction as ZooKeeper's replay does; errors are returned, not thrown. */
  apply(h: TxnHeader, rec: TxnRecord | null): ApplyResult {
    const res = this.applyOne(h, h.type, rec);
    if (h.zxid > this.lastZxid) this.lastZxid = h.zxid;
    return res;
  }

  applyEntry(e: TxnEntry): ApplyResult {
    return this.apply(e.header, e.record);
  }

  private applyOne(h: TxnHeader, type: number, rec: TxnRecord | null): ApplyResult {
    const zxid = h.zxid;
    if (rec === null) {
      if (type === OpCode.closeSession) return this.closeSession(h.clientId, zxid, null);
      return { err: 0, paths: [] };
    }
    switch (rec.kind) {
      case 'create': {
        const owner = rec.ephemeral ? h.clientId : ZERO;
        const err = this.createNode(rec.path, rec.data, rec.acl, owner, rec.parentCVersion, zxid, h.time);
        if (err === NODEEXISTS && type === OpCode.create) {
          // DataTree.processTxn: the node was re-created in the fuzzy window; fix the parent.
          const parent = this.index.get(parentOf(rec.path));
          if (parent !== undefined) {
            const cv = rec.parentCVersion === -1 ? this.cversion[parent]! + 1 : rec.parentCVersion;
            if (cv > this.cversion[parent]!) {
              this.cversion[parent] = cv;
              this.pzxid[parent] = zxid;
            }
          }
        }
        return { err, paths: [rec.path] };
      }
      case 'createContainer':
        return { err: this.createNode(rec.path, rec.data, rec.acl, CONTAINER_EPHEMERAL_OWNER, rec.parentCVersion, zxid, h.time), paths: [rec.path] };
      case 'createTTL':
        return { err: this.createNode(rec.path, rec.data, rec.acl, ttlOwner(rec.ttl), rec.parentCVersion, zxid, h.time), paths: [rec.path] };
      case 'delete':
        return { err: this.deleteNode(rec.path, zxid), paths: [rec.path] };
      case 'setData': {
        const i = this.slotOf(rec.path);
        if (i === undefined) return { err: NONODE, paths: [rec.path] };
        const d = rec.data;
        this.dataLen[i] = d ? d.length : 0;
        this.dataCrc[i] = d && d.length > 0 ? crc32(d) : 0;
        if (this.keepData) this.data[i] = d;
        this.mtime[i] = h.time;
        this.mzxid[i] = zxid;
        this.version[i] = rec.version;
        return { err: 0, paths: [rec.path] };
      }
      case 'setACL': {
        const i = this.slotOf(rec.path);
        if (i === undefined) return { err: NONODE, paths: [rec.path] };
        this.aversion[i] = rec.version;
        this.aclId[i] = this.aclIdOf(aclToText(rec.acl));
        return { err: 0, paths: [rec.path] };
      }
      case 'createSession':
        this.sessions.set(h.clientId, rec.timeOut);
        return { err: 0, paths: [] };
      case 'closeSession':
        return this.closeSession(h.clientId, zxid, rec.paths2Delete);
      case 'error':
        return { err: rec.err, paths: [] };
      case 'check':
        return { err: 0, paths: [rec.path] };
      case 'multi': {
        const failed = rec.txns.some((t) => t.type === OpCode.error);
        const paths: string[] = [];
        let err = 0;
        if (failed) {
          // A failed multi changes nothing; its result is the first real error code.
          for (const t of rec.txns) if (t.record.kind === 'error' && t.record.err !== 0) return { err: t.record.err, paths };
          return { err: -1, paths };
        }
        for (const t of rec.txns) {
          const r = this.applyOne(h, t.type, t.record);
          paths.push(...r.paths);
          if (r.err !== 0 && err === 0) err = r.err;
        }
        return { err, paths };
      }
    }
  }

  private closeSession(session: bigint, zxid: number, paths2Delete: string[] | null): ApplyResult {
    this.sessions.delete(session);
    const paths: string[] = [];
    if (paths2Delete) {
      for (const p of paths2Delete) if (this.deleteNode(p, zxid) === 0) paths.push(p);
    }
    const local = this.ephemerals.get(session);
    this.ephemerals.delete(session);
    if (local) {
      for (const p of [...local]) if (this.deleteNode(p, zxid) === 0) paths.push(p);
    }
    return { err: 0, paths };
  }

  /**
   * Compares slot i of this tree with slot j of another, column by column. Returns the fields
   * that differ (dataCrc reported as "data"); `skip` names fields not to compare.
   */
  differingFields(i: number, other: DataTree, j: number, skip?: ReadonlySet<string>): string[] {
    const out: string[] = [];
    const o = other;
    if (this.czxid[i] !== o.czxid[j]) out.push('czxid');
    if (this.mzxid[i] !== o.mzxid[j]) out.push('mzxid');
    if (this.ctime[i] !== o.ctime[j]) out.push('ctime');
    if (this.mtime[i] !== o.mtime[j]) out.push('mtime');
    if (this.version[i] !== o.version[j]) out.push('version');
    if (this.cversion[i] !== o.cversion[j]) out.push('cversion');
    if (this.aversion[i] !== o.aversion[j]) out.push('aversion');
    if (this.owner[i] !== o.owner[j]) out.push('ephemeralOwner');
    if (this.pzxid[i] !== o.pzxid[j]) out.push('pzxid');
    if (this.dataLen[i] !== o.dataLen[j]) out.push('dataLength');
    if (this.dataCrc[i] !== o.dataCrc[j]) out.push('data');
    if (this.aclTexts[this.aclId[i]!] !== o.aclTexts[o.aclId[j]!]) out.push('acl');
    if (this.children[i] !== o.children[j]) out.push('numChildren');
    return skip ? out.filter((f) => !skip.has(f)) : out;
  }

  /** Paths sorted, parents before their children. */
  sortedPaths(): string[] {
    return [...this.index.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
