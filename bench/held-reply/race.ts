/**
 * The held reply of ZooKeeper 3.8.0 (docs/client.md, "A reply held until the next request"), made
 * to happen on purpose on a real follower, and what the client's overdue ping does about it.
 *
 * A demonstration, not a benchmark: jdb stops only the follower's CommitProcessor thread at
 * CommitProcessor.java:221, where it has read both of its queues empty and is about to enter
 * synchronized(this). The client's setData is then committed by the leader, and its COMMIT reaches
 * the follower (commit(): queue add, then notifyAll with nobody waiting). Resumed, the thread calls
 * wait() on what it read before, with the commit queued. The reply then comes only when another
 * request reaches that server: with overduePingMs 0 the client's next regular ping (the ping
 * interval after the request), with the default the first overdue ping that arrives after the
 * thread is waiting again.
 *
 *   node scripts/setup.mjs bench && node --import tsx bench/held-reply/race.ts
 *
 * Needs jdb (the JDK the bench's Java driver already installs). The JVMs listen for the debugger
 * on loopback only.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Ensemble } from '../../src/lab/ensemble.ts';
import { createClient } from '../../src/zk/index.ts';

const BREAKPOINT = 'org.apache.zookeeper.server.quorum.CommitProcessor:221';

process.env.JAVA_TOOL_OPTIONS = '-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=127.0.0.1:0';
const ens = await Ensemble.start({ size: 3, tickTime: 2000 });
delete process.env.JAVA_TOOL_OPTIONS;
const jdbOut: string[] = [];
let jdb: ReturnType<typeof spawn> | null = null;
try {
  const leader = await ens.leaderId();
  const follower = ens.servers.find((s) => s.id !== leader)!;
  const port = /Listening for transport dt_socket at address: (\d+)/.exec(readFileSync(join(follower.dir, 'stdout.log'), 'utf8'))?.[1];
  if (!port) throw new Error(`server ${follower.id}: no debugger port in ${join(follower.dir, 'stdout.log')}`);
  jdb = spawn('jdb', ['-attach', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  jdb.stdout!.on('data', (d: Buffer) => jdbOut.push(d.toString()));
  jdb.stderr!.on('data', (d: Buffer) => jdbOut.push(d.toString()));
  const seen = (re: RegExp): boolean => re.test(jdbOut.join(''));
  const waitFor = async (re: RegExp, what: string, ms = 20_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!seen(re)) {
      if (Date.now() > end) throw new Error(`jdb: no ${what} within ${ms} ms; it said:\n${jdbOut.join('')}`);
      await sleep(10);
    }
  };
  const command = (c: string): void => void jdb!.stdin!.write(`${c}\n`);
  await waitFor(/> $/m, 'prompt');

  const reader = createClient(ens.address(leader));
  await reader.connect();
  console.log(`3.8.0 ensemble, leader ${leader}; the client writes through follower ${follower.id}`);
  for (const overduePingMs of [0, 250]) {
    const zk = createClient(ens.address(follower.id), { sessionTimeoutMs: 30_000, requestTimeoutMs: 60_000, overduePingMs });
    await zk.connect();
    const path = `/held-reply-${overduePingMs}`;
    await zk.create(path, 'a');
    jdbOut.length = 0;
    command(`stop thread at ${BREAKPOINT}`);
    await waitFor(/Set breakpoint/, 'breakpoint');
    const sent = performance.now();
    const replied = zk.setData(path, 'b').then(() => performance.now());
    await waitFor(/Breakpoint hit/, 'stop at the breakpoint');
    // Committed on the leader: the COMMIT is on its way over loopback. A margin for it to land.
    while ((await reader.getData(path)).data.toString() !== 'b') await sleep(5);
    await sleep(300);
    command(`clear ${BREAKPOINT}`);
    command('resume');
    const resumed = performance.now();
    const at = await replied;
    console.log(
      `overduePingMs ${String(overduePingMs).padEnd(3)}: CommitProcessor resumed ${(resumed - sent).toFixed(0)} ms after the request, reply ${(at - sent).toFixed(0)} ms after it ` +
        `(ping interval ${zk.timing.pingIntervalMs} ms), overdue pings sent ${zk.overduePings}`,
    );
    await zk.close();
  }
  await reader.close();
  command('exit');
} finally {
  jdb?.kill();
  await ens.close();
}
