#!/usr/bin/env node
/** The `zkwarden` command: one module per command group, wired here. */
import { Command, CommanderError } from 'commander';
import { register as registerDemo } from './demo.ts';
import { register as registerLab } from './lab.ts';
import { register as registerInvestigate } from './investigate.ts';
import { register as registerZkData } from './zkdata.ts';
import { register as registerRecipes } from './recipes.ts';
import { register as registerGuard } from './guard.ts';
import { CliError, ExitCode } from './output.ts';
import { credentialRefusal } from './security.ts';

export function buildProgram(): Command {
  const program = new Command('zkwarden')
    .description('keep ZooKeeper-elected leaders honest: client and recipes, fault lab, incident forensics')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerDemo(program);
  registerLab(program);
  registerInvestigate(program);
  registerZkData(program);
  registerRecipes(program);
  registerGuard(program);
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
    const cliErr = err instanceof CliError ? err : credentialRefusal(err);
    if (cliErr) {
      process.stderr.write(`zkwarden: ${cliErr.message}\n`);
      return cliErr.exitCode;
    }
    process.stderr.write(`zkwarden: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.finding;
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
