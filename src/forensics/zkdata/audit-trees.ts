/**
 * The audit's tree comparison: the members' trees rebuilt at one zxid and compared node by
 * node (every Stat field, data by CRC-32, ACL), one tree beside the reference at a time, in
 * bounded memory: no object per node unless it differs.
 */
import { CONTAINER_EPHEMERAL_OWNER, isTtlOwner, sessionHex } from '../../zk/records.ts';
import { OpCode } from '../../zk/txn.ts';
import type { Finding, MemberFacts, NodeDiff, NodeVariant } from './audit.ts';
import { oddMembers } from './audit-txns.ts';
import { type DataDir, type DataFile } from './datadir.ts';
import { hexZxid, isoTime } from './format.ts';
import { groupByPattern } from './group.ts';
import { describeRelog } from './history.ts';
import { treeAt } from './replay.ts';
import { detectOrphanEphemerals, type Signature } from './signatures.ts';
import { COMPARED_FIELDS, type DataTree, type ZNode } from './tree.ts';

/** What a tree comparison works on: the members and what it records about them on its first pass. */
export interface TreeContext {
  dds: DataDir[];
  facts: MemberFacts[];
  names: string[];
  force?: boolean;
  limit: number;
  /** Filled by the first pass: ephemerals whose session is gone from their member's own session table. */
  orphanSigs: Signature[];
}

export interface TreeComparison {
  nodeDiffs: NodeDiff[];
  diffCount: number;
  nodesCompared: number;
  /** Per selected member, the snapshot its tree was rebuilt from. */
  snaps: (DataFile | null)[];
}

/**
 * /zookeeper/config is written by each server from its own configuration file (its data, its
 * mtime), outside the transaction log, so it is not compared. Reconfig transactions, which do
 * change it through the log, are still compared with the histories.
 */
const LOCAL_PATHS: ReadonlySet<string> = new Set(['/zookeeper/config']);
const LOCAL_FIELDS = new Map<string, ReadonlySet<string>>([['/zookeeper/config', new Set(['mtime'])]]);

/**
 * Rebuilds the trees of the selected members at `at` and compares each with the first, one
 * tree beside the reference at a time. The first pass (all members) also records each
 * member's figures and its ephemerals whose session is gone.
 */
export async function compareTreesAt(ctx: TreeContext, sel: number[], at: number, firstPass: boolean): Promise<TreeComparison> {
  const { dds, facts, names } = ctx;
  const diffs = new Map<string, (ZNode | undefined | null)[]>();
  const snaps: (DataFile | null)[] = [];
  const sessionsOf: Map<bigint, number>[] = [];
  let ref: DataTree | null = null;
  let nodesCompared = 0;
  for (let k = 0; k < sel.length; k++) {
    const i = sel[k]!;
    const closes = new Map<bigint, number>();
    const res = await treeAt(dds[i]!, at, {
      force: ctx.force,
      onTxn: (e) => {
        if (e.header.type === OpCode.closeSession) closes.set(e.header.clientId, e.header.zxid);
      },
    });
    const t = res.tree;
    snaps.push(res.snapshot);
    if (t.suspect) facts[i]!.suspect = true;
    sessionsOf.push(t.sessions);
    if (firstPass) {
      facts[i]!.nodeCount = t.size;
      facts[i]!.sessionCount = t.sessions.size;
      // Re-logged runs are reported once, from the whole history; a replay from a snapshot sees only part of one.
      const partial = new Set(res.report.relogs.map(describeRelog));
      facts[i]!.warnings.push(...res.warnings.filter((w) => !partial.has(w) && !facts[i]!.warnings.includes(w)));
      // Ephemerals whose session is gone from this member's own session table.
      const orphans: { path: string; owner: string; closedAt: number | null }[] = [];
      for (const [owner, paths] of t.ephemerals) {
        if (paths.size === 0 || t.sessions.has(owner)) continue;
        for (const p of paths) orphans.push({ path: p, owner: sessionHex(owner), closedAt: closes.get(owner) ?? null });
      }
      const sig = detectOrphanEphemerals(names[i]!, orphans);
      if (sig) ctx.orphanSigs.push(sig);
    }
    if (k === 0) {
      ref = t;
      nodesCompared = t.size;
      continue;
    }
    const r = ref!;
    // Column by column over the slots: no object per node unless it differs.
    for (const [path, si] of r.slots()) {
      if (LOCAL_PATHS.has(path)) continue;
      const sj = t.slotOf(path);
      if (sj === undefined || r.differingFields(si, t, sj, LOCAL_FIELDS.get(path)).length > 0) {
        let row = diffs.get(path);
        if (!row) diffs.set(path, (row = new Array(sel.length).fill(undefined)));
        row[0] = r.node(si);
        row[k] = sj === undefined ? null : t.node(sj);
      }
    }
    for (const [path, sj] of t.slots()) {
      if (r.slotOf(path) !== undefined || LOCAL_PATHS.has(path)) continue;
      let row = diffs.get(path);
      if (!row) diffs.set(path, (row = new Array(sel.length).fill(undefined)));
      row[0] = null;
      row[k] = t.node(sj);
    }
  }
  const selNames = sel.map((i) => names[i]!);
  const nodeDiffs: NodeDiff[] = [];
  for (const [path, row] of diffs) {
    if (nodeDiffs.length >= ctx.limit) break;
    // undefined = same as the reference member.
    const nodes = row.map((n) => (n === undefined ? row[0] : n)) as (ZNode | null)[];
    const variants = nodes.map((n, k) => variantOf(selNames[k]!, n ?? undefined, sessionsOf[k]!));
    const keys = nodes.map((n) => (n ? statKey(n, path) : null));
    // A tree difference without a majority does not say who is wrong; the histories may.
    const odd = oddMembers(selNames, keys, 'none');
    const present = nodes.map((n, k) => (n ? selNames[k]! : null)).filter((x): x is string => x !== null);
    const fields = new Set<string>();
    const existing = nodes.filter((n): n is ZNode => n !== null);
    for (let k = 1; k < existing.length; k++) for (const f of differingFields(existing[0]!, existing[k]!, path)) fields.add(f);
    const kind =
      present.length < selNames.length
        ? `only on ${present.join(', ') || 'none'} (missing on ${selNames.filter((n) => !present.includes(n)).join(', ')})`
        : `differ in ${[...fields].join(', ')}`;
    const eph = existing.some((n) => isEphemeralOwner(n.ephemeralOwner));
    nodeDiffs.push({ path: path === '' ? '/' : path, kind, ephemeral: eph, variants, fields: [...fields], odd, zxid: diffZxid(variants, [...fields]) });
  }
  return { nodeDiffs, diffCount: diffs.size, nodesCompared, snaps };
}

/** Differing znodes grouped by pattern into findings (17 election znodes read as one line). */
export function findingsOf(diffs: NodeDiff[]): Finding[] {
  return groupByPattern(diffs).map((g) => ({
    pattern: g.pattern,
    kind: g.kind,
    ephemeral: g.ephemeral,
    count: g.items.length,
    text: describeGroup(g),
    paths: g.items.slice(0, 20).map((d) => d.path),
    example: g.items[0]!.variants,
  }));
}

function variantOf(member: string, n: ZNode | undefined, sessions: Map<bigint, number>): NodeVariant {
  if (!n) return { member, exists: false };
  const owner = n.ephemeralOwner;
  const isEph = isEphemeralOwner(owner);
  return {
    member,
    exists: true,
    czxid: n.czxid,
    mzxid: n.mzxid,
    pzxid: n.pzxid,
    ctime: n.ctime,
    mtime: n.mtime,
    version: n.version,
    cversion: n.cversion,
    aversion: n.aversion,
    ephemeralOwner: sessionHex(owner),
    ...(isEph ? { sessionAlive: sessions.has(owner) } : {}),
    dataLength: n.dataLength,
    numChildren: n.numChildren,
  };
}

function differingFields(a: ZNode, b: ZNode, path: string): string[] {
  const local = LOCAL_FIELDS.get(path);
  const out: string[] = [];
  for (const f of COMPARED_FIELDS) if (a[f] !== b[f] && !local?.has(f)) out.push(f === 'dataCrc' ? 'data' : f);
  return out;
}

function statKey(n: ZNode, path: string): string {
  const local = LOCAL_FIELDS.get(path);
  return COMPARED_FIELDS.map((f) => (local?.has(f) ? '' : String(n[f]))).join('|');
}

/** An ephemeralOwner that is a session: not 0, and not the marks of a container or a TTL node (ZooKeeper's EphemeralType). */
function isEphemeralOwner(owner: bigint): boolean {
  return owner !== 0n && owner !== CONTAINER_EPHEMERAL_OWNER && !isTtlOwner(owner);
}

/**
 * The zxid at which a node's difference arose: the creation of a node one side lacks, or for
 * a differing field the newest value among the members (the change the others did not get).
 */
function diffZxid(variants: NodeVariant[], fields: string[]): number {
  const exist = variants.filter((v) => v.exists);
  if (exist.length < variants.length || fields.length === 0) return Math.min(...exist.map((v) => v.czxid!));
  let z = 0;
  for (const v of exist) {
    if (fields.includes('czxid')) z = Math.max(z, v.czxid!);
    if (fields.includes('mzxid') || fields.includes('version') || fields.includes('data')) z = Math.max(z, v.mzxid!);
    if (fields.includes('pzxid') || fields.includes('cversion') || fields.includes('numChildren')) z = Math.max(z, v.pzxid!);
  }
  return z;
}

function span(values: number[], fmt: (v: number) => string): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
}

export function describeGroup(g: { pattern: string; kind: string; ephemeral: boolean; items: NodeDiff[] }): string {
  const exist = g.items.flatMap((d) => d.variants.filter((v) => v.exists));
  const parts = [`${g.pattern} (${g.items.length} znode${g.items.length === 1 ? '' : 's'}) ${g.kind}`];
  if (exist.length > 0) {
    parts.push(g.ephemeral ? 'ephemeral' : 'persistent');
    parts.push(
      `created ${span(
        exist.map((v) => v.ctime!),
        isoTime,
      )}`,
    );
    parts.push(
      `cZxid ${span(
        exist.map((v) => v.czxid!),
        hexZxid,
      )}`,
    );
    if (g.ephemeral) {
      const owners = new Map<string, Set<string>>();
      for (const v of exist) {
        const s = owners.get(v.ephemeralOwner!) ?? new Set<string>();
        s.add(`${v.member}: ${v.sessionAlive ? 'alive' : 'not in session table'}`);
        owners.set(v.ephemeralOwner!, s);
      }
      parts.push(`owner session ${[...owners].map(([o, s]) => `${o} (${[...s].join(', ')})`).join('; ')}`);
    }
  }
  return parts.join(', ');
}
