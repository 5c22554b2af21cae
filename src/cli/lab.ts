/**
 * `zkwarden lab ...`: the real ensemble on loopback (`lab ensemble`), and the fault lab — nodes
 * that behave like hosts (`lab node`), their network (`lab net`), CPU (`lab cpu`) and disks
 * (`lab disk`), and `lab clean`. Labs made here outlive the command (a keeper process owns them)
 * and every later command finds them by id in /run/zkwarden/labs.
 */
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cleanLabs, type CleanupReport } from '../lab/cleanup.ts';
import { Ensemble, EnsembleError, type EnsembleState } from '../lab/ensemble.ts';
import { FaultFsError } from '../lab/faultfs.ts';
import { DISK_USAGE, diskExitCode, runDiskCommand } from '../lab/faultfs-cli.ts';
import { LabEnvironmentError, LabError, LabUsageError } from '../lab/host.ts';
import { Lab, type LabStatus } from '../lab/lab.ts';
import { describeFault, type NetFault } from '../lab/netfaults.ts';
import { commandLines, processState } from '../lab/proc.ts';
import { listLabIds, readRecord } from '../lab/registry.ts';
import { CliError, ExitCode, cliAction, intOption, note, printJson } from './output.ts';

const DEFAULT_DIR = '.zkwarden/ensemble';
/** The CLI's and the demo's lab network: nodes at 198.18.88.101, .102, .103. */
const DEFAULT_LAB_SUBNET = '198.18.88';

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

function portOption(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliError(`--port expects a TCP port (1-65535), got '${v}'`);
  return n;
}

/** '30s', '500ms', '2m' or a number of milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new CliError(`expected a duration like 30s, 500ms or 2m, got '${v}'`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
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
      const pid = ens.pid(s.id);
      // Whoever stopped it (kill -STOP, a scenario in another process), /proc says so; the
      // attached Ensemble only knows the pauses it made itself. A paused server is not asked
      // for srvr: it would only time out.
      const procState = pid === null ? null : processState(pid);
      const state = procState === 'T' || procState === 't' ? 'paused' : ens.state(s.id);
      const info = state === 'running' ? await ens.srvr(s.id) : null;
      return {
        id: s.id,
        address: ens.address(s.id),
        state,
        pid,
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

/** What a lab error means for the CLI: 2 bad input, 3 the machine lacks something, 1 a failed operation. */
function labCliError(e: unknown): CliError | null {
  if (e instanceof FaultFsError) return new CliError(e.message, diskExitCode(e));
  if (e instanceof LabEnvironmentError || e instanceof EnsembleError) return new CliError(e.message, ExitCode.environment);
  if (e instanceof LabUsageError) return new CliError(e.message, ExitCode.usage);
  if (e instanceof LabError) return new CliError(e.message, ExitCode.finding);
  return null;
}

/** A lab command: its errors as one line and the exit code above, or a JSON error under --json (the CLI's shared handling). */
function labAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return cliAction(labCliError, fn);
}

/** The lab a command acts on: --lab, else the only one on this machine. */
function pickLab(id: string | undefined): Lab {
  if (id !== undefined) return Lab.attach(id);
  const ids = listLabIds().filter((x) => readRecord(x)?.detached);
  if (ids.length === 0) throw new CliError('no lab on this machine; start one with: zkwarden lab node up', ExitCode.environment);
  if (ids.length > 1) throw new CliError(`several labs on this machine (${ids.join(', ')}); choose one with --lab ID`);
  return Lab.attach(ids[0]!);
}

function formatLab(s: LabStatus): string {
  const lines = [
    `lab ${s.id}  ${s.subnet}  host ${s.hostIp}  owner pid ${s.owner.pid}${s.owner.alive ? '' : ' (dead: zkwarden lab clean removes it)'}  files ${s.baseDir}`,
  ];
  for (const n of s.nodes) {
    const cpu = n.cpu?.fraction != null ? `cpu ${(n.cpu.fraction * 100).toFixed(0)} %` : 'cpu unlimited';
    lines.push(
      `  ${n.name.padEnd(7)} ${n.ip.padEnd(15)} netns ${n.netns.padEnd(16)} ${cpu.padEnd(14)} disk ${n.disk.kind} ${n.disk.root}  ${n.processes.length} process(es)`,
    );
  }
  lines.push(s.faults.length ? `network faults:\n${s.faults.map((f) => `  ${f.id}  ${describeFault(f)}`).join('\n')}` : 'network faults: none');
  return lines.join('\n');
}

function formatClean(reports: CleanupReport[], skipped: { lab: string; ownerPid: number }[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`removed lab ${r.lab}: ${r.killed.length} process(es) killed, ${r.released.length} mount(s) released, ${r.removed.length} resource(s) removed`);
    for (const l of r.leftovers) lines.push(`  LEFT: ${l}`);
  }
  for (const s of skipped) lines.push(`kept lab ${s.lab}: its owner (pid ${s.ownerPid}) is alive`);
  return lines.length ? lines.join('\n') : 'no lab to clean';
}

/** The sizes Ensemble.start runs (src/lab/ensemble.ts): standalone, or a quorum of 3 or 5. */
const ENSEMBLE_SIZES: readonly number[] = [1, 3, 5];

function ensembleSize(v: string): number {
  const n = intOption('size')(v);
  if (!ENSEMBLE_SIZES.includes(n)) throw new CliError(`--size expects ${ENSEMBLE_SIZES.join(', ')} servers, got ${n}`);
  return n;
}

/** The ensemble listens on loopback only (server N on <subnet>.10N): three octets inside 127.0.0.0/8. */
function loopbackSubnet(v: string): string {
  const m = /^127\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (!m || Number(m[1]) > 255 || Number(m[2]) > 255)
    throw new CliError(`--subnet expects the first three octets of a loopback address, like 127.0.88, got '${v}'`);
  return v;
}

function registerEnsemble(lab: Command): void {
  const ens = lab.command('ensemble').description('start, inspect and stop a real ZooKeeper ensemble on loopback');

  ens
    .command('up')
    .description('start an ensemble that keeps running after this command exits')
    .option('--size <n>', 'number of servers (1, 3 or 5)', ensembleSize, 3)
    .option('--subnet <a.b.c>', 'loopback subnet (127.x.y); server N listens on <subnet>.10N:2181', loopbackSubnet, '127.0.88')
    .option('--dir <path>', 'where servers keep their config, data and logs', DEFAULT_DIR)
    .option('--tick-time <ms>', 'ZooKeeper tickTime', intOption('tick-time'), 2000)
    .option('--snap-count <n>', 'ZooKeeper snapCount', intOption('snap-count'), 100000)
    .option('--json', 'machine-readable output')
    .action(async (o: { size: number; subnet: string; dir: string; tickTime: number; snapCount: number; json?: boolean }) => {
      const dir = resolve(o.dir);
      if (existsSync(stateFile(dir))) {
        const previous = Ensemble.attach(loadState(dir));
        if (previous.servers.some((s) => previous.pid(s.id) !== null))
          throw new CliError(`an ensemble is already recorded in ${dir}; stop it first: zkwarden lab ensemble down --dir ${o.dir}`);
      }
      mkdirSync(dir, { recursive: true });
      if (!o.json) note(`starting ${o.size} ZooKeeper server(s) on ${o.subnet}.101..., files in ${dir}`);
      let e: Ensemble;
      try {
        e = await Ensemble.start({
          size: o.size,
          subnet: o.subnet,
          baseDir: dir,
          tickTime: o.tickTime,
          snapCount: o.snapCount,
          detached: true,
          keepFiles: true,
        });
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
    .description('show each server: process (running, paused: stopped by a signal, or stopped), mode, last zxid, znode count')
    .option('--dir <path>', 'the directory given to up', DEFAULT_DIR)
    .option('--json', 'machine-readable output')
    .action(async (o: { dir: string; json?: boolean }) => {
      const e = Ensemble.attach(loadState(o.dir));
      const rows = await ensembleStatus(e);
      const leader = rows.find((r) => r.mode === 'leader' || r.mode === 'standalone');
      const serving = rows.filter((r) => r.mode !== null).length;
      const quorum = serving > rows.length / 2 && leader !== undefined;
      if (o.json) printJson({ connectString: e.connectString, quorum, leader: leader?.id ?? null, servers: rows });
      else
        process.stdout.write(`connect string: ${e.connectString}\nquorum: ${quorum ? `yes, leader is server ${leader!.id}` : 'NO'}\n${formatStatus(rows)}\n`);
      if (!quorum) process.exitCode = ExitCode.finding;
    });

  ens
    .command('down')
    .description('stop every server of the recorded ensemble and wait for its ports')
    .option('--dir <path>', 'the directory given to up', DEFAULT_DIR)
    .option('--purge', "also delete the servers' data and logs")
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

/** --lab and --json, which every command on a lab takes. */
function onLab(c: Command): Command {
  return c.option('--lab <id>', 'lab id (default: the only lab on this machine)').option('--json', 'machine-readable output');
}

function registerNode(lab: Command): void {
  const node = lab.command('node').description('lab nodes: network namespaces with their own address, disk and CPU');

  node
    .command('up')
    .description('create a lab of nodes that outlives this command (and, with --zookeeper, a ZooKeeper ensemble inside them)')
    .option('--id <id>', 'lab id, 1-8 lowercase letters/digits (default: random)')
    .option('--nodes <n>', 'number of nodes', intOption('nodes'), 3)
    .option('--subnet <a.b.c>', 'a /24 inside 198.18.0.0/15; node N gets <subnet>.10N', DEFAULT_LAB_SUBNET)
    .option('--disk <kind>', "node disks: 'faultfs' (disks that can hang) or 'plain' directories", 'faultfs')
    .option('--dir <path>', "where the nodes' files go (default: a new temporary directory)")
    .option('--zookeeper', 'also start ZooKeeper server N in node N')
    .option('--tick-time <ms>', 'ZooKeeper tickTime (with --zookeeper)', intOption('tick-time'), 2000)
    .option('--json', 'machine-readable output')
    .action(
      labAction(
        async (o: { id?: string; nodes: number; subnet: string; disk: string; dir?: string; zookeeper?: boolean; tickTime: number; json?: boolean }) => {
          if (o.disk !== 'plain' && o.disk !== 'faultfs') throw new CliError(`--disk expects 'plain' or 'faultfs', got '${o.disk}'`);
          if (!o.json) note(`creating ${o.nodes} node(s) on ${o.subnet}.0/24…`);
          const l = await Lab.create({
            id: o.id,
            nodes: o.nodes,
            subnet: o.subnet,
            disk: o.disk,
            baseDir: o.dir,
            detached: true,
            keepFiles: o.dir !== undefined,
          });
          let zookeeper: ServerStatus[] | undefined;
          if (o.zookeeper) {
            if (!o.json) note('starting ZooKeeper in the nodes, waiting for a quorum…');
            try {
              const size = [5, 3, 1].find((n) => n <= l.nodes.length)!;
              zookeeper = await ensembleStatus(await l.startEnsemble({ size, tickTime: o.tickTime, startTimeoutMs: 120_000 }));
            } catch (e) {
              await l.close();
              throw e;
            }
          }
          const status = await l.status();
          if (o.json) printJson({ ...status, ...(zookeeper ? { zookeeper: { connectString: l.ensemble!.connectString, servers: zookeeper } } : {}) });
          else
            process.stdout.write(
              `${formatLab(status)}\n${zookeeper ? `zookeeper: ${l.ensemble!.connectString}\n${formatStatus(zookeeper)}\n` : ''}next: zkwarden lab net cut node1 node2 --lab ${l.id}; zkwarden lab node down --lab ${l.id}\n`,
            );
        },
      ),
    );

  onLab(node.command('list').description('the lab, its nodes, their processes, CPU limits and network faults (read back from the kernel)')).action(
    labAction(async (o: { lab?: string; json?: boolean }) => {
      const l = pickLab(o.lab);
      const status = await l.status();
      const zookeeper = l.ensemble ? await ensembleStatus(l.ensemble) : undefined;
      if (o.json) printJson({ ...status, ...(zookeeper ? { zookeeper: { connectString: l.ensemble!.connectString, servers: zookeeper } } : {}) });
      else process.stdout.write(`${formatLab(status)}\n${zookeeper ? `zookeeper: ${l.ensemble!.connectString}\n${formatStatus(zookeeper)}\n` : ''}`);
    }),
  );

  onLab(node.command('down').description('remove the lab: its processes, disks, namespaces, bridge, cgroups and records')).action(
    labAction(async (o: { lab?: string; json?: boolean }) => {
      const l = pickLab(o.lab);
      const r = await cleanLabs({ only: l.id });
      const report = r.cleaned[0]!;
      if (o.json) printJson(report);
      else process.stdout.write(`${formatClean(r.cleaned, [])}\n`);
      if (report.leftovers.length) process.exitCode = ExitCode.finding;
    }),
  );

  node
    .command('exec')
    .description("run a command on a node (its network namespace and cgroup); the exit code is the command's")
    .argument('<node>', 'node name (node1), number or address')
    .argument('<command...>', 'the command and its arguments (put -- before options meant for the command)')
    .option('--lab <id>', 'lab id (default: the only lab on this machine)')
    .option('--detach', 'start it and return at once, printing its pid')
    .option('--json', 'with --detach: print the pid as JSON')
    .action(
      labAction(async (name: string, command: string[], o: { lab?: string; detach?: boolean; json?: boolean }) => {
        const n = pickLab(o.lab).node(name);
        const [cmd, ...args] = command;
        if (o.detach) {
          const p = n.spawn(cmd!, args, { detached: true });
          if (o.json) printJson({ node: n.name, pid: p.pid });
          else process.stdout.write(`${p.pid}\n`);
          return;
        }
        const line = n.command(cmd!, args);
        const r = spawnSync(line.command, line.args, { stdio: 'inherit' });
        process.exitCode = r.status ?? 128 + 9;
      }),
    );

  onLab(
    node
      .command('ps')
      .description("a node's processes with their state from /proc (R running, S sleeping, D uninterruptible disk wait, T stopped)")
      .argument('<node>', 'node name, number or address'),
  ).action(
    labAction(async (name: string, o: { lab?: string; json?: boolean }) => {
      const n = pickLab(o.lab).node(name);
      const pids = n.pids();
      const commands = await commandLines(pids);
      const rows = pids.map((pid) => {
        const p = n.process(pid);
        const threads = [...p.threads().values()];
        return { pid, state: p.state(), threadsInD: threads.filter((s) => s === 'D').length, threads: threads.length, command: commands.get(pid)! };
      });
      if (o.json) printJson({ node: n.name, processes: rows });
      else
        process.stdout.write(
          rows.length
            ? rows
                .map((r) => `${String(r.pid).padEnd(8)} ${r.state ?? '-'}  ${r.threadsInD ? `${r.threadsInD}/${r.threads} threads in D  ` : ''}${r.command}`)
                .join('\n') + '\n'
            : `no process on ${n.name}\n`,
        );
    }),
  );

  onLab(
    node
      .command('kill')
      .description("signal a process of a node: KILL (kill -9), STOP, CONT, TERM… Refuses any process that is not the lab's")
      .argument('<node>', 'node name, number or address')
      .argument('<pid>', 'process id (from zkwarden lab node ps)')
      .option('--signal <sig>', 'KILL, STOP, CONT, TERM, INT, HUP', 'KILL'),
  ).action(
    labAction(async (name: string, pidText: string, o: { signal: string; lab?: string; json?: boolean }) => {
      const pid = Number(pidText);
      if (!Number.isInteger(pid) || pid <= 0) throw new CliError(`<pid> expects a process id, got '${pidText}'`);
      const sig = `SIG${o.signal.toUpperCase().replace(/^SIG/, '')}`;
      if (!['SIGKILL', 'SIGSTOP', 'SIGCONT', 'SIGTERM', 'SIGINT', 'SIGHUP'].includes(sig))
        throw new CliError(`--signal expects KILL, STOP, CONT, TERM, INT or HUP, got '${o.signal}'`);
      const n = pickLab(o.lab).node(name);
      const p = n.process(pid);
      if (sig === 'SIGSTOP') await p.stop();
      else if (sig === 'SIGCONT') await p.cont();
      else p.signal(sig as NodeJS.Signals);
      // A kill -9 of a process stuck in D stays pending: say so rather than wait for it.
      if (sig === 'SIGKILL') await p.waitExit(2000).catch(() => undefined);
      const state = p.state();
      if (o.json) printJson({ node: n.name, pid, signal: sig, state });
      else
        process.stdout.write(
          `${n.name}: sent ${sig} to ${pid}; state now ${state ?? 'gone'}${state === 'D' ? ' (uninterruptible: the kill stays pending until its disk answers)' : ''}\n`,
        );
    }),
  );
}

function printFault(f: NetFault, json?: boolean): void {
  if (json) printJson(f);
  else process.stdout.write(`${f.id}  ${describeFault(f)}\n`);
}

function registerNet(lab: Command): void {
  const net = lab.command('net').description("network faults between nodes: iptables rules in the lab's own chains inside the nodes");

  onLab(
    net
      .command('cut')
      .description('cut two nodes apart: both ways, or --one-way (A cannot reach B, B still reaches A); --port: only connections to that port')
      .argument('<a>', 'node name, number or address')
      .argument('<b>', 'node name, number or address')
      .option('--one-way', 'only A → B')
      .option('--port <port>', 'only connections to this port (e.g. the meta port 10100, ZooKeeper stays reachable)', portOption),
  ).action(
    labAction(async (a: string, b: string, o: { oneWay?: boolean; port?: number; lab?: string; json?: boolean }) => {
      printFault(await pickLab(o.lab).net.cut(a, b, { oneWay: o.oneWay, ...(o.port !== undefined ? { port: o.port } : {}) }), o.json);
    }),
  );

  onLab(
    net
      .command('deaf')
      .description('the node hears but is not heard: its replies are dropped (connections still open, answers never arrive)')
      .argument('<node>', 'node name, number or address')
      .option('--port <port>', 'only replies from this local port', portOption)
      .option('--peer <node...>', 'only replies to these nodes'),
  ).action(
    labAction(async (name: string, o: { port?: number; peer?: string[]; lab?: string; json?: boolean }) => {
      printFault(await pickLab(o.lab).net.deaf(name, { ...(o.port !== undefined ? { port: o.port } : {}), ...(o.peer ? { peers: o.peer } : {}) }), o.json);
    }),
  );

  onLab(
    net
      .command('isolate')
      .description('the node loses every peer (and this host, unless --keep-host)')
      .argument('<node>', 'node name, number or address')
      .option('--keep-host', 'this host (the root namespace) still reaches it'),
  ).action(
    labAction(async (name: string, o: { keepHost?: boolean; lab?: string; json?: boolean }) => {
      printFault(await pickLab(o.lab).net.isolate(name, { keepHost: o.keepHost }), o.json);
    }),
  );

  onLab(
    net.command('heal').description("remove one fault (by id) or every rule of the lab's chains").argument('[fault]', 'fault id from zkwarden lab net list'),
  ).action(
    labAction(async (fault: string | undefined, o: { lab?: string; json?: boolean }) => {
      const healed = await pickLab(o.lab).net.heal(fault);
      if (o.json) printJson({ healed });
      else process.stdout.write(healed.length ? healed.map((f) => `healed ${f.id}  ${describeFault(f)}`).join('\n') + '\n' : 'no network fault was in force\n');
    }),
  );

  onLab(net.command('list').description('the network faults in force, read back from iptables, with their drop counters')).action(
    labAction(async (o: { lab?: string; json?: boolean }) => {
      const l = pickLab(o.lab);
      const rules = await l.net.rules();
      const faults = (await l.net.list()).map((f) => ({ ...f, dropped: rules.filter((r) => r.fault?.id === f.id).reduce((n, r) => n + r.packets, 0) }));
      if (o.json) printJson({ faults });
      else
        process.stdout.write(
          faults.length
            ? faults
                .map((f) => `${f.id}  ${describeFault(f).padEnd(36)} ${f.dropped} packet(s) dropped  since ${new Date(f.injectedAt).toISOString()}`)
                .join('\n') + '\n'
            : 'no network fault\n',
        );
    }),
  );

  onLab(
    net
      .command('check')
      .description('a real TCP connection from A to B (an echo server is started on B): open, refused, dropped or deaf; exit 1 unless open')
      .argument('<from>', 'node name, number or address')
      .argument('<to>', 'node name, number or address')
      .option('--port <port>', 'port on B (nothing of yours may listen there)', portOption, 10100),
  ).action(
    labAction(async (from: string, to: string, o: { port: number; lab?: string; json?: boolean }) => {
      const l = pickLab(o.lab);
      const r = await l.net.check(from, to, o.port);
      if (o.json) printJson({ from: l.node(from).name, to: l.node(to).name, port: o.port, ...r });
      else process.stdout.write(`${l.node(from).name} → ${l.node(to).name}:${o.port}  ${r.outcome}${r.local ? ` (from ${r.local})` : ''}\n`);
      if (r.outcome !== 'open') process.exitCode = ExitCode.finding;
    }),
  );
}

function registerCpu(lab: Command): void {
  const cpu = lab.command('cpu').description("a node's CPU: a cgroup v1 cpu quota shared by all its processes");

  cpu
    .command('limit')
    .description('starve a node: all its processes together get PERCENT of one core')
    .argument('<node>', 'node name, number or address')
    .requiredOption('--percent <p>', 'share of one core, e.g. 10', (v: string) => {
      const n = Number(v);
      if (!(n > 0) || n > 100 * 64) throw new CliError(`--percent expects a number above 0, got '${v}'`);
      return n;
    })
    .option('--for <duration>', 'lift the limit after this long (30s, 2m); the command waits, showing progress', parseDuration)
    .option('--lab <id>', 'lab id (default: the only lab on this machine)')
    .option('--json', 'machine-readable output')
    .action(
      labAction(async (name: string, o: { percent: number; for?: number; lab?: string; json?: boolean }) => {
        const n = pickLab(o.lab).node(name);
        const q = n.cpu.limit(o.percent / 100);
        if (o.for === undefined) {
          if (o.json) printJson({ node: n.name, ...q });
          else
            process.stdout.write(
              `${n.name}: limited to ${((q.fraction ?? 0) * 100).toFixed(1)} % of one core (${q.quotaUs} µs per ${q.periodUs} µs); lift it with: zkwarden lab cpu unlimit ${n.name}\n`,
            );
          return;
        }
        const holdMs = o.for;
        const started = Date.now();
        const lift = (): void => {
          if (n.cgroup.exists()) n.cpu.unlimit();
        };
        // Interrupted early: lift the limit anyway, it was asked for a bounded time.
        const onSignal = (): void => {
          lift();
          process.exit(130);
        };
        process.once('SIGINT', onSignal);
        try {
          while (Date.now() - started < holdMs) {
            await new Promise((r) => setTimeout(r, Math.min(1000, holdMs - (Date.now() - started))));
            if (!o.json)
              note(
                `${n.name}: ${((q.fraction ?? 0) * 100).toFixed(1)} % of a core, ${Math.round((Date.now() - started) / 1000)}/${Math.round(holdMs / 1000)} s, throttled ${n.cpu.throttling().throttledPeriods} period(s)`,
              );
          }
        } finally {
          process.removeListener('SIGINT', onSignal);
          lift();
        }
        const t = n.cgroup.exists() ? n.cpu.throttling() : null;
        if (o.json) printJson({ node: n.name, ...q, heldMs: Date.now() - started, throttling: t });
        else
          process.stdout.write(
            `${n.name}: limit lifted after ${((Date.now() - started) / 1000).toFixed(1)} s; ${t?.throttledPeriods ?? 0} period(s) throttled\n`,
          );
      }),
    );

  onLab(cpu.command('unlimit').description("lift a node's CPU limit").argument('<node>', 'node name, number or address')).action(
    labAction(async (name: string, o: { lab?: string; json?: boolean }) => {
      const n = pickLab(o.lab).node(name);
      n.cpu.unlimit();
      if (o.json) printJson({ node: n.name, ...n.cpu.quota() });
      else process.stdout.write(`${n.name}: no CPU limit\n`);
    }),
  );

  onLab(cpu.command('show').description("every node's CPU quota and how often it was throttled, read from its cgroup")).action(
    labAction(async (o: { lab?: string; json?: boolean }) => {
      const rows = pickLab(o.lab).nodes.map((n) => ({ node: n.name, ...n.cpu.quota(), throttling: n.cpu.throttling() }));
      if (o.json) printJson({ nodes: rows });
      else
        process.stdout.write(
          rows
            .map(
              (r) =>
                `${r.node.padEnd(7)} ${r.fraction === null ? 'unlimited' : `${(r.fraction * 100).toFixed(1)} % of a core`}  throttled ${r.throttling.throttledPeriods}/${r.throttling.periods} period(s)`,
            )
            .join('\n') + '\n',
        );
    }),
  );
}

function registerDisk(lab: Command): void {
  lab
    .command('disk')
    .description(`a node's disk (faultfs): ${DISK_USAGE}`)
    .argument('<node>', 'node name, number or address')
    .argument('<verb...>', 'healthy | stall | delay MS | error ERRNO | release [ERRNO] | status')
    .option('--ops <classes>', 'only these operation classes: read,write,fsync,metadata')
    .option('--path <glob>', 'only paths matching this glob, relative to the disk root (e.g. zookeeper/data/**)')
    .option('--lab <id>', 'lab id (default: the only lab on this machine)')
    .option('--json', 'machine-readable output')
    .action(
      labAction(async (name: string, words: string[], o: { ops?: string; path?: string; lab?: string; json?: boolean }) => {
        const n = pickLab(o.lab).node(name);
        if (n.disk.kind !== 'faultfs')
          throw new CliError(`${n.name}'s disk is a plain directory (the lab was made with --disk plain): it takes no disk faults`);
        const r = await runDiskCommand(n.disk.root, words, {
          ...(o.ops !== undefined ? { ops: o.ops } : {}),
          ...(o.path !== undefined ? { path: o.path } : {}),
        });
        if (o.json) printJson({ node: n.name, ...r.json });
        else process.stdout.write(`${n.name}: ${r.text}\n`);
      }),
    );
}

/** `--guard off|on`. */
function guardMode(v: string): 'off' | 'on' {
  if (v !== 'off' && v !== 'on') throw new CliError(`--guard expects 'off' or 'on', got '${v}'`);
  return v;
}

/** `--subnet`: a /24 inside 198.18.0.0/15, or 'auto' (any free one: tests, two runs at once). */
function labSubnet(v: string): string {
  if (v === 'auto') return v;
  if (!/^198\.(18|19)\.\d{1,3}$/.test(v) || Number(v.split('.')[2]) > 255)
    throw new CliError(`--subnet expects the first three octets of a /24 inside 198.18.0.0/15 (like 198.18.88) or 'auto', got '${v}'`);
  return v;
}

/** What a scenario's input error means: one line naming the file and field, exit 2. */
async function scenarioCliError(e: unknown): Promise<CliError | null> {
  const { ScenarioError } = await import('../lab/scenario/spec.ts');
  const { ClusterConfigError } = await import('../lab/cluster/config.ts');
  if (e instanceof ScenarioError || e instanceof ClusterConfigError) return new CliError(e.message, ExitCode.usage);
  return labCliError(e);
}

function registerScenarios(lab: Command): void {
  lab
    .command('list')
    .description('the built-in scenarios (zkwarden lab run NAME), each with its fault and what it must show')
    .option('--json', 'machine-readable output')
    .action(
      labAction(async (o: { json?: boolean }) => {
        const { BUILTIN } = await import('../lab/scenario/builtin.ts');
        if (o.json) {
          printJson({
            scenarios: BUILTIN.map((s) => ({ name: s.name, description: s.description, steps: s.steps, expect: s.expect ?? {}, timings: s.timings ?? {} })),
          });
          return;
        }
        const width = Math.max(...BUILTIN.map((s) => s.name.length));
        process.stdout.write(
          `${BUILTIN.map((s) => `${s.name.padEnd(width)}  ${s.description}`).join('\n')}\nrun one: zkwarden lab run NAME [--guard on] [--keep DIR]; a scenario file of your own (JSON, the same steps) runs the same way\n`,
        );
      }),
    );

  lab
    .command('run')
    .description(
      'run a scenario on a new 3-node lab (the reference cluster: ZooKeeper, meta, chunk, scavenger per node) and report its timeline, failover time and safety; exit 1 when an expectation or a safety check fails',
    )
    .argument('<scenario>', 'a built-in scenario (zkwarden lab list) or a scenario file (JSON)')
    .option('--guard <mode>', "the guard in the metas: 'off' or 'on' (every defence)", guardMode, 'off')
    .option('--keep <dir>', 'leave the incident bundle (DIR/bundle) and the records of what was injected and observed (DIR/*.json) here')
    .option('--timings <file>', 'a JSON object of timing overrides (tickTimeMs, sessionTimeoutMs, chunkTimeoutMs, …; see docs/lab.md)')
    .option('--subnet <a.b.c>', "the lab's /24 inside 198.18.0.0/15, or 'auto' for any free one", labSubnet, DEFAULT_LAB_SUBNET)
    .option('--json', 'the result as JSON on stdout (progress stays on stderr)')
    .option('--quiet', 'no progress on stderr')
    .action(
      cliAction(
        () => null,
        async (name: string, o: { guard: 'off' | 'on'; keep?: string; timings?: string; subnet: string; json?: boolean; quiet?: boolean }) => {
          try {
            await runCommand(name, o);
          } catch (e) {
            const err = e instanceof CliError ? e : await scenarioCliError(e);
            throw err ?? e;
          }
        },
      ),
    );
}

async function runCommand(
  name: string,
  o: { guard: 'off' | 'on'; keep?: string; timings?: string; subnet: string; json?: boolean; quiet?: boolean },
): Promise<void> {
  const { builtin, BUILTIN } = await import('../lab/scenario/builtin.ts');
  const { readScenarioFile } = await import('../lab/scenario/spec.ts');
  const { resolveTimings } = await import('../lab/cluster/config.ts');
  let scenario = builtin(name);
  if (!scenario) {
    if (!existsSync(name)) throw new CliError(`<scenario>: '${name}' is neither a built-in scenario (${BUILTIN.map((s) => s.name).join(', ')}) nor a file`);
    scenario = readScenarioFile(name);
  }
  let timings: Record<string, unknown> | undefined;
  if (o.timings !== undefined) {
    let text: string;
    try {
      text = readFileSync(o.timings, 'utf8');
    } catch (e) {
      throw new CliError(`--timings ${o.timings}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      timings = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new CliError(`--timings ${o.timings}: not JSON (${(e as Error).message})`);
    }
    if (timings === null || typeof timings !== 'object' || Array.isArray(timings))
      throw new CliError(`--timings ${o.timings}: expected a JSON object of timings, like {"sessionTimeoutMs": 6000}`);
    // Checked here, with the scenario's own, so a bad value is named before any lab starts.
    resolveTimings({ ...scenario.timings, ...timings }, `${o.timings}: timings`);
  }
  const { checkKeepDir } = await import('../lab/scenario/bundle.ts');
  if (o.keep !== undefined) checkKeepDir(resolve(o.keep));
  const { runScenario } = await import('../lab/scenario/runner.ts');
  const { formatResult } = await import('../lab/scenario/report.ts');
  const started = Date.now();
  const progress = o.quiet
    ? undefined
    : (p: { kind: string; text: string; step?: number; steps?: number; at: number }): void => {
        const t = ((p.at - started) / 1000).toFixed(1).padStart(6);
        note(`${t}s ${p.kind === 'step' ? `[${p.step}/${p.steps}] ` : '      '}${p.text}`);
      };
  if (progress) note(`lab run ${scenario.name} (guard ${o.guard}): a new 3-node lab; Ctrl-C ends the run and removes the lab`);
  const r = await runScenario(scenario, {
    guard: o.guard === 'on',
    ...(timings ? { timings: timings as Record<string, number> } : {}),
    ...(o.keep !== undefined ? { keep: resolve(o.keep) } : {}),
    ...(o.subnet !== 'auto' ? { subnet: o.subnet } : {}),
    ...(progress ? { onProgress: progress } : {}),
  });
  if (o.json) printJson(r);
  else process.stdout.write(`${formatResult(r)}\n`);
  if (!r.ok) process.exitCode = ExitCode.finding;
}

export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('the fault lab: nodes that behave like hosts, a real ZooKeeper ensemble, network, CPU, process and disk faults');
  registerEnsemble(lab);
  registerNode(lab);
  registerNet(lab);
  registerCpu(lab);
  registerDisk(lab);
  registerScenarios(lab);

  lab
    .command('clean')
    .description('remove labs whose owner died (a failed, interrupted or killed run): processes, mounts, namespaces, bridge, veths, rules, cgroups')
    .option('--all', "also remove labs whose owner lives (other people's too: never while others use this machine)")
    .option('--json', 'machine-readable output')
    .action(
      labAction(async (o: { all?: boolean; json?: boolean }) => {
        const r = await cleanLabs({ all: o.all });
        if (o.json) printJson(r);
        else process.stdout.write(`${formatClean(r.cleaned, r.skipped)}\n`);
        if (r.cleaned.some((c) => c.leftovers.length)) process.exitCode = ExitCode.finding;
      }),
    );
}
