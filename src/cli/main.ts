#!/usr/bin/env node
/** The `zkwarden` command: one module per command group, wired here. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Help } from 'commander';
import { groups, type CommandIndex } from './groups.ts';
import { CliError, ExitCode } from './output.ts';

/** The build's index of every group's commands; null when running from sources (every group loads then). */
function commandIndex(): CommandIndex | null {
  try {
    return JSON.parse(readFileSync(new URL('./commands.json', import.meta.url), 'utf8')) as CommandIndex;
  } catch {
    return null;
  }
}

/** The group whose command `argv` runs (`zkwarden help X` runs X's help); null for none or unknown. */
function groupOf(argv: string[], index: CommandIndex): string | null {
  const words = argv.filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  if (name === undefined) return null;
  return Object.keys(index).find((g) => index[g]!.some((c) => c.name === name || c.aliases.includes(name))) ?? null;
}

/**
 * The program for `argv`. With the build's index only the group `argv` runs is loaded; every
 * other group's commands stand in as entries that --help lists exactly as the real ones.
 */
export async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('zkwarden')
    .description('keep ZooKeeper-elected leaders honest: client and recipes, fault lab, incident forensics')
    .version('0.1.0')
    .option('--debug', 'on an internal error, print its stack')
    .showHelpAfterError()
    .exitOverride();
  const index = commandIndex();
  const wanted = index ? groupOf(argv, index) : null;
  const terms = new Map<Command, string>();
  for (const [name, load] of Object.entries(groups)) {
    const known = index?.[name];
    if (!known || name === wanted) {
      (await load()).register(program);
      continue;
    }
    for (const c of known) {
      const stand = program.command(c.name, { hidden: c.hidden }).description(c.description).aliases(c.aliases);
      terms.set(stand, c.term);
    }
  }
  if (terms.size > 0) {
    program.configureHelp({ subcommandTerm: (cmd) => terms.get(cmd) ?? Help.prototype.subcommandTerm.call(program.createHelp(), cmd) });
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors were already printed.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    // Loaded only here: it brings the client's modules, which a start that fails nothing needs not load.
    const cliErr = err instanceof CliError ? err : (await import('./security.ts')).credentialRefusal(err);
    if (cliErr) {
      process.stderr.write(`zkwarden: ${cliErr.message}\n`);
      return cliErr.exitCode;
    }
    return internalError(err, argv.includes('--debug'));
  }
}

/** One line and the internal exit code, never the finding code 1: a crash must not read as a finding. */
function internalError(err: unknown, debug: boolean): number {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const detail = debug || process.env.ZKWARDEN_DEBUG ? `\n${(err as Error)?.stack ?? ''}` : ' (rerun with --debug for the stack)';
  process.stderr.write(`zkwarden: internal error: ${message.split('\n')[0]}${detail}\n`);
  return ExitCode.internal;
}

// An error escaping every await (a stray rejection, a throwing listener) ends the CLI the same way.
const onStray = (err: unknown): void => {
  process.exitCode = internalError(err, process.argv.includes('--debug'));
  process.exit();
};
process.on('uncaughtException', onStray);
process.on('unhandledRejection', onStray);
const code = await main(process.argv.slice(2));
process.exitCode = code;
