/**
 * `zkwarden snapshot dump`, `txnlog dump`, `tree` and `audit`: ZooKeeper's own files read
 * directly (streamed, checksummed), a server's tree at any zxid, and the ensemble audit that
 * tells a diverged ensemble from a lagging one.
 */
import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { auditOffline, type AuditReport, DEFAULT_AUDIT_LIMIT } from '../forensics/zkdata/audit.ts';
import { renderAudit } from '../forensics/report/audit.ts';
import { lastLoggedZxid } from '../forensics/zkdata/history.ts';
import { processesUsing } from '../forensics/zkdata/live.ts';
import { type DataDir, openDataDir } from '../forensics/zkdata/datadir.ts';
import { dumpSnapshot, dumpTxnLog } from '../forensics/zkdata/dump.ts';
import { ChecksumError, DataDirError, ZkDataError } from '../forensics/zkdata/errors.ts';
import { hexZxid, isoTime } from '../forensics/zkdata/format.ts';
import { auditOnline, onlineJson, renderOnline } from '../forensics/zkdata/online.ts';
import { treeAt } from '../forensics/zkdata/replay.ts';
import { TextSink } from '../forensics/zkdata/sink.ts';
import { clientStat } from '../forensics/zkdata/tree.ts';
import { addSecurityOptions, securityFromOptions, type SecurityCliOptions } from './security.ts';
import { sessionHex } from '../zk/records.ts';
import { CliError, ExitCode, cliAction, fsInputError, jsonUsageErrors, note, positiveInt, printJson, zxidOption } from './output.ts';

/** Reader errors are bad input (exit 2): one line naming the file; a checksum mismatch says how to go on. */
function inputError(e: unknown): CliError | null {
  if (e instanceof ChecksumError) return new CliError(`${e.message} (use --force to read on; what follows is marked as suspect)`, ExitCode.usage);
  if (e instanceof ZkDataError || e instanceof DataDirError) return new CliError(e.message, ExitCode.usage);
  return fsInputError(e);
}

/** The newest zxid a data directory holds (its last logged transaction or newest snapshot). */
async function newestZxid(dd: DataDir): Promise<number> {
  const logged = (await lastLoggedZxid(dd)).zxid ?? 0;
  const snap = dd.snapshots.length ? dd.snapshots[dd.snapshots.length - 1]!.zxid : 0;
  return Math.max(logged, snap);
}

/** `--at` past everything in the data is a mistake, not a question: refused, naming the newest. */
function refuseBeyond(at: number | undefined, newest: number, what: string): void {
  if (at !== undefined && at > newest) throw new CliError(`--at ${hexZxid(at)} is past the newest zxid in ${what} (${hexZxid(newest)})`);
}

/**
 * One member given twice — the same path, a link to it, or DIR beside DIR/version-2 — would
 * agree with itself: refused. Members are the same when their files are in one directory.
 */
function refuseSameData(dirs: string[], dds: DataDir[]): void {
  const seen = new Map<string, number>();
  dds.forEach((dd, i) => {
    for (const real of new Set([...dd.snapshots, ...dd.logs].map((f) => realpathSync(dirname(f.path))))) {
      const first = seen.get(real);
      if (first !== undefined && first !== i)
        throw new CliError(`${dirs[first]} and ${dirs[i]} are the same directory (${real}): give each member's data once`);
      seen.set(real, i);
    }
  });
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function register(program: Command): void {
  const snapshot = program.command('snapshot').description('read ZooKeeper snapshot files');
  snapshot
    .command('dump')
    .description('print every node of a snapshot with its Stat (like SnapshotFormatter), sessions, digest and checksum; streamed')
    .argument('<file>', 'a snapshot.<zxid> file (.gz too; .snappy is not supported)')
    .option('--json', 'JSON Lines: one object per header, ACL, node, session and a summary')
    .option('-d, --data', 'print node data (base64)')
    .option('--force', 'read on past checksum mismatches, marking the result as suspect')
    .allowExcessArguments(false)
    .action(
      cliAction(inputError, async (file: string, o: { json?: boolean; data?: boolean; force?: boolean }) => {
        const summary = await dumpSnapshot(file, new TextSink(process.stdout), { json: o.json, data: o.data, force: o.force });
        if (summary.suspect) {
          note(`zkwarden: ${file}: checksum mismatch (read on with --force); the dump is suspect`);
          process.exitCode = ExitCode.finding;
        }
      }),
    );

  const txnlog = program.command('txnlog').description('read ZooKeeper transaction logs');
  txnlog
    .command('dump')
    .description('print every transaction of a log (like TxnLogToolkit) and how the log ends (preallocated, end of file, torn)')
    .argument('<file>', 'a log.<zxid> file')
    .option('--json', 'JSON Lines: one object per transaction and a summary')
    .option('--force', 'read on past checksum mismatches, marking those entries')
    .allowExcessArguments(false)
    .action(
      cliAction(inputError, async (file: string, o: { json?: boolean; force?: boolean }) => {
        const s = await dumpTxnLog(file, new TextSink(process.stdout), { json: o.json, force: o.force });
        if (s.checksumErrors > 0) process.exitCode = ExitCode.finding;
      }),
    );

  const tree = program
    .command('tree')
    .description('the tree of one server at a zxid: its newest usable snapshot at or before it, plus its logs replayed')
    .argument('<dir>', "the server's dataDir (with version-2/ inside), version-2 itself, or SNAPDIR:LOGDIR")
    .option('--at <zxid>', 'the zxid (0x… or decimal); default: the last one in the logs')
    .option('--json', 'one JSON document: the source and every node with its Stat')
    .option('-d, --data', 'include node data (base64)')
    .option('--force', 'read on past checksum mismatches, marking the tree as suspect')
    .allowExcessArguments(false)
    .action(
      cliAction(inputError, async (dir: string, o: { at?: string; json?: boolean; data?: boolean; force?: boolean }) => {
        const at = o.at === undefined ? undefined : zxidOption('at', o.at);
        const dd = openDataDir(dir);
        refuseBeyond(at, await newestZxid(dd), dir);
        const res = await treeAt(dd, at, { force: o.force, keepData: o.data });
        const t = res.tree;
        const source = {
          snapshot: res.snapshot?.path ?? null,
          replayed: res.replayed,
          reached: res.reached,
          asked: at ?? null,
          suspect: t.suspect,
          warnings: res.warnings,
        };
        if (at !== undefined && res.reached < at) res.warnings.push(`the server's history ends at ${hexZxid(res.reached)}, before ${hexZxid(at)}`);
        if (o.json) {
          const nodes = t.sortedPaths().map((p) => {
            const n = t.nodes.get(p)!;
            return { path: p === '' ? '/' : p, stat: clientStat(n), acl: n.acl, ...(o.data ? { data: n.data ? n.data.toString('base64') : null } : {}) };
          });
          printJson({
            ...source,
            zxid: hexZxid(res.reached),
            nodeCount: t.nodes.size,
            sessions: [...t.sessions].map(([id, to]) => ({ id: sessionHex(id), timeoutMs: to })),
            nodes,
          });
        } else {
          const sink = new TextSink(process.stdout);
          sink.write(
            `# tree of ${dir} at ${hexZxid(res.reached)}: ${t.nodes.size} znodes, ${t.sessions.size} sessions; from ${res.snapshot ? res.snapshot.path : 'an empty tree'} + ${res.replayed} transactions${t.suspect ? ' (SUSPECT: checksum mismatches passed with --force)' : ''}\n`,
          );
          for (const p of t.sortedPaths()) {
            const n = t.nodes.get(p)!;
            const s = clientStat(n);
            sink.write(
              `${p === '' ? '/' : p}  cZxid=${hexZxid(s.czxid)} ctime=${isoTime(s.ctime)} mZxid=${hexZxid(s.mzxid)} mtime=${isoTime(s.mtime)} pZxid=${hexZxid(s.pzxid)} cversion=${s.cversion} dataVersion=${s.version} aclVersion=${s.aversion} ephemeralOwner=${sessionHex(n.ephemeralOwner)} dataLength=${s.dataLength} numChildren=${s.numChildren}${o.data ? ` data=${n.data ? n.data.toString('base64') : ''}` : ''}\n`,
            );
            if (sink.full) await sink.flush();
          }
          for (const w of res.warnings) sink.write(`# WARNING: ${w}\n`);
          await sink.flush();
        }
      }),
    );

  const audit = program
    .command('audit')
    .addHelpText('after', '\nExit codes: 0 consistent or lagging, 1 diverged, 2 bad usage or input, 3 a server could not be reached (--servers).')
    .description("consistent, lagging or diverged? Offline from the members' data directories, or online from the live servers")
    .argument('[dirs...]', 'the data directory of each member (offline audit)')
    .option('--servers <list>', 'A,B,C: audit the live servers instead (each read alone)')
    .option('--names <list>', 'names for the members, in order')
    .option('--server-logs <list>', "each member's ZooKeeper log, in order (default: zookeeper.log next to its data dir)")
    .option('--at <zxid>', 'compare the trees at this zxid instead of the newest all members reached')
    .option('--limit <n>', 'most conflicts and differing znodes kept in the report', String(DEFAULT_AUDIT_LIMIT))
    .option(
      '--timeout <ms>',
      "online: the whole audit's bound; each network wait gets at most a quarter of it, so a server that stops answering costs one quarter, once",
      '30000',
    )
    .option('--json', 'the whole report as JSON')
    .option('--force', 'read on past checksum mismatches, marking members as suspect')
    .action(
      cliAction(
        inputError,
        async (
          dirs: string[],
          o: SecurityCliOptions & {
            servers?: string;
            names?: string;
            serverLogs?: string;
            at?: string;
            limit: string;
            timeout: string;
            json?: boolean;
            force?: boolean;
          },
        ) => {
          const names = o.names ? list(o.names) : undefined;
          if (o.servers) {
            if (dirs.length > 0) throw new CliError('give either data directories or --servers, not both');
            const servers = list(o.servers);
            if (servers.length < 2) throw new CliError('--servers needs at least two addresses (host:port)');
            const timeoutMs = positiveInt('timeout', o.timeout);
            const r = await auditOnline(servers, { names, timeoutMs, security: securityFromOptions(o) });
            if (o.json) printJson(onlineJson(r));
            else process.stdout.write(renderOnline(r));
            // Divergence is the finding; otherwise a server that could not be read is the environment's.
            if (r.class === 'diverged') process.exitCode = ExitCode.finding;
            else if (r.members.some((m) => m.status === 'unreachable')) process.exitCode = ExitCode.environment;
            return;
          }
          if (dirs.length < 2) throw new CliError('give the data directories of at least two members, or --servers A,B,C');
          const logs = o.serverLogs ? list(o.serverLogs) : [];
          const limit = positiveInt('limit', o.limit);
          const at = o.at === undefined ? undefined : zxidOption('at', o.at);
          for (const d of dirs) {
            for (const part of d.includes(':') ? d.split(':') : [d]) {
              try {
                realpathSync(part);
              } catch (e) {
                throw inputError(e) ?? e;
              }
            }
          }
          const dds = dirs.map((d) => openDataDir(d));
          refuseSameData(dirs, dds);
          refuseBeyond(at, Math.max(...(await Promise.all(dds.map(newestZxid)))), "the members' data");
          const live = dirs.map((d) => ({ d, pids: d.split(':').flatMap((p) => processesUsing(p)) })).filter((x) => x.pids.length > 0);
          for (const l of live)
            note(
              `zkwarden: warning: ${l.d} is in use by a running process (pid ${l.pids.join(', ')}): a live server's files change while they are read; stop it or copy the directory for a stable audit`,
            );
          const r: AuditReport = await auditOffline(
            dirs.map((dir, i) => ({ dir, name: names?.[i], serverLog: logs[i] })),
            { force: o.force, limit, at },
          );
          for (const l of live) r.warnings.unshift(`${l.d} belongs to a running server (pid ${l.pids.join(', ')}): read while live`);
          if (o.json) printJson(r);
          else process.stdout.write(renderAudit(r));
          if (r.class === 'diverged') process.exitCode = ExitCode.finding;
        },
      ),
    );
  addSecurityOptions(audit);
  for (const c of [snapshot, txnlog, tree, audit]) jsonUsageErrors(c);
}
