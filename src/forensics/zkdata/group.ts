/**
 * Groups differing znodes into findings by pattern, so that 17 election znodes under one parent
 * read as one line: the paths of a group share every component but those replaced by `*`.
 * Grouping key: what differs (which members have the node, or which Stat fields), whether the
 * nodes are ephemeral, and the path up to the grandparent.
 */

export interface GroupItem {
  path: string;
  /** What the difference is, e.g. "only on node2,node3" or "fields mzxid,version". */
  kind: string;
  ephemeral: boolean;
}

export interface Group<T extends GroupItem> {
  pattern: string;
  kind: string;
  ephemeral: boolean;
  items: T[];
}

function patternOf(paths: string[]): string {
  const split = paths.map((p) => p.split('/'));
  const depth = Math.max(...split.map((s) => s.length));
  const out: string[] = [];
  for (let i = 0; i < depth; i++) {
    const first = split[0]![i];
    out.push(split.every((s) => s[i] === first) && first !== undefined ? first : '*');
  }
  return out.join('/') || '/';
}

export function groupByPattern<T extends GroupItem>(items: T[]): Group<T>[] {
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const comps = it.path.split('/');
    const depth = comps.length;
    const stem = comps.slice(0, Math.max(1, depth - 2)).join('/');
    const key = `${it.kind}\u0000${it.ephemeral}\u0000${depth}\u0000${stem}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(it);
  }
  return [...groups.values()]
    .map((g) => ({ pattern: g.length === 1 ? g[0]!.path : patternOf(g.map((i) => i.path)), kind: g[0]!.kind, ephemeral: g[0]!.ephemeral, items: g }))
    .sort((a, b) => b.items.length - a.items.length || (a.pattern < b.pattern ? -1 : 1));
}
