/**
 * Ending a live holder's session from outside, side by side: the plain way (attach with the id
 * and password, then close: what kazoo's client_id or Java's session constructor give) and
 * zkwarden's endSession. Each round pins a holder (a zkwarden client that reconnects at once, as a
 * wedged process's heartbeat thread would) to one server and ends its session through a connect
 * string that starts with that same server, the case where the two race; both ways run in every
 * round, in alternating order. Optional CPU load beside the ensemble (busy-loop processes),
 * because the race is tighter on a loaded machine.
 *
 * Per way: sessions left alive; sessions ended with the holder still "connected" 500 ms later (a
 * connection that outlived its session); holders told within 500 ms; time taken.
 *
 *   npm run bench:end-session -- [--rounds 40] [--load 1] [--no-write]
 *
 * Results go to stdout and, unless --no-write, to docs/benchmarks.md under "## Ending a session".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient, endSession, type ZooKeeperClient } from '../../src/zk/index.ts';
import { writeBenchSection } from '../docs-section.ts';
import { medianOf } from '../client/stats.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HEADING = '## Ending a session';
const SETTLE_AFTER_MS = 500;

class UsageError extends Error {}

type Way = 'attach+close' | 'endSession';
type Outcome = 'alive' | 'ended, holder connected' | 'ended, holder reconnecting' | 'ended, holder told';
interface Round {
  outcome: Outcome;
  ms: number;
  /** For a holder still connected: was its server the leader, and did its next write end it? */
  onLeader?: boolean;
  toldByWrite?: boolean;
}

function intArg(name: string, text: string, max: number): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0 || v > max) throw new UsageError(`--${name}: expected an integer from 0 to ${max}, got ${text}`);
  return v;
}

async function plainClose(connectString: string, id: bigint, password: Buffer): Promise<void> {
  const other = createClient(connectString, { sessionId: id, sessionPassword: password, sessionTimeoutMs: 6000 });
  try {
    await other.connect({ timeoutMs: 10_000 });
  } catch {
    return;
  }
  await other.close();
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { rounds: { type: 'string', default: '40' }, load: { type: 'string', default: '1' }, 'no-write': { type: 'boolean', default: false } },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0]!);
  }
  const rounds = intArg('rounds', values.rounds, 10_000);
  const load = intArg('load', values.load, 16);
  if (rounds === 0) throw new UsageError('--rounds: expected at least 1');

  const hogs: ChildProcess[] = [];
  const ens = await Ensemble.start({ size: 3, tickTime: 250 });
  const observer = createClient(ens.connectString, { sessionTimeoutMs: 10_000 });
  const results: Record<Way, Round[]> = { 'attach+close': [], endSession: [] };
  try {
    await observer.connect({ timeoutMs: 15_000 });
    for (let i = 0; i < load; i++) hogs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
    for (let round = 0; round < rounds; round++) {
      const ways: Way[] = round % 2 === 0 ? ['attach+close', 'endSession'] : ['endSession', 'attach+close'];
      for (const way of ways) {
        const serverId = (round % 3) + 1;
        const path = `/bench-end-${round}-${way === 'endSession' ? 'e' : 'p'}`;
        const holder: ZooKeeperClient = createClient(ens.address(serverId), { sessionTimeoutMs: 6000, localExpiry: false });
        await holder.connect({ timeoutMs: 15_000 });
        await holder.create(path, 'held', { mode: 'ephemeral' });
        const connectString = [serverId, ...[1, 2, 3].filter((x) => x !== serverId)].map((x) => ens.address(x)).join(',');
        const onLeader = (await ens.leaderId()) === serverId;
        const t0 = performance.now();
        if (way === 'endSession') await endSession(connectString, holder.sessionId, holder.sessionPassword);
        else await plainClose(connectString, holder.sessionId, holder.sessionPassword);
        const ms = performance.now() - t0;
        await sleep(SETTLE_AFTER_MS);
        await observer.sync(path);
        const alive = (await observer.exists(path)) !== null;
        const state = holder.state;
        const outcome: Outcome = alive
          ? 'alive'
          : state === 'expired'
            ? 'ended, holder told'
            : state === 'connected'
              ? 'ended, holder connected'
              : 'ended, holder reconnecting';
        const r: Round = { outcome, ms };
        if (outcome === 'ended, holder connected') {
          // Its next write: the leader answers SessionExpired (a follower's connection), or drops it
          // and the reconnect is refused (the leader's own).
          r.onLeader = onLeader;
          await holder.create(`${path}-probe`).catch(() => undefined);
          const deadline = Date.now() + 10_000;
          while (holder.state !== 'expired' && Date.now() < deadline) await sleep(20);
          r.toldByWrite = holder.state === 'expired';
        }
        results[way].push(r);
        await holder.close();
      }
      process.stderr.write(`\rround ${round + 1}/${rounds}`);
    }
    process.stderr.write('\n');
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
    await observer.close();
    await ens.close();
  }

  const rows = (['attach+close', 'endSession'] as Way[]).map((way) => {
    const rs = results[way];
    const n = (o: Outcome): number => rs.filter((r) => r.outcome === o).length;
    const connected = rs.filter((r) => r.outcome === 'ended, holder connected');
    const split = connected.length
      ? ` (${connected.filter((r) => r.onLeader).length} on the leader; ${connected.filter((r) => r.toldByWrite).length} told at the next write)`
      : '';
    const ms = rs.map((r) => r.ms);
    return `| ${way} | ${rs.length} | ${n('alive')} | ${connected.length}${split} | ${n('ended, holder reconnecting')} | ${n('ended, holder told')} | ${medianOf(ms).toFixed(0)} | ${Math.max(...ms).toFixed(0)} |`;
  });
  const section = [
    HEADING,
    '',
    `\`npm run bench:end-session -- --rounds ${rounds} --load ${load}\` (bench/end-session/run.ts), ${new Date().toISOString().slice(0, 10)}; ${cpus().length} cores, ${load} busy-loop process(es) beside the 3-server ensemble, load average at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}.`,
    '',
    `A holder (zkwarden client, reconnects at once) pinned to one server; its session ended through a connect string starting with that server; states read ${SETTLE_AFTER_MS} ms later. "Holder connected" is a connection that outlived its session: pings and reads still answered on a follower, so the holder believes it is connected until its next write.`,
    '',
    '| way | rounds | session left alive | ended, holder still connected | ended, holder reconnecting | ended, holder told | median ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(`${section}\n`);
  if (!values['no-write']) {
    const file = join(root, 'docs', 'benchmarks.md');
    writeBenchSection(file, HEADING, section);
    process.stderr.write(`wrote the "${HEADING.slice(3)}" section of ${file}\n`);
  }
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench:end-session: ${(e as Error).message}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
