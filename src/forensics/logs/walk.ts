/**
 * The bundle walker: every file under a folder, each accounted for. A file is either returned
 * to be read, or listed as skipped with the reason (unreadable, a symlink loop, the same file
 * reached a second time through a link, not a regular file). Nothing is dropped silently: a
 * tool that explains incidents must never reassure by omission.
 *
 * Symlinks are followed (collectors often link rotated logs or whole log folders); a directory
 * link leading back to one of its own ancestors is a loop and is cut there, and every file is
 * read once, by its (device, inode), whichever path reaches it first in sorted order.
 */
import { lstatSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';

export type SkipReason = 'unreadable' | 'symlink-loop' | 'duplicate' | 'not-a-file' | 'binary' | 'empty' | 'too-deep';

export interface SkippedFile {
  /** Path relative to the bundle root. */
  rel: string;
  node: string;
  reason: SkipReason;
  /** One line saying why: the errno and message, or which path already read the same file. */
  detail: string;
}

export interface WalkedFile {
  abs: string;
  rel: string;
  node: string;
  st: Stats;
}

/** Deeper trees than this are not vendor layouts but runaway links: cut and reported. */
const MAX_DEPTH = 64;

export class Walker {
  readonly files: WalkedFile[] = [];
  readonly skipped: SkippedFile[] = [];
  /** dev:ino → the rel path that read it first. */
  private readonly seen = new Map<string, string>();

  constructor(private readonly root: string) {}

  private rel(abs: string): string {
    return relative(this.root, abs) || '.';
  }

  private skip(abs: string, node: string, reason: SkipReason, detail: string): void {
    this.skipped.push({ rel: this.rel(abs), node, reason, detail });
  }

  /** Adds one path (a file or a folder, walked recursively) as belonging to `node`. */
  add(abs: string, node: string, relOverride?: string): void {
    this.visit(abs, node, [], 0, relOverride);
  }

  private visit(abs: string, node: string, ancestors: string[], depth: number, relOverride?: string): void {
    let lst: Stats;
    try {
      lst = lstatSync(abs);
    } catch (e) {
      this.skip(abs, node, 'unreadable', errnoText(e));
      return;
    }
    let st: Stats = lst;
    if (lst.isSymbolicLink()) {
      try {
        st = statSync(abs);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ELOOP') this.skip(abs, node, 'symlink-loop', 'ELOOP: the link resolves to itself');
        else this.skip(abs, node, 'unreadable', `${errnoText(e)} (a dangling symlink)`);
        return;
      }
    }
    if (st.isDirectory()) {
      let real: string;
      try {
        real = realpathSync(abs);
      } catch (e) {
        this.skip(abs, node, 'unreadable', errnoText(e));
        return;
      }
      if (ancestors.includes(real)) {
        this.skip(abs, node, 'symlink-loop', `a link back to ${this.rel(real) === '.' ? 'the bundle root' : this.rel(real)} (cut here)`);
        return;
      }
      if (depth > MAX_DEPTH) {
        this.skip(abs, node, 'too-deep', `more than ${MAX_DEPTH} folders deep (cut here)`);
        return;
      }
      let names: string[];
      try {
        names = readdirSync(abs);
      } catch (e) {
        this.skip(abs, node, 'unreadable', errnoText(e));
        return;
      }
      names.sort();
      const chain = [...ancestors, real];
      for (const n of names) this.visit(join(abs, n), node, chain, depth + 1);
      return;
    }
    if (!st.isFile()) {
      this.skip(abs, node, 'not-a-file', 'not a regular file (a FIFO, socket or device)');
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    const first = this.seen.get(key);
    const rel = relOverride ?? this.rel(abs);
    if (first !== undefined) {
      this.skipped.push({ rel, node, reason: 'duplicate', detail: `the same file as ${first} (through a link); read once` });
      return;
    }
    this.seen.set(key, rel);
    this.files.push({ abs, rel, node, st });
  }
}

/** "EACCES: permission denied" from a Node fs error, without the path (the caller names it). */
export function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code) {
    const msg = err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
    return `${err.code}: ${msg}`;
  }
  return String((e as Error).message ?? e);
}
