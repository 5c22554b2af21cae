/**
 * `zkwarden demo`: the main job on embedded defaults. It starts a real 3-server ensemble, shows
 * it, kills the ZooKeeper leader and shows the quorum carry on (as node2 and node3 did in the
 * seed incident), then stops everything.
 */
import type { Command } from 'commander';
import { Ensemble } from '../lab/ensemble.ts';
import { ensembleStatus, formatStatus } from './lab.ts';
import { note, printJson } from './output.ts';

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the demonstration on a real embedded ZooKeeper ensemble')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const say = (m: string) => (o.json ? undefined : process.stdout.write(`${m}\n`));
      note('starting a real 3-server ZooKeeper ensemble on loopback...');
      const started = Date.now();
      const ens = await Ensemble.start({ size: 3, tickTime: 500 });
      const steps: Record<string, unknown>[] = [];
      try {
        const before = await ensembleStatus(ens);
        steps.push({ step: 'started', ms: Date.now() - started, servers: before });
        say(`ensemble up in ${Date.now() - started} ms: ${ens.connectString}\n${formatStatus(before)}`);
        const leader = await ens.leaderId();
        say(`\nkilling the ZooKeeper leader (server ${leader}) with kill -9...`);
        const killedAt = Date.now();
        await ens.kill(leader);
        const { leaderId } = await ens.waitForQuorum({ timeoutMs: 30_000 });
        const after = await ensembleStatus(ens);
        steps.push({ step: 'leader killed', killed: leader, newLeader: leaderId, ms: Date.now() - killedAt, servers: after });
        say(`quorum re-formed in ${Date.now() - killedAt} ms, new leader: server ${leaderId}\n${formatStatus(after)}`);
      } finally {
        await ens.close();
      }
      say('\nensemble stopped; no process or port left behind.');
      if (o.json) printJson({ steps });
    });
}
