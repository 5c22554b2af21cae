/**
 * `zkwarden demo`: the seed incident in miniature, on a real embedded ZooKeeper ensemble.
 *
 * Three meta services elect a leader through ZooKeeper (the seed's layout). A ZooKeeper leader
 * change moves no meta leader. Then node1's meta wedges the way the seed's did: its work stops
 * but its ZooKeeper client keeps heartbeating, so ZooKeeper goes on naming it. The remedy
 * zkwarden's guard is built on ends the wedged leader's session from outside (endSession, with
 * its session id and password): the next candidate leads within moments, in a higher
 * epoch, and the old leader's late fenced write is refused. Last, `investigate` explains the
 * seed's own logs.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { investigate } from '../forensics/logs/investigate.ts';
import { Ensemble } from '../lab/ensemble.ts';
import { Election, FencedError, readLeader } from '../recipes/index.ts';
import { createClient, endSession, type ZooKeeperClient } from '../zk/index.ts';
import { CliError, ExitCode, note, printJson } from './output.ts';

/** The seed bundle ships in the repository; found from the source tree and from dist/ alike. */
function seedBundle(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'test', 'fixtures', 'seed-bundle');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new CliError('the seed bundle (test/fixtures/seed-bundle) is not beside this installation', ExitCode.environment);
}
const SESSION_TIMEOUT_MS = 4000;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('the seed incident in miniature on a real embedded ZooKeeper ensemble, and its explanation')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const steps: Record<string, unknown>[] = [];
      const say = (m: string): void => {
        if (!o.json) process.stdout.write(`${m}\n`);
      };
      const step = (name: string, facts: Record<string, unknown>, text: string): void => {
        steps.push({ step: name, ...facts });
        say(text);
      };

      note('starting a real 3-server ZooKeeper ensemble on loopback...');
      const started = Date.now();
      const ens = await Ensemble.start({ size: 3, tickTime: 500 });
      const clients: ZooKeeperClient[] = [];
      const open = async (): Promise<ZooKeeperClient> => {
        const c = createClient(ens.connectString, { sessionTimeoutMs: SESSION_TIMEOUT_MS });
        clients.push(c);
        await c.connect({ timeoutMs: 15_000 });
        return c;
      };
      try {
        step('ensemble', { connectString: ens.connectString, ms: Date.now() - started, zkLeader: await ens.leaderId() },
          `1. ZooKeeper ensemble up in ${Date.now() - started} ms (${ens.connectString}); ZooKeeper leader: server ${await ens.leaderId()}`);

        const metas: { name: string; client: ZooKeeperClient; election: Election }[] = [];
        for (const i of [1, 2, 3]) {
          const client = await open();
          const election = new Election(client, { candidate: { endpoint: `10.1.88.10${i}:10100`, name: `node${i}-meta` } });
          await election.join();
          metas.push({ name: `node${i}-meta`, client, election });
        }
        const observer = await open();
        const first = await metas[0]!.election.awaitLeadership({ timeoutMs: 15_000 });
        const seen = await readLeader(observer);
        step('elected', { leader: seen?.name, endpoint: seen?.endpoint, epoch: seen?.epoch },
          `2. meta leader elected under /zbs/meta/__mj_j: ${seen?.name} (${seen?.endpoint}), epoch 0x${first.epoch.toString(16)}`);

        const zkLeader = await ens.leaderId();
        await ens.kill(zkLeader);
        const { leaderId } = await ens.waitForQuorum({ timeoutMs: 30_000 });
        await until('node1-meta to act again', () => metas[0]!.election.isLeader(), 15_000);
        const after = await readLeader(observer);
        step('zk-leader-killed', { killed: zkLeader, newZkLeader: leaderId, metaLeader: after?.name, epoch: after?.epoch },
          `3. kill -9 of ZooKeeper's leader (server ${zkLeader}): quorum re-formed (server ${leaderId} leads ZooKeeper); meta leader still ${after?.name}, same epoch: ${after?.epoch === first.epoch}`);
        await ens.startServer(zkLeader);

        // node1's meta wedges: nothing in it runs any more except its ZooKeeper client's heartbeats.
        const wedged = metas[0]!;
        const waitMs = 3 * SESSION_TIMEOUT_MS;
        await sleep(waitMs);
        const still = await readLeader(observer);
        step('wedged', { waitedMs: waitMs, zookeeperNames: still?.name, sessionAlive: wedged.client.state === 'connected' },
          `4. node1-meta stops doing its work (its disk hangs) but its client keeps heartbeating: after ${waitMs / 1000} s (3 session timeouts) ZooKeeper still names ${still?.name}. This is the seed incident.`);

        // The guard's remedy: end the wedged leader's session from outside.
        const t0 = Date.now();
        // endSession, not a plain attach-and-close: the wedged node's client is alive and
        // reconnects at once when the attach replaces its connection (see src/zk/end-session.ts).
        await endSession(ens.connectString, wedged.client.sessionId, wedged.client.sessionPassword, { timeoutMs: 15_000 });
        const successor = (): (typeof metas)[number] | undefined => metas.find((m) => m !== wedged && m.election.isLeader());
        await until('a successor', () => successor() !== undefined, 15_000);
        const next = successor()!;
        const nextTerm = next.election.term!;
        const handoverMs = Date.now() - t0;
        step('deposed', { handoverMs, newLeader: next.name, epoch: nextTerm.epoch, higher: nextTerm.epoch > first.epoch },
          `5. session of node1-meta ended from outside (endSession with its session id and password): ${next.name} leads after ${handoverMs} ms, epoch 0x${nextTerm.epoch.toString(16)} > 0x${first.epoch.toString(16)}`);

        // node1 wakes up and tries to act on its old term: the write is fenced.
        let fenced = 'not refused';
        try {
          await wedged.election.writer().setData('/zbs/meta', 'written by a deposed leader');
        } catch (e) {
          fenced = e instanceof FencedError ? `refused (${e.name}: ${e.message})` : `failed (${(e as Error).message})`;
        }
        step('fenced', { write: fenced }, `6. node1-meta wakes and writes as leader: ${fenced}`);
      } finally {
        await Promise.all(clients.map((c) => c.close({ timeoutMs: 3000 }).catch(() => undefined)));
        await ens.close();
      }

      const bundle = seedBundle();
      const inv = await investigate({ root: bundle });
      const verdict = inv.verdicts[0];
      step('investigate', { bundle, verdict: verdict?.title ?? null, findings: inv.findings.length },
        `7. zkwarden investigate on the seed's own log lines (${bundle}):\n   ${verdict?.title ?? 'no verdict'}\n   (${inv.findings.length} findings; run: npx zkwarden investigate ${bundle})`);
      say('\nensemble stopped; no process or port left behind.');
      if (o.json) printJson({ steps });
    });
}
