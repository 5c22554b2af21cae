/**
 * `zkwarden leader` and `zkwarden members`: what every service of the seed cluster asked
 * ZooKeeper (who leads the meta, who is in the cluster), answered with the recipes' rules:
 * the leader is the lowest candidate, its epoch the czxid of its znode, and --watch never
 * goes back to a lower epoch.
 */
import type { Command } from 'commander';
import {
  bigintReplacer,
  createClient,
  hex,
  OperationTimeoutError,
  parseConnectString,
  probeAll,
  sessionHex,
  type ConnectString,
  type ZooKeeperClient,
} from '../zk/index.ts';
import {
  DEFAULT_CANDIDATE_PREFIX,
  DEFAULT_ELECTION_PATH,
  DEFAULT_MEMBERS_PATH,
  LeaderDiscovery,
  MembersWatcher,
  RecipeUsageError,
  checkPrefix,
  checkRecipePath,
  listMembers,
  readLeader,
  type LeaderInfo,
  type Member,
} from '../recipes/index.ts';
import { CliError, cliAction, ExitCode, intOption, note, printJson, zxidOption } from './output.ts';
import { addSecurityOptions, credentialRefusal, securityFromOptions, type SecurityCliOptions } from './security.ts';

interface CommonOptions extends SecurityCliOptions {
  servers: string;
  path: string;
  watch?: boolean;
  json?: boolean;
  timeout: number;
}

function jsonLine(value: unknown): string {
  return JSON.stringify(value, bigintReplacer);
}

/** Below this a connect attempt to a healthy server on another host could fail for nothing. */
const MIN_SHARE_MS = 250;

/**
 * A session that fails fast. Every server is probed first, all at once: an unresolvable name or
 * a refused port is named on stderr and left out of the connect string (none left: exit 3,
 * naming each). The client tries the others in the order given, each for its share of
 * --timeout: a paused server (its kernel still accepts TCP, so the probe passes; the handshake
 * goes unanswered) costs that one share, then the next server is tried.
 */
async function connect(o: CommonOptions): Promise<ZooKeeperClient> {
  const security = securityFromOptions(o);
  let cs: ConnectString;
  try {
    cs = parseConnectString(o.servers);
  } catch (e) {
    throw new CliError(`--servers: ${(e as Error).message}`, ExitCode.usage);
  }
  const addresses = cs.servers.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`);
  const shareMs = Math.max(MIN_SHARE_MS, Math.floor(o.timeout / addresses.length));
  const reach = await probeAll(addresses, shareMs);
  const reachable = reach.filter((r) => r.ok).map((r) => r.address);
  if (reachable.length === 0) {
    throw new CliError(`ZooKeeper unreachable: ${reach.map((r) => (r.ok ? r.address : r.message)).join('; ')}`, ExitCode.environment);
  }
  for (const r of reach) if (!r.ok) note(`left out of --servers: ${r.message}`);
  const client = createClient(reachable.join(',') + cs.chroot, { sessionTimeoutMs: 10_000, connectTimeoutMs: shareMs, shuffleServers: false, ...security });
  try {
    await client.connect({ timeoutMs: o.timeout });
  } catch (e) {
    if (e instanceof OperationTimeoutError) throw new CliError(`ZooKeeper unreachable: ${e.message}`, ExitCode.environment);
    throw credentialRefusal(e) ?? new CliError(`cannot open a ZooKeeper session: ${(e as Error).message}`, ExitCode.environment);
  }
  return client;
}

/** Runs until SIGINT/SIGTERM or the session ends; the latter is an environment failure. */
function runUntilStopped(client: ZooKeeperClient, stop: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      stop();
      void client.close({ timeoutMs: 1000 }).then(() => resolve());
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    client.once('expired', () => {
      stop();
      reject(new CliError('the ZooKeeper session expired; watch ended', ExitCode.environment));
    });
  });
}

export function leaderJson(l: LeaderInfo | null): Record<string, unknown> {
  if (!l) return { leader: null };
  return {
    leader: {
      endpoint: l.endpoint,
      name: l.name,
      epoch: hex(l.epoch),
      since: new Date(l.since).toISOString(),
      claimed: l.claimed,
      znode: l.znode,
      sessionId: l.sessionId,
      payload: l.payload,
    },
  };
}

export function formatLeader(l: LeaderInfo | null, path: string): string {
  if (!l) return `no leader under ${path}`;
  return (
    `leader ${l.endpoint}${l.name !== l.endpoint ? ` (${l.name})` : ''}  epoch ${hex(l.epoch)}  ` +
    `since ${new Date(l.since).toISOString()}${l.claimed ? '' : ' (elected, term not yet claimed)'}  ` +
    `session ${sessionHex(l.sessionId)}  znode ${l.znode}`
  );
}

function memberJson(m: Member): Record<string, unknown> {
  return { endpoint: m.endpoint, metadata: m.metadata, sessionId: m.sessionId, since: new Date(m.since).toISOString(), znode: m.znode };
}

function formatMembers(ms: Member[], path: string): string {
  if (ms.length === 0) return `no members under ${path}`;
  return ms
    .map(
      (m) => `${m.endpoint.padEnd(24)} session ${sessionHex(m.sessionId).padEnd(20)} since ${new Date(m.since).toISOString()}  ${JSON.stringify(m.metadata)}`,
    )
    .join('\n');
}

/** A recipe's usage error or refused credentials are the command's (exit 2); under --json every error is a JSON object (cliAction). */
function recipesAction<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return cliAction((e) => (e instanceof RecipeUsageError ? new CliError(e.message, ExitCode.usage) : credentialRefusal(e)), fn);
}

export function register(program: Command): void {
  const leader = program
    .command('leader')
    .description('who leads (endpoint, epoch, since) under an election path; --watch follows changes')
    .requiredOption('--servers <connect>', 'ZooKeeper connect string, e.g. 10.1.88.101:2181,10.1.88.102:2181')
    .option('--path <path>', 'election path', DEFAULT_ELECTION_PATH)
    .option('--prefix <prefix>', 'candidate znode name prefix', DEFAULT_CANDIDATE_PREFIX)
    .option('--min-epoch <n>', 'ignore leaders with a lower epoch (e.g. the highest one seen before)')
    .option('--watch', 'keep running and print every change (never a lower epoch than seen)')
    .option('--json', 'machine-readable output (one JSON object per line with --watch)')
    .option('--timeout <ms>', 'how long to wait for a session in all; each server is tried for its share', intOption('timeout'), 10_000)
    .addHelpText(
      'after',
      '\nExit codes: 0 a leader was found (or --watch ended by a signal), 1 no leader, 2 bad usage or refused credentials, 3 ZooKeeper unreachable.',
    )
    .action(
      recipesAction(async (o: CommonOptions & { prefix: string; minEpoch?: string }) => {
        const minEpoch = o.minEpoch === undefined ? undefined : zxidOption('min-epoch', o.minEpoch);
        const opts = { path: o.path, prefix: o.prefix, minEpoch };
        checkRecipePath(o.path, '--path');
        checkPrefix(o.prefix);
        const client = await connect(o);
        const print = (l: LeaderInfo | null): void => {
          process.stdout.write((o.json ? jsonLine({ at: new Date().toISOString(), path: o.path, ...leaderJson(l) }) : `${formatLeader(l, o.path)}`) + '\n');
        };
        if (!o.watch) {
          try {
            const l = await readLeader(client, opts);
            const shown = l && minEpoch !== undefined && l.epoch < minEpoch ? null : l;
            print(shown);
            if (!shown) process.exitCode = ExitCode.finding;
          } finally {
            await client.close({ timeoutMs: 1000 });
          }
          return;
        }
        const discovery = new LeaderDiscovery(client, opts);
        let printed = false;
        discovery.on('change', (l) => {
          printed = true;
          print(l);
        });
        discovery.on('stale', (v, highest) => {
          if (!o.json) note(`ignored a view with epoch ${hex(v.epoch)} (already saw ${hex(highest)})`);
        });
        discovery.on('warning', (e) => note(`warning: ${e.message}`));
        const first = await discovery.start();
        if (!printed) print(first); // no leader: start() reported no change
        await runUntilStopped(client, () => discovery.stop());
      }),
    );
  addSecurityOptions(leader);

  const members = program
    .command('members')
    .description('the registered members (endpoint, session, metadata); --watch follows joins and leaves')
    .requiredOption('--servers <connect>', 'ZooKeeper connect string')
    .option('--path <path>', 'members path', DEFAULT_MEMBERS_PATH)
    .option('--watch', 'keep running and print every join and leave')
    .option('--json', 'machine-readable output (one JSON object per line with --watch)')
    .option('--timeout <ms>', 'how long to wait for a session in all; each server is tried for its share', intOption('timeout'), 10_000)
    .addHelpText('after', '\nExit codes: 0 ok, 2 bad usage or refused credentials, 3 ZooKeeper unreachable.')
    .action(
      recipesAction(async (o: CommonOptions) => {
        checkRecipePath(o.path, '--path');
        const client = await connect(o);
        if (!o.watch) {
          try {
            const ms = await listMembers(client, { path: o.path });
            if (o.json) printJson({ path: o.path, members: ms.map(memberJson) });
            else process.stdout.write(formatMembers(ms, o.path) + '\n');
          } finally {
            await client.close({ timeoutMs: 1000 });
          }
          return;
        }
        const watcher = new MembersWatcher(client, { path: o.path });
        const show = (ms: Member[], joined: Member[], left: Member[]): void => {
          if (o.json) {
            process.stdout.write(
              jsonLine({
                at: new Date().toISOString(),
                path: o.path,
                members: ms.map(memberJson),
                joined: joined.map((m) => m.endpoint),
                left: left.map((m) => m.endpoint),
              }) + '\n',
            );
          } else {
            for (const m of joined) process.stdout.write(`${new Date().toISOString()} joined ${m.endpoint}\n`);
            for (const m of left) process.stdout.write(`${new Date().toISOString()} left   ${m.endpoint}\n`);
          }
        };
        watcher.on('warning', (e) => note(`warning: ${e.message}`));
        const first = await watcher.start();
        if (o.json) show(first, first, []);
        else process.stdout.write(formatMembers(first, o.path) + '\n');
        // Subscribed after the first list: the start's own change would repeat it.
        watcher.on('change', show);
        await runUntilStopped(client, () => watcher.stop());
      }),
    );
  addSecurityOptions(members);
}
