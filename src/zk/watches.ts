/**
 * The client's record of its watches, keyed by the caller's paths (chroot removed).
 *
 * The server keeps watches per connection, so after a reconnect the client re-registers all of
 * them (setWatches/setWatches2 with the last zxid it saw; the server then fires what the client
 * missed). One-shot watches leave this table when they fire, which is what makes re-registration
 * free of duplicates: a watch that already fired is not sent again.
 */
import type { WatchEventType } from './protocol.ts';

export interface WatchEvent {
  type: WatchEventType;
  /** The node the event is about (for a recursive watch, a descendant of the watched path). */
  path: string;
}

export type WatchListener = (event: WatchEvent) => void;

export type WatchTable = 'data' | 'exist' | 'child' | 'persistent' | 'persistentRecursive';

export class WatchManager {
  private readonly tables: Record<WatchTable, Map<string, Set<WatchListener>>> = {
    data: new Map(),
    exist: new Map(),
    child: new Map(),
    persistent: new Map(),
    persistentRecursive: new Map(),
  };

  add(table: WatchTable, path: string, listener: WatchListener): void {
    const t = this.tables[table];
    let set = t.get(path);
    if (!set) t.set(path, (set = new Set()));
    set.add(listener);
  }

  /** Removes one listener (or all of them when listener is undefined); returns those removed. */
  remove(table: WatchTable, path: string, listener?: WatchListener): WatchListener[] {
    const t = this.tables[table];
    const set = t.get(path);
    if (!set) return [];
    if (listener === undefined) {
      t.delete(path);
      return [...set];
    }
    if (!set.delete(listener)) return [];
    if (set.size === 0) t.delete(path);
    return [listener];
  }

  has(table: WatchTable, path: string, listener?: WatchListener): boolean {
    const set = this.tables[table].get(path);
    if (!set) return false;
    return listener === undefined ? set.size > 0 : set.has(listener);
  }

  /**
   * The listeners an event reaches, each once, in registration order of the tables. One-shot
   * watches are removed here, before any listener runs, so a listener that sets a new watch on
   * the same path keeps it.
   */
  dispatch(event: WatchEvent): WatchListener[] {
    const out = new Set<WatchListener>();
    const take = (table: WatchTable): void => {
      const t = this.tables[table];
      const set = t.get(event.path);
      if (!set) return;
      t.delete(event.path);
      for (const l of set) out.add(l);
    };
    switch (event.type) {
      case 'created':
      case 'dataChanged':
        take('data');
        take('exist');
        break;
      case 'deleted':
        take('data');
        take('exist');
        take('child');
        break;
      case 'childrenChanged':
        take('child');
        break;
      default:
        break;
    }
    // Persistent watches stay; a recursive one on any ancestor sees the event too. The server
    // never sends childrenChanged to a recursive watch, so none is expected here.
    for (const l of this.tables.persistent.get(event.path) ?? []) out.add(l);
    if (event.type !== 'childrenChanged') {
      for (const anc of ancestorsAndSelf(event.path)) {
        for (const l of this.tables.persistentRecursive.get(anc) ?? []) out.add(l);
      }
    }
    return [...out];
  }

  /** Paths to re-register after a reconnect. */
  paths(): Record<WatchTable, string[]> {
    return {
      data: [...this.tables.data.keys()],
      exist: [...this.tables.exist.keys()],
      child: [...this.tables.child.keys()],
      persistent: [...this.tables.persistent.keys()],
      persistentRecursive: [...this.tables.persistentRecursive.keys()],
    };
  }

  get size(): number {
    let n = 0;
    for (const t of Object.values(this.tables)) n += t.size;
    return n;
  }

  clear(): void {
    for (const t of Object.values(this.tables)) t.clear();
  }
}

/** "/a/b/c" -> ["/a/b/c", "/a/b", "/a", "/"]. */
export function ancestorsAndSelf(path: string): string[] {
  const out = [path];
  let p = path;
  while (p !== '/') {
    const i = p.lastIndexOf('/');
    p = i <= 0 ? '/' : p.slice(0, i);
    out.push(p);
  }
  return out;
}
