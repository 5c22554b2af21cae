/**
 * The reference cluster's `scavenger`: a periodic job (every 5 minutes in the seed, where the
 * hole in its rhythm showed when node1 stopped). Each run scans the node's service files (on the
 * node's disk), logs one line, and marks the run in ZooKeeper (`/zbs/scavenger/<node>`) — the
 * cluster's steady background writes, which is also what makes ZooKeeper's leader notice that a
 * follower on a hung disk acknowledges no proposal ("transaction timeout"). A run waits for the
 * previous one: on a hung disk the job stops, as the seed's did.
 */
import { mkdirSync, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePath } from '../../recipes/index.ts';
import { NoNodeError, createClient } from '../../zk/index.ts';
import { LOG_FILES, PATHS, configFromEnv, type ScavengerConfig } from './config.ts';
import { GlogFile } from './glog.ts';
import { eventWriter } from './wire.ts';

const cfg = configFromEnv() as ScavengerConfig;
const emit = eventWriter();
mkdirSync(cfg.dir, { recursive: true });
const log = new GlogFile(join(cfg.dir, LOG_FILES.scavenger));
const root = dirname(cfg.dir);

const zk = createClient(cfg.connectString, { sessionTimeoutMs: cfg.timings.clientSessionTimeoutMs, shuffleServers: false });
await zk.connect({ timeoutMs: 30_000 });
const mark = `${PATHS.scavenger}/${cfg.node}`;
log.info('scavenger.cc:31', `zbs-scavenger starting (pid ${process.pid}) on ${cfg.ip}, every ${cfg.timings.scavengerPeriodMs} ms`);
emit({ ev: 'hello', pid: process.pid, service: 'scavenger', node: cfg.node });
emit({ ev: 'ready' });

async function scan(): Promise<number> {
  let files = 0;
  for (const dir of await fsp.readdir(root)) {
    try {
      files += (await fsp.readdir(join(root, dir))).length;
    } catch {
      // a file, not a directory
    }
  }
  return files;
}

for (let run = 1; ; run++) {
  const started = performance.now();
  try {
    const files = await scan();
    const data = JSON.stringify({ run, files, at: Date.now() });
    try {
      await zk.setData(mark, data);
    } catch (e) {
      if (!(e instanceof NoNodeError)) throw e;
      await ensurePath(zk, PATHS.scavenger);
      await zk.create(mark, data).catch(() => undefined);
    }
    log.info('scavenger.cc:57', `scavenger run ${run} done: scanned ${files} files in ${Math.round(performance.now() - started)} ms`);
    emit({ ev: 'scavenged', run });
  } catch (e) {
    log.warn('scavenger.cc:61', `scavenger run ${run} failed: ${(e as Error).message}`);
  }
  await sleep(Math.max(0, cfg.timings.scavengerPeriodMs - (performance.now() - started)));
}
