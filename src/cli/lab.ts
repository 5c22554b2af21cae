/**
 * `zkwarden lab ...`: the real ensemble for users. `up` leaves the servers running (detached)
 * and records them in a state file so `status` and `down` from later processes find them.
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ensemble, EnsembleError, type EnsembleState } from '../lab/ensemble.ts';
import { CliError, ExitCode, note, printJson } from './output.ts';

const DEFAULT_DIR = '.zkwarden/ensemble';

function stateFile(dir: string): string {
  return join(resolve(dir), 'state.json');
}

function loadState(dir: string): EnsembleState {
  const file = stateFile(dir);
  if (!existsSync(file)) throw new CliError(`no ensemble recorded in ${file}; start one with: zkwarden lab ensemble up`, ExitCode.environment);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as EnsembleState;
  } catch (e) {
    throw new CliError(`${file}: not a readable ensemble state file (${(e as Error).message})`, ExitCode.usage);
  }
}

function intOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new CliError(`--${name} expects a positive integer, got '${v}'`);
    return n;
  };
}

export interface ServerStatus {
  id: number;
  address: string;
  state: string;
  pid: number | null;
  mode: string | null;
  zxid: string | null;
  nodeCount: number | null;
  logFile: string;
  dataDir: string;
}

export async function ensembleStatus(ens: Ensemble): Promise<ServerStatus[]> {
  return Promise.all(
    ens.servers.map(async (s) => {
      const info = await ens.srvr(s.id);
      return {
        id: s.id,
        address: ens.address(s.id),
        state: ens.state(s.id),
        pid: ens.pid(s.id),
        mode: info?.mode ?? null,
        zxid: info ? `0x${info.zxid.toString(16)}` : null,
        nodeCount: info?.nodeCount ?? null,
        logFile: s.logFile,
        dataDir: s.dataDir,
      };
    }),
  );
}

export function formatStatus(rows: ServerStatus[]): string {
  const lines = rows.map(
    (r) =>
      `  server ${r.id}  ${r.address.padEnd(21)} ${r.state.padEnd(8)} pid ${String(r.pid ?? '-').padEnd(8)} ${(r.mode ?? 'not serving').padEnd(11)} zxid ${(r.zxid ?? '-').padEnd(12)} znodes ${r.nodeCount ?? '-'}`,
  );
  return lines.join('\n');
}

export function register(program: Command): void {
  const lab = program.command('lab').description('a real ZooKeeper ensemble and fault injection on loopback');
  const ens = lab.command('ensemble').description('start, inspect and stop a real ZooKeeper ensemble');

  ens
    .command('up')
    .description('start an ensemble that keeps running after this command exits')
    .option('--size <n>', 'number of servers (1, 3 or 5)', intOption('size'), 3)
    .option('--subnet <a.b.c>', 'loopback subnet; server N listens on <subnet>.10N:2181', '127.0.88')
    .option('--dir <path>', 'where servers keep their config, data and logs', DEFAULT_DIR)
    .option('--tick-time <ms>', 'ZooKeeper tickTime', intOption('tick-time'), 2000)
    .option('--snap-count <n>', 'ZooKeeper snapCount', intOption('snap-count'), 100000)
    .option('--json', 'machine-readable output')
    .action(async (o: { size: number; subnet: string; dir: string; tickTime: number; snapCount: number; json?: boolean }) => {
      const dir = resolve(o.dir);
      if (existsSync(stateFile(dir))) {
        const previous = Ensemble.attach(loadState(dir));
        if (previous.servers.some((s) => previous.pid(s.id) !== null)) throw new CliError(`an ensemble is already recorded in ${dir}; stop it first: zkwarden lab ensemble down --dir ${o.dir}`);
      }
      mkdirSync(dir, { recursive: true });
      if (!o.json) note(`starting ${o.size} ZooKeeper server(s) on ${o.subnet}.101..., files in ${dir}`);
      let e: Ensemble;
      try {
        e = await Ensemble.start({ size: o.size, subnet: o.subnet, baseDir: dir, tickTime: o.tickTime, snapCount: o.snapCount, detached: true, keepFiles: true });
      } catch (err) {
        if (err instanceof EnsembleError) throw new CliError(err.message, ExitCode.environment);
        throw err;
      }
      writeFileSync(stateFile(dir), JSON.stringify(e.snapshotState(), null, 2));
      const rows = await ensembleStatus(e);
      if (o.json) printJson({ connectString: e.connectString, dir, servers: rows });
      else process.stdout.write(`connect string: ${e.connectString}\n${formatStatus(rows)}\n`);
    });

  ens
    .command('status')
    .description('show each server: process, mode, last zxid, znode count')
    .option('--dir <path>', 'the directory given to up', DEFAULT_DIR)
    .option('--json', 'machine-readable output')
    .action(async (o: { dir: string; json?: boolean }) => {
      const e = Ensemble.attach(loadState(o.dir));
      const rows = await ensembleStatus(e);
      const leader = rows.find((r) => r.mode === 'leader' || r.mode === 'standalone');
      const serving = rows.filter((r) => r.mode !== null).length;
      const quorum = serving > rows.length / 2 && leader !== undefined;
      if (o.json) printJson({ connectString: e.connectString, quorum, leader: leader?.id ?? null, servers: rows });
      else process.stdout.write(`connect string: ${e.connectString}\nquorum: ${quorum ? `yes, leader is server ${leader!.id}` : 'NO'}\n${formatStatus(rows)}\n`);
      if (!quorum) process.exitCode = ExitCode.finding;
    });

  ens
    .command('down')
    .description('stop every server of the recorded ensemble and wait for its ports')
    .option('--dir <path>', 'the directory given to up', DEFAULT_DIR)
    .option('--purge', 'also delete the servers\' data and logs')
    .option('--json', 'machine-readable output')
    .action(async (o: { dir: string; purge?: boolean; json?: boolean }) => {
      const e = Ensemble.attach(loadState(o.dir));
      const stopped = e.servers.filter((s) => e.pid(s.id) !== null).map((s) => s.id);
      await Promise.all(e.servers.map((s) => e.stop(s.id)));
      rmSync(stateFile(o.dir), { force: true });
      if (o.purge) rmSync(resolve(o.dir), { recursive: true, force: true });
      if (o.json) printJson({ stopped, purged: Boolean(o.purge) });
      else process.stdout.write(`stopped server(s): ${stopped.length ? stopped.join(', ') : 'none were running'}\n`);
    });
}
