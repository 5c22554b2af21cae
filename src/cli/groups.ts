/**
 * The command groups, in the order `zkwarden --help` lists them. Each module exports
 * `register(program)`. They load lazily: the built CLI knows every group's top-level commands
 * from `commands.json` (written beside it by the build, scripts/command-index.mjs), so
 * `zkwarden --help` loads no group and `zkwarden investigate` loads only its own.
 */
import type { Command } from 'commander';

export type CommandGroup = () => Promise<{ register(program: Command): void }>;

export const groups: Record<string, CommandGroup> = {
  demo: () => import('./demo.ts'),
  lab: () => import('./lab.ts'),
  investigate: () => import('./investigate.ts'),
  zkdata: () => import('./zkdata.ts'),
  recipes: () => import('./recipes.ts'),
  guard: () => import('./guard.ts'),
};

/** A top-level command as `--help` lists it, recorded by the build. */
export interface IndexedCommand {
  name: string;
  aliases: string[];
  hidden: boolean;
  /** The command's column in the parent's help ("investigate [options] [bundle]"). */
  term: string;
  description: string;
}

/** Group name → its top-level commands. */
export type CommandIndex = Record<string, IndexedCommand[]>;
