/**
 * Bundle discovery: which files belong to which node and service, in what format, with which
 * year for year-less glog lines, and which directories are ZooKeeper data directories.
 * The layout is documented in docs/bundle.md; anything else is still read, by content.
 */
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, readdirSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import { isGzip, sniff, SNIFF_BYTES, type FileKind, type Sniffed } from './sniff.ts';

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

export interface BundleConfig {
  nodes?: Record<string, { addresses?: string[]; myid?: number }>;
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
        re += `(?:${glob.slice(i + 1, end).split(',').map((p) => p.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*')).join('|')})`;
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

function walk(dir: string, out: string[], depth = 0): void {
  if (depth > 32) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  names.sort();
  for (const n of names) {
    const p = join(dir, n);
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out, depth + 1);
    else if (st.isFile()) out.push(p);
  }
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
  if (staticParts.length === parts.length) {
    if (!existsSync(start)) return [];
    const st = statSync(start);
    if (st.isFile()) return [start];
    const out: string[] = [];
    walk(start, out);
    return out;
  }
  const re = globToRegExp(abs);
  const out: string[] = [];
  walk(start, out);
  return out.filter((f) => re.test(f.split(sep).join('/')));
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

function firstBytes(path: string, n: number): Buffer {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd >= 0) closeSync(fd);
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

/** Discover a bundle: a directory of node folders, and/or explicit NAME=GLOB file lists. */
export async function planBundle(opts: { root?: string; nodeSpecs?: NodeSpec[]; cwd?: string }): Promise<BundlePlan> {
  const cwd = opts.cwd ?? process.cwd();
  const root = opts.root ? resolve(cwd, opts.root) : cwd;
  const plan: BundlePlan = {
    root, nodes: [], sharedNodes: [], files: [], dataDirs: [], config: {}, zkServers: new Map(), myids: new Map(), warnings: [],
  };
  const assigned: { abs: string; rel: string; node: string }[] = [];
  if (opts.nodeSpecs && opts.nodeSpecs.length > 0) {
    for (const spec of opts.nodeSpecs) {
      const files = expandGlob(spec.glob, opts.root ? root : cwd);
      if (files.length === 0) throw new BundleError(`--node ${spec.name}=${spec.glob}: no file matches`);
      for (const f of files) assigned.push({ abs: f, rel: relative(opts.root ? root : cwd, f), node: spec.name });
      if (!plan.nodes.includes(spec.name)) plan.nodes.push(spec.name);
    }
  } else {
    if (!existsSync(root)) throw new BundleError(`bundle ${root}: no such directory`);
    if (!statSync(root).isDirectory()) throw new BundleError(`bundle ${root}: not a directory (give a folder with one sub-folder per node, or --node NAME=GLOB)`);
    const cfgPath = join(root, 'bundle.json');
    if (existsSync(cfgPath)) {
      try {
        plan.config = JSON.parse(readFileSync(cfgPath, 'utf8')) as BundleConfig;
      } catch (e) {
        throw new BundleError(`${cfgPath}: not valid JSON (${(e as Error).message})`);
      }
    }
    const entries = readdirSync(root).sort();
    const dirs = entries.filter((n) => !n.startsWith('.') && statSync(join(root, n)).isDirectory());
    const topFiles = entries.filter((n) => n !== 'bundle.json' && !n.startsWith('.') && statSync(join(root, n)).isFile());
    if (dirs.length === 0) {
      const name = basename(root);
      plan.nodes.push(name);
      for (const f of topFiles) assigned.push({ abs: join(root, f), rel: f, node: name });
    } else {
      for (const d of dirs) {
        if (d.startsWith('_')) plan.sharedNodes.push(d);
        else plan.nodes.push(d);
        const files: string[] = [];
        walk(join(root, d), files);
        for (const f of files) assigned.push({ abs: f, rel: relative(root, f), node: d });
      }
      if (topFiles.length > 0) {
        plan.sharedNodes.push('_bundle');
        for (const f of topFiles) assigned.push({ abs: join(root, f), rel: f, node: '_bundle' });
      }
    }
  }

  // Data directories: a `version-2` folder with snapshots or transaction logs.
  const dataDirOf = new Map<string, DataDir>();
  for (const a of assigned) {
    const parent = dirname(a.abs);
    const name = basename(a.abs);
    if (basename(parent) === 'version-2' && /^(snapshot|log)\.[0-9a-fA-F]+/.test(name)) {
      const dd = dirname(parent);
      let d = dataDirOf.get(dd);
      if (!d) {
        d = { node: a.node, path: dd, rel: relative(root, dd) || '.', snapshots: [], txnLogs: [] };
        dataDirOf.set(dd, d);
        const myidFile = join(dd, 'myid');
        if (existsSync(myidFile)) {
          const v = Number(readFileSync(myidFile, 'utf8').trim());
          if (Number.isInteger(v)) d.myid = v;
        }
      }
      (name.startsWith('snapshot') ? d.snapshots : d.txnLogs).push(name);
    }
  }
  plan.dataDirs = [...dataDirOf.values()];
  for (const d of plan.dataDirs) if (d.myid !== undefined) plan.myids.set(d.node, d.myid);

  for (const a of assigned) {
    const inData = [...dataDirOf.keys()].some((dd) => a.abs.startsWith(dd + sep));
    const name = basename(a.abs);
    if (inData || name === 'myid' || name === 'acceptedEpoch' || name === 'currentEpoch' || name.endsWith('.lock')) {
      if (name === 'myid' && !inData) {
        const v = Number(firstBytes(a.abs, 16).toString('utf8').trim());
        if (Number.isInteger(v) && v > 0) plan.myids.set(a.node, v);
      }
      continue;
    }
    let st: Stats;
    try {
      st = statSync(a.abs);
    } catch (e) {
      plan.warnings.push(`${a.rel}: cannot stat (${(e as Error).message})`);
      continue;
    }
    const gzip = isGzip(firstBytes(a.abs, 2));
    const head = await readHead(a.abs, gzip);
    const sn = sniff(head);
    if (sn.kind === 'zk-config' || /(^|\/)zoo[^/]*\.cfg(\.dynamic.*)?$/.test(a.rel)) {
      parseZooCfg(head.toString('utf8'), plan.zkServers);
    }
    plan.files.push({
      abs: a.abs, rel: a.rel, node: a.node, service: serviceOf(a.rel, sn.kind, sn), size: st.size,
      mtimeMs: st.mtimeMs, gzip, kind: sn.kind, sniff: sn,
    });
  }
  plan.files.sort((x, y) => {
    if (x.node !== y.node) return x.node < y.node ? -1 : 1;
    const [bx, nx] = rotationKey(x.rel);
    const [by, ny] = rotationKey(y.rel);
    if (bx !== by) return bx < by ? -1 : 1;
    return ny - nx;
  });
  if (plan.files.length === 0 && plan.dataDirs.length === 0) {
    throw new BundleError(`bundle ${root}: no files found`);
  }
  return plan;
}
