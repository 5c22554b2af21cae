/**
 * Bundle discovery: which files belong to which node and service, in what format, with which
 * year for year-less glog lines, and which directories are ZooKeeper data directories.
 * The layout is documented in docs/bundle.md; anything else is still read, by content.
 */
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, readdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import { isGzip, sniff, SNIFF_BYTES, type FileKind, type Sniffed } from './sniff.ts';
import { errnoText, Walker, type SkippedFile, type WalkedFile } from './walk.ts';

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

export interface BundleConfig {
  nodes?: Record<string, { addresses?: string[]; endpoints?: string[]; myid?: number }>;
  /** Port → role, e.g. {"10100": "meta"}. */
  ports?: Record<string, string>;
  tz?: string;
  year?: number;
}

export interface PlannedFile {
  abs: string;
  /** Path relative to the bundle root (or as given for --node files). */
  rel: string;
  node: string;
  service: string;
  size: number;
  mtimeMs: number;
  gzip: boolean;
  kind: FileKind;
  sniff: Sniffed;
  /** Files of a ZooKeeper data directory: that folder, relative to the bundle (read by the audit). */
  dataDir?: string;
  /** glog only: the year given to lines, and where it came from. */
  year?: number;
  yearSource?: string;
}

export interface DataDir {
  node: string;
  path: string;
  rel: string;
  snapshots: string[];
  txnLogs: string[];
  myid?: number;
}

export interface BundlePlan {
  root: string;
  nodes: string[];
  /** Folders named `_something`: captures not tied to one node. */
  sharedNodes: string[];
  files: PlannedFile[];
  /** Files not read, each with the reason: every file of the bundle is in files or here. */
  skipped: SkippedFile[];
  dataDirs: DataDir[];
  config: BundleConfig;
  /** sid → host from zoo.cfg files found in the bundle. */
  zkServers: Map<number, string>;
  /** node → myid from `myid` files. */
  myids: Map<string, number>;
  warnings: string[];
}

export interface NodeSpec {
  name: string;
  glob: string;
}

export function parseNodeSpec(spec: string): NodeSpec {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) {
    throw new BundleError(`--node: expected NAME=GLOB (e.g. node1='logs/n1/*.log'), got "${spec}"`);
  }
  return { name: spec.slice(0, eq), glob: spec.slice(eq + 1) };
}

/** Glob → RegExp over '/'-separated paths: `**`, `*`, `?`, `{a,b}`, `[abc]`. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${glob
          .slice(i + 1, end)
          .split(',')
          .map((p) => p.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
          .join('|')})`;
        i = end;
      }
    } else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += glob.slice(i, end + 1);
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function expandGlob(glob: string, base: string): string[] {
  const abs = (isAbsolute(glob) ? glob : resolve(base, glob)).split(sep).join('/');
  const parts = abs.split('/');
  const staticParts: string[] = [];
  for (const p of parts) {
    if (/[*?{[]/.test(p)) break;
    staticParts.push(p);
  }
  const start = staticParts.join('/') || '/';
  if (staticParts.length === parts.length) return existsSync(start) ? [start] : [];
  const re = globToRegExp(abs);
  const w = new Walker(start);
  if (existsSync(start)) w.add(start, '');
  return w.files.map((f) => f.abs).filter((f) => re.test(f.split(sep).join('/')));
}

/** Read up to SNIFF_BYTES of decompressed content. A corrupt gzip yields what inflated. */
export async function readHead(path: string, gzip: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const src = createReadStream(path, gzip ? {} : { start: 0, end: SNIFF_BYTES - 1 });
  const stream = gzip ? src.pipe(createGunzip()) : src;
  try {
    for await (const c of stream as AsyncIterable<Buffer>) {
      chunks.push(c);
      n += c.length;
      if (n >= SNIFF_BYTES) break;
    }
  } catch {
    // truncated/corrupt gzip: keep what we have
  } finally {
    src.destroy();
    if (stream !== src) (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
  }
  return Buffer.concat(chunks).subarray(0, SNIFF_BYTES);
}

/** The first n bytes; throws the open/read error (EACCES, EISDIR...) for the caller to account. */
function firstBytes(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** The service a file belongs to: ZooKeeper for its logs, else the program name in the file name. */
export function serviceOf(rel: string, kind: FileKind, sn: Sniffed): string {
  const name = basename(rel).replace(/\.gz$/, '');
  if (kind === 'log4j' && (sn.myid !== undefined || /zoo|zk/i.test(rel))) return 'zookeeper';
  if (kind === 'log4j' && /zookeeper/i.test(rel)) return 'zookeeper';
  const prog = name.split('.')[0] ?? name;
  if (/^(zookeeper|zk)([-_].*)?$/i.test(prog)) return 'zookeeper';
  return prog || name;
}

/** Sort key putting older rotations first: `x.log.3.gz` < `x.log.2` < `x.log.1` < `x.log`. */
function rotationKey(rel: string): [string, number] {
  const m = /^(.*?)(?:\.(\d{1,3}))?(?:\.gz)?$/.exec(rel)!;
  return [m[1]!, m[2] === undefined ? -1 : Number(m[2])];
}

function parseZooCfg(text: string, servers: Map<number, string>): void {
  for (const line of text.split('\n')) {
    const m = /^\s*server\.(\d+)\s*=\s*\[?([^\]:\s]+)\]?:/.exec(line);
    if (m) servers.set(Number(m[1]), m[2]!);
  }
}

/** ZooKeeper's own files in a data directory (version-2/ and beside it). */
const DATA_FILE = /^(snapshot|log)\.[0-9a-fA-F]+(\.gz|\.snappy)?$/;
const DATA_SIDE_FILES: ReadonlySet<string> = new Set(['myid', 'acceptedEpoch', 'currentEpoch', 'updatingEpoch', 'zookeeper_server.pid']);

/** The kind of a file of a data directory, by its name (the audit reads them by content). */
function dataKind(name: string): FileKind {
  if (name.startsWith('snapshot.')) return 'zk-snapshot';
  if (name.startsWith('log.')) return 'zk-txnlog';
  return 'zk-state';
}

function bundleError(path: string, e: unknown): BundleError {
  return new BundleError(`${path}: ${errnoText(e)}`);
}

/**
 * The folder holding a ZooKeeper data file, if it is one: `version-2/` anywhere (beside logs,
 * nested deep), or any folder whose `snapshot.*`/`log.*` files carry ZooKeeper's magic.
 */
function dataFolderOf(f: WalkedFile): string | null {
  const name = basename(f.abs);
  if (!DATA_FILE.test(name)) return null;
  const parent = dirname(f.abs);
  if (basename(parent) === 'version-2') return parent;
  try {
    const magic = firstBytes(f.abs, 4);
    if (magic.length === 4 && (magic.readUInt32BE(0) === 0x5a4b534e || magic.readUInt32BE(0) === 0x5a4b4c47)) return parent;
  } catch {
    // unreadable: accounted below like any other file
  }
  return null;
}

/** Discover a bundle: a directory of node folders, and/or explicit NAME=GLOB file lists. */
export async function planBundle(opts: { root?: string; nodeSpecs?: NodeSpec[]; cwd?: string }): Promise<BundlePlan> {
  const cwd = opts.cwd ?? process.cwd();
  const root = opts.root ? resolve(cwd, opts.root) : cwd;
  const plan: BundlePlan = {
    root,
    nodes: [],
    sharedNodes: [],
    files: [],
    skipped: [],
    dataDirs: [],
    config: {},
    zkServers: new Map(),
    myids: new Map(),
    warnings: [],
  };
  const base = opts.root || !opts.nodeSpecs?.length ? root : cwd;
  const walker = new Walker(base);
  if (opts.nodeSpecs && opts.nodeSpecs.length > 0) {
    for (const spec of opts.nodeSpecs) {
      const files = expandGlob(spec.glob, base);
      if (files.length === 0) throw new BundleError(`--node ${spec.name}=${spec.glob}: no file matches`);
      for (const f of files) walker.add(f, spec.name);
      if (!plan.nodes.includes(spec.name)) plan.nodes.push(spec.name);
    }
  } else {
    let st: Stats;
    try {
      st = statSync(root);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BundleError(`bundle ${root}: no such directory`);
      throw bundleError(`bundle ${root}`, e);
    }
    if (!st.isDirectory()) throw new BundleError(`bundle ${root}: not a directory (give a folder with one sub-folder per node, or --node NAME=GLOB)`);
    let entries: string[];
    try {
      entries = readdirSync(root).sort();
    } catch (e) {
      throw bundleError(`bundle ${root}`, e);
    }
    const cfgPath = join(root, 'bundle.json');
    if (existsSync(cfgPath)) {
      try {
        plan.config = JSON.parse(readFileSync(cfgPath, 'utf8')) as BundleConfig;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code) throw bundleError(cfgPath, e);
        throw new BundleError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
      }
    }
    const isDir = (n: string): boolean => {
      try {
        return statSync(join(root, n)).isDirectory();
      } catch {
        return false;
      }
    };
    const visible = entries.filter((n) => !n.startsWith('.') && n !== 'bundle.json');
    // version-2/ at the top is the data of a one-node bundle, not a node.
    const dirs = visible.filter((n) => n !== 'version-2' && isDir(n));
    const rest = visible.filter((n) => !dirs.includes(n));
    if (dirs.length === 0) {
      const name = basename(root);
      plan.nodes.push(name);
      for (const f of rest) walker.add(join(root, f), name);
    } else {
      for (const d of dirs) {
        if (d.startsWith('_')) plan.sharedNodes.push(d);
        else plan.nodes.push(d);
        walker.add(join(root, d), d);
      }
      if (rest.length > 0) {
        plan.sharedNodes.push('_bundle');
        for (const f of rest) walker.add(join(root, f), '_bundle');
      }
    }
  }
  plan.skipped.push(...walker.skipped);

  // Data directories: the folder above version-2/ (or the folder of bare data files).
  const dataDirOf = new Map<string, DataDir>();
  const dataFolder = new Map<WalkedFile, string>();
  for (const f of walker.files) {
    const folder = dataFolderOf(f);
    if (!folder) continue;
    dataFolder.set(f, folder);
    const dd = basename(folder) === 'version-2' ? dirname(folder) : folder;
    let d = dataDirOf.get(dd);
    if (!d) {
      d = { node: f.node, path: dd, rel: relative(base, dd) || '.', snapshots: [], txnLogs: [] };
      dataDirOf.set(dd, d);
    }
    (basename(f.abs).startsWith('snapshot') ? d.snapshots : d.txnLogs).push(basename(f.abs));
  }
  const dataFolders = new Set([...dataDirOf.keys()].flatMap((dd) => [dd, join(dd, 'version-2')]));
  for (const f of walker.files) {
    const name = basename(f.abs);
    const folder = dirname(f.abs);
    if (dataFolder.has(f) || (dataFolders.has(folder) && DATA_SIDE_FILES.has(name)) || (basename(folder) === 'version-2' && dataFolders.has(folder))) {
      if (name === 'myid') {
        try {
          const v = Number(firstBytes(f.abs, 16).toString('utf8').trim());
          const d = dataDirOf.get(folder);
          if (Number.isInteger(v) && v > 0) {
            plan.myids.set(f.node, v);
            if (d) d.myid = v;
          }
        } catch (e) {
          plan.skipped.push({ rel: f.rel, node: f.node, reason: 'unreadable', detail: errnoText(e) });
          continue;
        }
      }
      plan.files.push({
        abs: f.abs,
        rel: f.rel,
        node: f.node,
        service: 'zookeeper',
        size: f.st.size,
        mtimeMs: f.st.mtimeMs,
        gzip: false,
        kind: dataKind(name),
        sniff: { kind: dataKind(name), parsedShare: 0 },
        dataDir: relative(base, dataFolder.get(f) ?? folder) || '.',
      });
      continue;
    }
    if (name === 'myid') {
      try {
        const v = Number(firstBytes(f.abs, 16).toString('utf8').trim());
        if (Number.isInteger(v) && v > 0) plan.myids.set(f.node, v);
      } catch {
        // accounted below when it cannot be opened
      }
    }
    let gzip: boolean;
    let head: Buffer;
    try {
      gzip = isGzip(firstBytes(f.abs, 2));
      head = await readHead(f.abs, gzip);
    } catch (e) {
      plan.skipped.push({ rel: f.rel, node: f.node, reason: 'unreadable', detail: errnoText(e) });
      continue;
    }
    const sn = sniff(head);
    if (sn.kind === 'binary') {
      plan.skipped.push({
        rel: f.rel,
        node: f.node,
        reason: 'binary',
        detail: `binary content${gzip ? ' (inside gzip)' : ''}, ${f.st.size} bytes: no log lines`,
      });
      continue;
    }
    if (sn.kind === 'zk-config' || /(^|\/)zoo[^/]*\.cfg(\.dynamic.*)?$/.test(f.rel)) {
      parseZooCfg(head.toString('utf8'), plan.zkServers);
    }
    plan.files.push({
      abs: f.abs,
      rel: f.rel,
      node: f.node,
      service: serviceOf(f.rel, sn.kind, sn),
      size: f.st.size,
      mtimeMs: f.st.mtimeMs,
      gzip,
      kind: sn.kind,
      sniff: sn,
    });
  }
  // A node's snapshots and logs in two folders (dataDir and dataLogDir) are one member.
  const byNode = new Map<string, DataDir[]>();
  for (const d of dataDirOf.values()) byNode.set(d.node, [...(byNode.get(d.node) ?? []), d]);
  for (const [, dds] of byNode) {
    const snapOnly = dds.filter((d) => d.txnLogs.length === 0);
    const logOnly = dds.filter((d) => d.snapshots.length === 0);
    if (dds.length === 2 && snapOnly.length === 1 && logOnly.length === 1) {
      const s = snapOnly[0]!;
      const l = logOnly[0]!;
      plan.dataDirs.push({
        node: s.node,
        path: `${s.path}:${l.path}`,
        rel: `${s.rel} + ${l.rel}`,
        snapshots: s.snapshots,
        txnLogs: l.txnLogs,
        ...((s.myid ?? l.myid) ? { myid: (s.myid ?? l.myid)! } : {}),
      });
    } else plan.dataDirs.push(...dds);
  }
  for (const d of plan.dataDirs) if (d.myid !== undefined) plan.myids.set(d.node, d.myid);

  plan.files.sort((x, y) => {
    if (x.node !== y.node) return x.node < y.node ? -1 : 1;
    const [bx, nx] = rotationKey(x.rel);
    const [by, ny] = rotationKey(y.rel);
    if (bx !== by) return bx < by ? -1 : 1;
    return ny - nx;
  });
  return plan;
}
