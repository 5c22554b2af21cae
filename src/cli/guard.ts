/**
 * `zkwarden guard run [options] -- CMD ARGS…` runs the watchdog beside a service written in any
 * language: the watchdog starts first (resident: everything loaded, its sockets bound), then
 * starts CMD with the channel on fd 3 (a Unix socket pair; ZKWARDEN_GUARD_FD=3 in its
 * environment), over which the service speaks the line protocol (docs/guard.md). It exits only
 * after CMD is gone, so whoever restarts it never runs two instances at once.
 *
 * `zkwarden guard status` asks a running watchdog over its control socket (an abstract Unix
 * socket named after the service, or --control).
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { basename } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { DEFAULT_ELECTION_PATH, checkRecipePath, RecipeUsageError } from '../recipes/index.ts';
import {
  DEFAULT_TIMING,
  ENV_DEADLINE,
  ENV_FD,
  ENV_HEARTBEAT,
  GuardConfigError,
  RingLog,
  Watchdog,
  checkIpConnectString,
  checkWatchdogTiming,
  parseAddress,
  type WatchdogStatus,
} from '../guard/index.ts';
import { CliError, ExitCode, intOption, printJson } from './output.ts';
import { SASL_PASSWORD_ENV, addSecurityOptions, securityFromOptions, type SecurityCliOptions } from './security.ts';

interface RunOptions extends SecurityCliOptions {
  servers: string;
  path: string;
  name?: string;
  deadline: number;
  heartbeatInterval: number;
  sessionTimeout?: number;
  listen?: string;
  control?: string;
  log?: string;
  ring: number;
  kill: boolean;
  endSessionTimeout: number;
  json?: boolean;
}

function controlAddress(name: string): string {
  return `@zkwarden-guard/${name}`;
}

function config(e: unknown): never {
  if (e instanceof GuardConfigError || e instanceof RecipeUsageError) throw new CliError(e.message, ExitCode.usage);
  throw e;
}

function listenOn(address: string, option: string, onConnection: (s: Socket) => void): Promise<Server> {
  const a = parseAddress(address, option);
  const server = createServer(onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new CliError(`${option} ${address}: ${e.message}`, ExitCode.environment)));
    if ('path' in a) server.listen(a.path, () => resolve(server));
    else server.listen(a.port, a.host, () => resolve(server));
  });
}

async function run(command: string[], o: RunOptions): Promise<void> {
  try {
    checkIpConnectString(o.servers, '--servers');
    checkRecipePath(o.path, '--path');
    checkWatchdogTiming(
      { watchdogDeadlineMs: o.deadline, heartbeatIntervalMs: o.heartbeatInterval, sessionTimeoutMs: o.sessionTimeout },
      { watchdogDeadlineMs: '--deadline', heartbeatIntervalMs: '--heartbeat-interval', sessionTimeoutMs: '--session-timeout' },
    );
    if (o.listen) parseAddress(o.listen, '--listen');
    if (o.control) parseAddress(o.control, '--control');
  } catch (e) {
    config(e);
  }
  const [cmd, ...args] = command;
  if (!cmd) throw new CliError('guard run needs the service to run after --, e.g. zkwarden guard run --servers 10.1.88.101:2181 -- ./meta --port 10100');
  const name = o.name ?? basename(cmd);
  if (!/^[\w.-]{1,64}$/.test(name)) throw new CliError(`--name expects 1 to 64 letters, digits, '.', '_' or '-', got '${name}'`);

  // Everything the watchdog will ever need is opened and loaded now, before the first beat.
  const security = securityFromOptions(o);
  let fd = 2;
  if (o.log) {
    try {
      fd = openSync(o.log, 'a', 0o640);
    } catch (e) {
      throw new CliError(`--log ${o.log}: ${(e as Error).message}`, ExitCode.environment);
    }
  }
  const log = new RingLog({ fd, json: o.json, capacity: o.ring, source: o.json ? name : `watchdog[${name}]` });
  const wd = new Watchdog({
    connectString: o.servers,
    electionPath: o.path,
    deadlineMs: o.deadline,
    log,
    name,
    kill: o.kill,
    endSessionTimeoutMs: o.endSessionTimeout,
    security,
  });
  const servers: Server[] = [];
  servers.push(await listenOn(o.control ?? controlAddress(name), '--control', (s) => wd.attach(s)));
  if (o.listen) servers.push(await listenOn(o.listen, '--listen', (s) => wd.attach(s)));
  wd.start();

  const child = spawn(cmd, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    // The watchdog's SASL password is its own: the service does not inherit it.
    env: { ...process.env, [SASL_PASSWORD_ENV]: undefined, [ENV_FD]: '3', [ENV_DEADLINE]: String(o.deadline), [ENV_HEARTBEAT]: String(o.heartbeatInterval) },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
    child.once('error', (e) => resolve(e));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  if (child.pid !== undefined) {
    log.log('watchdog.started', { pid: child.pid, command: cmd, deadlineMs: o.deadline, control: o.control ?? controlAddress(name) });
    wd.watchPid(child.pid);
    wd.attach(child.stdio[3] as Socket, true);
  }
  // A supervisor stopping us stops the service; the service says BYE if it stops cleanly.
  const forward = (sig: NodeJS.Signals): void => {
    log.log('watchdog.signal', { signal: sig, forwardedTo: child.pid });
    child.kill(sig);
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, forward);

  const end = await exited;
  if (end instanceof Error) {
    log.log('watchdog.spawnFailed', { command: cmd, error: end.message });
  } else if (child.pid !== undefined) {
    wd.processExited(child.pid, end.code, end.signal);
  }
  await wd.settled();
  wd.stop();
  for (const s of servers) s.close();
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(sig, forward);
  log.log('watchdog.exit', { interventions: wd.interventions });
  // A stalled log sink must not keep the watchdog from reporting its exit.
  await log.drain(2000);
  if (end instanceof Error)
    throw new CliError(`cannot start ${cmd}: ${end.message}`, (end as NodeJS.ErrnoException).code === 'ENOENT' ? ExitCode.usage : ExitCode.environment);
  if (wd.interventions > 0) process.exitCode = ExitCode.finding;
  else process.exitCode = end.code ?? 128 + signalNumber(end.signal);
}

function signalNumber(sig: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
  return sig ? (table[sig] ?? 0) : 0;
}

function askStatus(address: string, timeoutMs: number): Promise<WatchdogStatus> {
  const a = parseAddress(address, '--control');
  return new Promise((resolve, reject) => {
    const sock = 'path' in a ? connect(a.path) : connect({ host: a.host, port: a.port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new CliError(`no answer from the watchdog at ${address} within ${timeoutMs} ms`, ExitCode.environment));
    }, timeoutMs);
    sock.on('connect', () => sock.write('STATUS\n'));
    sock.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.destroy();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as WatchdogStatus);
      } catch {
        reject(new CliError(`the watchdog at ${address} answered something that is not JSON: ${buf.slice(0, 80)}`, ExitCode.environment));
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(new CliError(`no watchdog at ${address}: ${e.message}`, ExitCode.environment));
    });
  });
}

/** 0: watching a healthy service; 1: something to look at (an intervention, ill, silent, a process that outlived SIGKILL). */
function statusExit(s: WatchdogStatus): number {
  const unkillable = s.decisions.some((d) => d.kind === 'unkillable');
  return s.interventions > 0 || unkillable || s.healthy === false ? ExitCode.finding : ExitCode.ok;
}

export function formatStatus(s: WatchdogStatus): string {
  const lines = [`watchdog ${s.name}: ${s.state} (deadline ${s.deadlineMs} ms)`];
  const procs = s.pids.map((p) => `${p} (${s.processStates[String(p)] ?? '?'})`).join(', ') || 'none';
  lines.push(
    `  service      pid ${procs}; ${s.beats} beats, last ${s.sinceLastBeatMs === null ? 'never' : `${s.sinceLastBeatMs} ms ago`}, longest silence ${s.maxSilenceMs} ms, ` +
      `${s.healthy === null ? 'health unknown' : s.healthy ? 'healthy' : `ill for ${s.illForMs} ms: ${s.illReason ?? ''}`}`,
  );
  lines.push(
    `  session      ${s.session.registered ? `registered (${s.session.label})` : 'none'}${s.znode ? `, znode ${s.znode}` : ''}${s.serviceState ? `, ${s.serviceState}` : ''}`,
  );
  lines.push(
    `  log          ${s.log.dropped} dropped, ${s.log.pending} pending${s.log.writeStalledMs !== null ? `, a write stalled for ${s.log.writeStalledMs} ms` : ''}`,
  );
  lines.push(`  interventions ${s.interventions}`);
  const recent = s.decisions.slice(-10);
  if (recent.length > 0) {
    lines.push('  recent decisions');
    for (const d of recent) {
      const detail = Object.entries(d.detail)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      lines.push(`    ${d.at} ${d.kind}${detail ? ` ${detail}` : ''}`);
    }
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  const guard = program.command('guard').description('the guard: a watchdog beside any service (run) and its status');

  const runCommand = guard
    .command('run')
    .description('run the watchdog, then CMD with the guard channel on fd 3; end its ZooKeeper session from outside if it wedges')
    .argument('<command...>', 'the service to run, after --')
    .requiredOption('--servers <ips>', 'ZooKeeper servers as IP literals (no DNS), e.g. 10.1.88.101:2181,10.1.88.102:2181')
    .option('--path <path>', "the election path whose znodes the service's session may own", DEFAULT_ELECTION_PATH)
    .option('--name <name>', "the service's name in logs and its control socket (default: CMD's file name)")
    .option(
      '--deadline <ms>',
      'silence (or ill beats while a session is registered) that makes the watchdog act',
      intOption('deadline'),
      DEFAULT_TIMING.watchdogDeadlineMs,
    )
    .option(
      '--heartbeat-interval <ms>',
      'the beat interval the service is asked to keep (ZKWARDEN_GUARD_HEARTBEAT_MS)',
      intOption('heartbeat-interval'),
      DEFAULT_TIMING.heartbeatIntervalMs,
    )
    .option('--session-timeout <ms>', "the service's ZooKeeper session timeout, checked against the deadline", intOption('session-timeout'))
    .option('--listen <address>', 'also accept a service on @abstract-name or a loopback IP:PORT (for one not started by this command)')
    .option('--control <address>', 'the status socket (default @zkwarden-guard/NAME)')
    .option('--log <file>', 'log file, opened at start (default stderr); a stalled log drops lines, never decisions')
    .option('--ring <lines>', 'log lines held while the log cannot be written', intOption('ring'), 2000)
    .option('--no-kill', 'end the session but do not SIGKILL the service')
    .option('--end-session-timeout <ms>', 'budget of one attempt to end the session', intOption('end-session-timeout'), 10_000)
    .option('--json', 'log one JSON object per line')
    .addHelpText(
      'after',
      '\nLine protocol (docs/guard.md): HELLO 1 <pid>, SESSION <id-hex> <password-hex> | SESSION none, ZNODE <path>,\n' +
        'STATE leader <epoch-hex>|candidate|waiting, HEARTBEAT <seq> ok | HEARTBEAT <seq> ill <reason>, BYE.\n' +
        "\nExit codes: the service's own (128+signal if a signal ended it) when the watchdog did not act; 1 when it\n" +
        'ended the session or killed the service; 2 bad usage or CMD not found; 3 environment (a socket cannot be bound).',
    )
    .action(async (command: string[], o: RunOptions) => run(command, o));
  addSecurityOptions(runCommand);

  guard
    .command('status')
    .description("a running watchdog's view: the service's beats and health, its session (a label, never the id), interventions")
    .option('--name <name>', 'the guarded service (its control socket is @zkwarden-guard/NAME)')
    .option('--control <address>', 'the control socket, @abstract-name or a loopback IP:PORT')
    .option('--timeout <ms>', 'how long to wait for the answer', intOption('timeout'), 2000)
    .option('--json', 'the status as JSON')
    .addHelpText('after', '\nExit codes: 0 watching a healthy service, 1 the watchdog acted or the service is ill, 2 bad usage, 3 no watchdog there.')
    .action(async (o: { name?: string; control?: string; timeout: number; json?: boolean }) => {
      if (!o.name && !o.control) throw new CliError('guard status needs --name NAME or --control ADDRESS');
      const address = o.control ?? controlAddress(o.name!);
      try {
        parseAddress(address, '--control');
      } catch (e) {
        config(e);
      }
      let s: WatchdogStatus;
      try {
        s = await askStatus(address, o.timeout);
      } catch (e) {
        if (o.json && e instanceof CliError) {
          printJson({ error: e.message, exitCode: e.exitCode });
          process.exitCode = e.exitCode;
          return;
        }
        throw e;
      }
      if (o.json) printJson(s);
      else process.stdout.write(formatStatus(s) + '\n');
      process.exitCode = statusExit(s);
    });
}
