#!/usr/bin/env node
/** The `zkwarden` command: one module per command group, wired here. */
import { Command, CommanderError } from 'commander';
import { register as registerDemo } from './demo.ts';
import { register as registerLab } from './lab.ts';
import { register as registerInvestigate } from './investigate.ts';
import { register as registerZkData } from './zkdata.ts';
import { register as registerRecipes } from './recipes.ts';
import { CliError, ExitCode } from './output.ts';

export function buildProgram(): Command {
  const program = new Command('zkwarden')
    .description('keep ZooKeeper-elected leaders honest: client and recipes, fault lab, incident forensics')
    .version('0.1.0')
    .option('--debug', 'on an internal error, print its stack')
    .showHelpAfterError()
    .exitOverride();
  registerDemo(program);
  registerLab(program);
  registerInvestigate(program);
  registerZkData(program);
  registerRecipes(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors were already printed.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`zkwarden: ${err.message}\n`);
      return err.exitCode;
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
