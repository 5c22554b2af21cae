#!/usr/bin/env node
// Part of the build: writes dist/cli/commands.json, every command group's top-level commands as
// `zkwarden --help` lists them, so the built CLI loads a group only when one of its commands
// runs (src/cli/groups.ts). Run after tsc; it reads the compiled groups.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli');
const { groups } = await import(pathToFileURL(join(cli, 'groups.js')).href);

const index = {};
for (const [name, load] of Object.entries(groups)) {
  const program = new Command('zkwarden');
  (await load()).register(program);
  // A group that changed the program itself would behave differently while not loaded.
  if (program.options.length > 0) throw new Error(`command group ${name} adds program-wide options; only commands can load lazily`);
  const help = program.createHelp();
  index[name] = program.commands.map((c) => ({
    name: c.name(),
    aliases: c.aliases(),
    hidden: !help.visibleCommands(program).includes(c),
    term: help.subcommandTerm(c),
    description: help.subcommandDescription(c),
  }));
}
writeFileSync(join(cli, 'commands.json'), `${JSON.stringify(index, null, 2)}\n`);
