/**
 * The incident bundle a run leaves (`--keep DIR`), in the layout `zkwarden investigate` reads
 * (docs/bundle.md), and beside it — never inside it — the run's own record of what was injected
 * when, so the investigation can be checked blind:
 *
 *   DIR/bundle/bundle.json                 zone, year, node addresses, port roles
 *   DIR/bundle/nodeN/zbs-metad.INFO …      each service's glog log (times preserved)
 *   DIR/bundle/nodeN/zookeeper/            zookeeper.log, zoo.cfg, data/{myid,version-2/}
 *   DIR/bundle/nodeN/stat.txt              GNU `stat` of every file copied (their mtimes)
 *   DIR/bundle/nodeN/captures/{srvr,mntr,dump}.txt
 *   DIR/injections.json                    the steps and the lab's events: what, where, when
 *   DIR/observer.json                      the observer's samples
 *   DIR/result.json                        the run's result (metrics, safety, expectations)
 *
 * Everything is read from the nodes' backing directories, after every fault is healed: a file on
 * a stalled disk is never touched (reading it would hang the runner with the node).
 */
import { cpSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Cluster } from '../cluster/cluster.ts';
import { LOG_FILES, META_PORT, SERVICES } from '../cluster/config.ts';
import { LabUsageError, run } from '../host.ts';
import { backingPath } from './observer.ts';

export interface Captures {
  /** server id → word → text (or the error). */
  [server: number]: Record<'srvr' | 'mntr' | 'dump', string>;
}

/** srvr, mntr and dump of every server (bounded; a server that does not answer gets its error). */
export async function captureServers(cluster: Cluster): Promise<Captures> {
  const out: Captures = {};
  await Promise.all(
    cluster.ensemble.servers.map(async (s) => {
      const words: Record<string, string> = {};
      for (const w of ['srvr', 'mntr', 'dump'] as const) {
        try {
          words[w] = await cluster.ensemble.fourLetter(s.id, w, 3000);
        } catch (e) {
          words[w] = `(no answer: ${(e as Error).message})\n`;
        }
      }
      out[s.id] = words as Record<'srvr' | 'mntr' | 'dump', string>;
    }),
  );
  return out;
}

function tzOffset(): string {
  const m = -new Date().getTimezoneOffset();
  const a = Math.abs(m);
  return `${m < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** The files of one node that go into the bundle: [backing path, path in the bundle's node folder]. */
function nodeFiles(cluster: Cluster, index: number): [string, string][] {
  const node = cluster.lab.node(index);
  const out: [string, string][] = [];
  for (const kind of SERVICES) {
    const dir = backingPath(node, cluster.serviceDir(node, kind));
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (name === LOG_FILES[kind] || /-watchdog\.log$/.test(name)) out.push([join(dir, name), name]);
    }
  }
  const s = cluster.ensemble.server(index);
  for (const f of ['zookeeper.log', 'zoo.cfg']) {
    const p = backingPath(node, join(s.dir, f));
    if (existsSync(p)) out.push([p, join('zookeeper', f)]);
  }
  return out;
}

/** Writes the bundle into `dir/bundle`; returns its path. */
export async function writeBundle(cluster: Cluster, dir: string, captures: Captures): Promise<string> {
  const root = join(dir, 'bundle');
  mkdirSync(root, { recursive: true });
  const nodes: Record<string, { addresses: string[]; myid: number }> = {};
  for (const s of cluster.ensemble.servers) {
    const node = cluster.lab.node(s.id);
    const out = join(root, node.name);
    mkdirSync(join(out, 'zookeeper'), { recursive: true });
    nodes[node.name] = { addresses: [node.ip], myid: s.id };
    const files = nodeFiles(cluster, s.id);
    for (const [from, to] of files) cpSync(from, join(out, to), { preserveTimestamps: true });
    const data = backingPath(node, s.dataDir);
    if (existsSync(data)) cpSync(data, join(out, 'zookeeper', 'data'), { recursive: true, preserveTimestamps: true });
    // The node's own `stat` of its files (GNU format): their mtimes, the evidence of a last write.
    const backingRoot = backingPath(node, node.disk.root);
    // Log files only: a configuration written once at start is no sign of life.
    const logs = files.filter(([, to]) => !to.endsWith('zoo.cfg'));
    const rel = logs.map(([from]) => relative(backingRoot, from));
    if (rel.length) {
      const st = await run('stat', ['--', ...logs.map(([from]) => from)], { timeoutMs: 10_000, allowFailure: true });
      // Named as on the node (relative to its disk), not by the lab's backing directory.
      writeFileSync(join(out, 'stat.txt'), `$ stat ${rel.join(' ')}\n${st.stdout.split(`${backingRoot}/`).join('')}`);
    }
    mkdirSync(join(out, 'captures'), { recursive: true });
    for (const [w, text] of Object.entries(captures[s.id] ?? {})) writeFileSync(join(out, 'captures', `${w}.txt`), text);
  }
  const bundleJson = { tz: tzOffset(), year: new Date().getFullYear(), nodes, ports: { [String(META_PORT)]: 'meta' } };
  writeFileSync(join(root, 'bundle.json'), `${JSON.stringify(bundleJson, null, 2)}\n`);
  return root;
}

/** Writes a JSON record beside the bundle. */
export function writeRecord(dir: string, name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`);
  return file;
}

/** Refuses a --keep directory that already holds a run (a bundle must be one run's). */
export function checkKeepDir(dir: string): void {
  const b = join(dir, 'bundle');
  if (existsSync(b) && statSync(b).isDirectory() && readdirSync(b).length > 0) {
    throw new LabUsageError(`--keep ${dir}: ${b} already holds a bundle (a bundle is one run's): give a new directory`);
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new LabUsageError(`--keep ${dir}: not a directory`);
}
